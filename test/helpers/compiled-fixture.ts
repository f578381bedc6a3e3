/**
 * Test fixtures (TypeScript programs a test runs as child processes) as plain JavaScript, compiled in this test
 * process, so a child starts as `node fixture.js` instead of going through tap's TypeScript loader again.
 *
 * Why: a child started with `process.execArgv` (tap's ts-node loader) loads the TypeScript compiler and transpiles
 * every file it imports before it does anything: about 2 s of CPU per child on this project's 2-core machines, and
 * some e2e tests start a dozen fixtures. This process already has the compiler loaded (that same loader runs the
 * test), and transpiling a fixture's few files here takes milliseconds.
 *
 * `compiledFixture(entry)` transpiles the entry and every file it imports by relative path (recursively) with the
 * same compiler options as the loader would (transpile only, CommonJS), into a per-process directory that mirrors
 * the project's layout, so relative imports keep working and `node_modules` (a link to the project's) resolves
 * packages. The directory is removed when this process exits. The result is what the loader would have run: same
 * sources, same transpiler, no type checking in either case. `fixtureCommand` also leaves out the runner's
 * process-info hook, which tap would otherwise put into the child's NODE_OPTIONS.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { nodeCommand } from '../../src/testbed/runner-hooks';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** The project's compiler options, as ts-node's transpile-only mode applies them (module: CommonJS for .ts). */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  esModuleInterop: true,
  inlineSourceMap: true,
  inlineSources: true,
};

let outRoot: string | undefined;
/** Source path -> compiled path, for everything compiled by this process. */
const compiled = new Map<string, string>();

function outputRoot(): string {
  if (outRoot) return outRoot;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-fixtures-'));
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  outRoot = dir;
  return dir;
}

/** The file a relative import `spec` from `dir` names: `x.ts`, `x/index.ts`, or an existing non-TS file. */
function resolveImport(dir: string, spec: string, importer: string): string {
  const base = path.resolve(dir, spec);
  const candidates = [`${base}.ts`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts'), base];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  throw new Error(`compiled fixture: cannot resolve '${spec}' imported by ${importer}`);
}

/** Relative module specifiers required by CommonJS output (`require("./x")`, `require('../y')`). */
function relativeRequires(js: string): string[] {
  return [...js.matchAll(/\brequire\((["'])(\.{1,2}\/[^"']*)\1\)/g)].map((m) => m[2]!);
}

/**
 * The path of a runnable JavaScript copy of the TypeScript program `entry` (absolute, inside the project), compiled
 * on first use in this process. Run it with `process.execPath` and no loader flags.
 */
export function compiledFixture(entry: string): string {
  const entryPath = path.resolve(entry);
  const pending = [entryPath];
  while (pending.length > 0) {
    const src = pending.pop()!;
    if (compiled.has(src)) continue;
    const rel = path.relative(PROJECT_ROOT, src);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`compiled fixture: ${src} is outside the project`);
    if (!src.endsWith('.ts')) {
      // A plain JavaScript or data file: copied as it is.
      const out = path.join(outputRoot(), rel);
      mkdirSync(path.dirname(out), { recursive: true });
      copyFileSync(src, out);
      compiled.set(src, out);
      continue;
    }
    const out = path.join(outputRoot(), rel.replace(/\.ts$/, '.js'));
    const { outputText } = ts.transpileModule(readFileSync(src, 'utf8'), { fileName: src, compilerOptions: COMPILER_OPTIONS });
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, outputText);
    compiled.set(src, out);
    for (const spec of relativeRequires(outputText)) pending.push(resolveImport(path.dirname(src), spec, src));
  }
  return compiled.get(entryPath)!;
}

/**
 * The command that runs fixture `entry`: node (without the test runner's hooks, src/testbed/runner-hooks.ts), source
 * maps on, the compiled script. Arguments for the fixture go after it.
 */
export function fixtureCommand(entry: string): string[] {
  return [...nodeCommand(), '--enable-source-maps', compiledFixture(entry)];
}
