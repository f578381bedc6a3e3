/**
 * Go's flag package semantics, so nebula-ts-cert accepts exactly what nebula-cert does: "-flag value",
 * "-flag=value", "--flag", boolean flags only take "=value", parsing stops at the first non-flag or "--".
 * Error messages are the flag package's, and `printDefaults` writes the flag list of a mode's usage text the way
 * FlagSet.PrintDefaults does, from the same definitions the parser uses.
 */
import { CliError, HelpRequested } from './errors';
import { formatGoDuration, parseGoDuration } from './duration';

type FlagKind = 'string' | 'bool' | 'duration' | 'uint';
type FlagValue = string | boolean | bigint;

interface FlagDef {
  kind: FlagKind;
  value: FlagValue;
  readonly defaultValue: FlagValue;
  readonly usage: string;
}

const MAX_UINT64 = (1n << 64n) - 1n;

export class FlagSet {
  private defs = new Map<string, FlagDef>();
  /** Arguments left after the flags. */
  rest: string[] = [];

  private define(name: string, kind: FlagKind, value: FlagValue, usage: string): this {
    this.defs.set(name, { kind, value, defaultValue: value, usage });
    return this;
  }

  string(name: string, def = '', usage = ''): this {
    return this.define(name, 'string', def, usage);
  }
  bool(name: string, def = false, usage = ''): this {
    return this.define(name, 'bool', def, usage);
  }
  duration(name: string, defNs = 0n, usage = ''): this {
    return this.define(name, 'duration', defNs, usage);
  }
  /** Go's flag.Uint: parsed like strconv.ParseUint(s, 0, 64) (decimal, 0x, 0o, 0b, leading-0 octal, underscores). */
  uint(name: string, def = 0n, usage = ''): this {
    return this.define(name, 'uint', def, usage);
  }

  getString(name: string): string {
    return this.get(name, 'string') as string;
  }
  getBool(name: string): boolean {
    return this.get(name, 'bool') as boolean;
  }
  getDuration(name: string): bigint {
    return this.get(name, 'duration') as bigint;
  }
  getUint(name: string): bigint {
    return this.get(name, 'uint') as bigint;
  }

  private get(name: string, kind: FlagKind): FlagValue {
    const d = this.defs.get(name);
    if (!d || d.kind !== kind) throw new Error(`internal: no ${kind} flag ${name}`);
    return d.value;
  }

  /** Parses `args`; throws CliError (bad flags) or HelpRequested (-h / -help not defined as a flag). */
  parse(args: readonly string[]): this {
    let i = 0;
    while (i < args.length) {
      const s = args[i]!;
      if (s.length < 2 || s[0] !== '-') break;
      let minuses = 1;
      if (s[1] === '-') {
        minuses = 2;
        if (s.length === 2) {
          i++;
          break;
        }
      }
      let name = s.slice(minuses);
      if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new CliError(`bad flag syntax: ${s}`);
      i++;
      let value: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      const def = this.defs.get(name);
      if (!def) {
        if (name === 'help' || name === 'h') throw new HelpRequested();
        throw new CliError(`flag provided but not defined: -${name}`);
      }
      if (def.kind === 'bool') {
        if (value === undefined) def.value = true;
        else {
          const b = parseGoBool(value);
          if (b === undefined) throw new CliError(`invalid boolean value "${value}" for -${name}: parse error`);
          def.value = b;
        }
        continue;
      }
      if (value === undefined) {
        if (i >= args.length) throw new CliError(`flag needs an argument: -${name}`);
        value = args[i++]!;
      }
      def.value = convert(def.kind, name, value);
    }
    this.rest = args.slice(i);
    return this;
  }

  /** FlagSet.PrintDefaults: flags sorted by name, "  -name type\n    \tusage (default x)". */
  printDefaults(): string {
    let out = '';
    for (const name of [...this.defs.keys()].sort()) {
      const d = this.defs.get(name)!;
      let line = `  -${name}`;
      const typeName = d.kind === 'bool' ? '' : d.kind;
      if (typeName !== '') line += ` ${typeName}`;
      // One-letter boolean flags keep their usage on the same line, as Go does.
      line += line.length <= 4 ? '\t' : '\n    \t';
      line += d.usage.replaceAll('\n', '\n    \t');
      const shown = defaultText(d);
      if (shown !== undefined) line += ` (default ${shown})`;
      out += line + '\n';
    }
    return out;
  }
}

function convert(kind: FlagKind, name: string, value: string): FlagValue {
  if (kind === 'string') return value;
  if (kind === 'duration') {
    try {
      return parseGoDuration(value);
    } catch {
      throw new CliError(`invalid value "${value}" for flag -${name}: parse error`);
    }
  }
  const n = parseGoUint(value);
  if (n === undefined) throw new CliError(`invalid value "${value}" for flag -${name}: parse error`);
  if (n > MAX_UINT64) throw new CliError(`invalid value "${value}" for flag -${name}: value out of range`);
  return n;
}

/** The " (default ...)" part: omitted for zero values; strings quoted (%q), durations in Go's String() form. */
function defaultText(d: FlagDef): string | undefined {
  switch (d.kind) {
    case 'bool':
      return d.defaultValue === true ? 'true' : undefined;
    case 'string':
      return d.defaultValue === '' ? undefined : JSON.stringify(d.defaultValue);
    case 'duration':
      return d.defaultValue === 0n ? undefined : formatGoDuration(d.defaultValue as bigint);
    case 'uint':
      return d.defaultValue === 0n ? undefined : String(d.defaultValue);
  }
}

function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/** strconv.ParseUint(text, 0, 64) syntax; returns undefined on a syntax error (range is the caller's check). */
function parseGoUint(text: string): bigint | undefined {
  let radix = 10;
  let digits = text;
  const b = text[1]?.toLowerCase();
  if (text.length >= 3 && text[0] === '0' && (b === 'x' || b === 'o' || b === 'b')) {
    radix = b === 'x' ? 16 : b === 'o' ? 8 : 2;
    digits = text.slice(2);
  } else if (text.length > 1 && text[0] === '0') {
    radix = 8;
    digits = text.slice(1);
  }
  if (digits.includes('_')) {
    if (!underscoresOk(text)) return undefined;
    digits = digits.replaceAll('_', '');
  }
  const valid = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ }[radix as 2 | 8 | 10 | 16];
  if (!valid.test(digits)) return undefined;
  let n = 0n;
  for (const c of digits) n = n * BigInt(radix) + BigInt(parseInt(c, radix));
  return n;
}

/** strconv's underscoreOK: underscores only between digits (a base prefix counts as a digit), as in Go literals. */
function underscoresOk(text: string): boolean {
  let saw = '^';
  let i = 0;
  const hex = /^0[xX]/.test(text);
  if (/^0[bBoOxX]/.test(text)) {
    i = 2;
    saw = '0';
  }
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (/[0-9]/.test(c) || (hex && /[a-fA-F]/.test(c))) saw = '0';
    else if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
    } else {
      if (saw === '_') return false;
      saw = '!';
    }
  }
  return saw !== '_';
}
