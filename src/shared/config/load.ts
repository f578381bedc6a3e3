/**
 * Reading config text and files (nebula-spec §10.1): one YAML file, or a directory walked recursively whose
 * `.yml`/`.yaml` files are merged in Nebula's order (each directory's entries sorted by name, depth first).
 * Later files override map values; lists are appended, so firewall rules can be split across files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError } from './errors';
import { validateConfig, type ValidatedConfig } from './validate';

export interface LoadedConfig extends ValidatedConfig {
  /** The merged YAML value before validation (what `-test` prints). */
  raw: Record<string, unknown>;
  /** Files read, in merge order. */
  files: string[];
}

type YamlMap = Record<string, unknown>;

function isMap(v: unknown): v is YamlMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses one YAML document into a plain value; syntax errors name `source` and the line/column. */
export function parseYaml(text: string, source = '<config>'): YamlMap {
  const doc = YAML.parseDocument(text, { merge: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
        return { path: source, message: `YAML syntax error${where}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` };
      }),
    );
  }
  // toJS throws plain Errors for content the parser accepted: an alias bomb (ReferenceError), an alias to an anchor
  // defined later, a merge key (`<<`) whose value is not a map. They are config problems like any other.
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError([{ path: source, message: `YAML error: ${message}` }]);
  }
  if (value === null || value === undefined) return {};
  if (!isMap(value)) throw new ConfigError([{ path: source, message: 'the config must be a map of keys' }]);
  return value;
}

/** Merges `next` into `base` (both left untouched): maps recursively, lists appended, other values replaced. */
export function mergeConfig(base: YamlMap, next: YamlMap): YamlMap {
  const out: YamlMap = { ...base };
  for (const [k, v] of Object.entries(next)) {
    const old = out[k];
    if (isMap(old) && isMap(v)) out[k] = mergeConfig(old, v);
    else if (Array.isArray(old) && Array.isArray(v)) out[k] = [...old, ...v];
    else out[k] = v;
  }
  return out;
}

/** Files a path stands for: itself, or every .yml/.yaml below it in Nebula's walk order. */
export function configFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const s = statSync(full);
      if (s.isDirectory()) walk(full);
      else if (s.isFile() && /\.ya?ml$/.test(name)) out.push(full);
    }
  };
  walk(path);
  return out;
}

/** Parses and validates YAML text. */
export function parseConfig(yamlText: string, source = '<config>'): LoadedConfig {
  const raw = parseYaml(yamlText, source);
  return { ...validateConfig(raw), raw, files: [] };
}

/** Reads a file or a directory of YAML files, merges, validates. Throws ConfigError (or an fs error). */
export function loadConfig(pathOrDir: string): LoadedConfig {
  let files: string[];
  try {
    files = configFiles(pathOrDir);
  } catch (err) {
    throw new ConfigError([{ path: pathOrDir, message: `cannot read config: ${(err as Error).message}` }]);
  }
  if (files.length === 0) throw new ConfigError([{ path: pathOrDir, message: 'no .yml or .yaml files found' }]);
  let raw: YamlMap = {};
  for (const file of files) raw = mergeConfig(raw, parseYaml(readFileSync(file, 'utf8'), file));
  return { ...validateConfig(raw), raw, files };
}
