/**
 * The world-readable runtime copy the harness runs unprivileged nodes from (src/testbed/runtime-copy.ts): explicit
 * modes whatever the umask, the packages the node loads (and not pm2), loadable by nobody, removed afterwards.
 * Needs the build (npm run build), as the CLI tests do.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { copyRuntime, runtimePackageDirs, type RuntimeCopy } from '../../src/testbed/runtime-copy';
import { prereqs } from '../helpers/prereq';

const ROOT = path.resolve(__dirname, '../..');
const NOBODY = 65534;

/** Paths (relative to `root`) whose mode is not the expected 0755 (directories) or 0644/0755 (files). */
function badModes(root: string): string[] {
  const bad: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const mode = statSync(p).mode & 0o7777;
      if (e.isDirectory()) {
        if (mode !== 0o755) bad.push(`${path.relative(root, p)} ${mode.toString(8)}`);
        walk(p);
      } else if (mode !== 0o644 && mode !== 0o755) bad.push(`${path.relative(root, p)} ${mode.toString(8)}`);
    }
  };
  walk(root);
  return bad;
}

t.test('runtime copy: the runtime packages, explicit modes under umask 077, removed by remove()', async (t) => {
  const rel = runtimePackageDirs(ROOT).map((d) => path.relative(ROOT, d));
  for (const p of ['koffi', 'prom-client', 'yaml', 'zod']) t.ok(rel.includes(path.join('node_modules', p)), `${p} is copied`);
  t.notOk(rel.some((d) => /(^|\/)pm2$/.test(d)), 'pm2 is not (the node never loads it)');
  t.ok(rel.some((d) => d.startsWith(path.join('node_modules', '@koromix'))), "koffi's prebuilt binary package is copied (an optional dependency)");

  const old = process.umask(0o077);
  const c = ((): RuntimeCopy => {
    try {
      return copyRuntime(ROOT);
    } finally {
      process.umask(old);
    }
  })();
  t.teardown(() => c.remove());
  t.comment(`runtime copy: ${c.files} files, ${(c.bytes / 1e6).toFixed(1)} MB`);
  t.equal(statSync(c.root).mode & 0o7777, 0o755, 'its root is 0755');
  for (const f of ['dist/supervisor/main.js', 'dist/routine/main.js', 'dist/routine/datapath-worker.js', 'bin/nebula-ctl', 'package.json']) {
    t.ok(existsSync(path.join(c.root, f)), `${f} is there`);
  }
  t.same(badModes(c.root), [], 'every directory 0755, every file 0644 (0755 if executable)');
  c.remove();
  t.notOk(existsSync(c.root), 'remove() removes it');
  t.doesNotThrow(() => c.remove(), 'remove() twice is fine');
});

t.test('runtime copy: nobody loads the packages and the native bindings from it', async (t) => {
  if (!prereqs(t, ['root'])) return;
  const c = copyRuntime(ROOT);
  t.teardown(() => c.remove());
  // libc.js binds libc through koffi (the native part); config.js loads yaml and zod; metrics loads prom-client.
  const modules = ['dist/shared/native/libc.js', 'dist/shared/config/index.js', 'node_modules/prom-client'].map((m) => path.join(c.root, m));
  const script = `for (const m of ${JSON.stringify(modules)}) require(m); process.stdout.write('loaded')`;
  // Without NODE_OPTIONS: the test runner's loaders live in the checkout (and tap's hook puts them back into the env
  // of every child, so unset it in the exec chain).
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', script], { uid: NOBODY, gid: NOBODY, cwd: '/', encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'loaded');
});
