/**
 * A world-readable copy of what a node (or a CLI) loads at run time, for running it as an unprivileged user.
 *
 * The checkout may sit under a directory only its owner can enter (/root/...), and npm ci / tsc under a umask of
 * 077 leave dist/ and node_modules/ 0600. An unprivileged user can then load nothing from it. Rather than loosening
 * the user's checkout, the harness copies bin/, dist/, package.json and the runtime packages (package.json
 * `dependencies` minus those the node never loads, and everything they depend on, optional ones included when
 * installed: koffi's prebuilt binary is one) into a fresh temp directory, with explicit modes (0755 directories and
 * executables, 0644 files) whatever the umask. Type declarations, source maps, TypeScript sources and packages'
 * test/doc/example directories are left out (about 790 files, 8 MB).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Dependencies in package.json that the node and the CLIs never load (pm2 runs the node; it is not loaded by it). */
const NOT_LOADED = new Set(['pm2']);

export interface RuntimeCopy {
  /** The copy's root: `<root>/dist/supervisor/main.js`, `<root>/bin/nebula-ctl`, `<root>/node_modules/...`. */
  root: string;
  files: number;
  bytes: number;
  /** Removes the copy (idempotent). */
  remove(): void;
}

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Where node's resolution finds package `name` from `fromDir` (node_modules of it and its ancestors). */
function findPackage(name: string, fromDir: string): string | undefined {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(d) === d) return undefined;
  }
}

/** Directories of the runtime packages of `projectRoot` and of everything they depend on. */
export function runtimePackageDirs(projectRoot: string): string[] {
  const found = new Set<string>();
  const visit = (name: string, fromDir: string, optional: boolean): void => {
    const dir = findPackage(name, fromDir);
    if (!dir) {
      if (optional) return; // another platform's prebuilt binary, say
      throw new Error(`runtime copy: package ${name} (needed from ${fromDir}) is not installed: run npm ci`);
    }
    if (found.has(dir)) return;
    found.add(dir);
    const pkg = readPackageJson(dir);
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  const top = readPackageJson(projectRoot);
  for (const dep of Object.keys(top.dependencies ?? {})) if (!NOT_LOADED.has(dep)) visit(dep, projectRoot, false);
  for (const dep of Object.keys(top.optionalDependencies ?? {})) if (!NOT_LOADED.has(dep)) visit(dep, projectRoot, true);
  return [...found].sort();
}

function skipped(name: string): boolean {
  return /\.d\.[cm]?ts$|\.[cm]?ts$|\.map$/.test(name);
}

/** Top-level directories of a package that nothing loads at run time (bintrees ships a 2 MB perf fixture in test/). */
const PACKAGE_EXTRAS = new Set(['node_modules', 'test', 'tests', '__tests__', 'doc', 'docs', 'example', 'examples']);

/**
 * Copies `src` to `dst` recursively with explicit modes. For a package (`pkg`), its top-level PACKAGE_EXTRAS are left
 * out: its nested node_modules too (the packages needed from there are copied on their own).
 */
function copyTree(src: string, dst: string, counts: { files: number; bytes: number }, pkg: boolean): void {
  mkdirSync(dst, { recursive: true });
  chmodSync(dst, 0o755); // mkdir's mode is filtered by the umask; chmod is not
  for (const e of readdirSync(src, { withFileTypes: true })) {
    if (pkg && PACKAGE_EXTRAS.has(e.name)) continue;
    const from = path.join(src, e.name);
    const to = path.join(dst, e.name);
    const st = e.isSymbolicLink() ? statSync(from) : undefined; // follow links: the user may not reach their target
    if (e.isDirectory() || st?.isDirectory()) copyTree(from, to, counts, false);
    else if (e.isFile() || st?.isFile()) {
      if (skipped(e.name)) continue;
      const fst = st ?? statSync(from);
      copyFileSync(from, to);
      chmodSync(to, fst.mode & 0o111 ? 0o755 : 0o644);
      counts.files++;
      counts.bytes += fst.size;
    }
  }
}

/**
 * Makes the copy in a fresh directory under os.tmpdir() (0755, root-owned, so the unprivileged user can read but
 * not change it). Call `remove()` when done; on error nothing is left behind.
 */
export function copyRuntime(projectRoot: string): RuntimeCopy {
  const dist = path.join(projectRoot, 'dist');
  if (!existsSync(path.join(dist, 'supervisor', 'main.js'))) throw new Error(`runtime copy: ${dist} is not built: run npm run build`);
  // Every directory down to the copy must let others through (a TMPDIR under a 0700 home would not).
  for (let d = os.tmpdir(); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) throw new Error(`runtime copy: other users cannot enter ${d}: set TMPDIR to a directory they can reach`);
    if (path.dirname(d) === d) break;
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-runtime-'));
  const remove = (): void => rmSync(root, { recursive: true, force: true });
  try {
    chmodSync(root, 0o755);
    const counts = { files: 0, bytes: 0 };
    copyTree(dist, path.join(root, 'dist'), counts, false);
    copyTree(path.join(projectRoot, 'bin'), path.join(root, 'bin'), counts, false);
    copyFileSync(path.join(projectRoot, 'package.json'), path.join(root, 'package.json'));
    chmodSync(path.join(root, 'package.json'), 0o644);
    for (const dir of runtimePackageDirs(projectRoot)) {
      const rel = path.relative(projectRoot, dir);
      // A package found above the project (a hoisting parent) goes into the copy's own node_modules.
      const target = rel.startsWith('..') ? path.join(root, 'node_modules', readPackageName(dir)) : path.join(root, rel);
      copyTree(dir, target, counts, true);
      // The directories above it (node_modules, @scope, ...) were made by mkdir -p, under the umask: fix their modes.
      for (let d = path.dirname(target); d.length > root.length; d = path.dirname(d)) chmodSync(d, 0o755);
    }
    return { root, files: counts.files, bytes: counts.bytes, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

function readPackageName(dir: string): string {
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string }).name;
}
