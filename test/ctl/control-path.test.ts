/**
 * The default control socket path (src/shared/control-path.ts), which the node's config default and a bare
 * nebula-ctl both use, and nebula-ctl's one-line errors. The CLI parts run the compiled bin/ (npm run build first).
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../../src/shared/config';
import {
  CONTROL_SOCKET_BASE,
  currentNetnsInode,
  defaultControlSocketCandidates,
  defaultControlSocketPath,
  defaultControlSocketPattern,
} from '../../src/shared/control-path';
import { copyRuntime } from '../../src/testbed/runtime-copy';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { prereqs } from '../helpers/prereq';

const ROOT = path.resolve(__dirname, '../..');
const CTL = path.join(ROOT, 'bin', 'nebula-ctl');
const NEBULA_TS = path.join(ROOT, 'bin', 'nebula-ts');
const PKI = 'pki: {ca: /etc/ca.crt, cert: /etc/host.crt, key: /etc/host.key}\n';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'nts-ctlpath-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** A clean environment for the CLI: no NEBULA_TS_SOCKET unless given, none of the test runner's loader options. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, ...extra };
}

/** Runs nebula-ctl asynchronously (the fake nodes below live in this process: a sync spawn would block them). */
function ctl(args: string[], opts: { env?: Record<string, string>; uid?: number; gid?: number; bin?: string } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Through env -u: tap's process-info hook adds its loader to NODE_OPTIONS of every child, and that loader
    // cannot write its record as nobody.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, opts.bin ?? CTL, ...args], { env: cliEnv(opts.env), uid: opts.uid, gid: opts.gid, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A fake node answering every request with `reply` (plus the command). */
function fakeNode(p: string, reply: Record<string, unknown>): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => {
      let buf = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) c.end(JSON.stringify({ ...reply, cmd: (JSON.parse(buf.slice(0, nl)) as { cmd: string }).cmd }) + '\n');
      });
      c.on('error', () => undefined);
    });
    s.once('error', reject);
    s.listen(p, () => resolve(s));
  });
}

function closeServer(s: net.Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

t.test('the default path: per network namespace inode and tun.dev', async (t) => {
  const a = defaultControlSocketPath('nebula1', { netnsInode: 4026531840 });
  const b = defaultControlSocketPath('nebula1', { netnsInode: 4026532999 });
  t.equal(a, '/run/nebula-ts/netns-4026531840.nebula1.sock');
  t.not(a, b, 'two namespaces, same tun.dev: two paths');
  t.equal(defaultControlSocketPath('nebula1', { netnsInode: 4026531840 }), a, 'same namespace, same tun.dev: one path');
  t.not(defaultControlSocketPath('nebula2', { netnsInode: 4026531840 }), a, 'two tun.devs in one namespace: two paths');
  t.equal(defaultControlSocketPath('', { netnsInode: 7 }), '/run/nebula-ts/netns-7.nebula.sock', 'empty tun.dev is "nebula"');
  t.equal(defaultControlSocketPath('nebula1', { netnsInode: null }), '/run/nebula-ts/nebula1.sock', 'no /proc: the old layout');
  t.equal(defaultControlSocketPattern({ netnsInode: 7 }), '/run/nebula-ts/netns-7.*.sock');
  t.equal(CONTROL_SOCKET_BASE, '/run/nebula-ts');
  // This process's namespace, the way the node and nebula-ctl both compute it.
  t.equal(currentNetnsInode(), statSync('/proc/self/ns/net').ino);
  t.equal(defaultControlSocketPath('nebula1'), `/run/nebula-ts/netns-${statSync('/proc/self/ns/net').ino}.nebula1.sock`);
});

t.test('node and nebula-ctl agree: the config default is what nebula-ctl finds', async (t) => {
  // The config default (what the node listens on) is the helper's path for this namespace ...
  const { config } = parseConfig(PKI + 'tun: {dev: nebula7}\n');
  t.equal(config.control.socket, defaultControlSocketPath('nebula7'));
  const explicit = parseConfig(PKI + 'tun: {dev: nebula7}\ncontrol: {socket: /tmp/mine.sock}\n');
  t.equal(explicit.config.control.socket, '/tmp/mine.sock', 'an explicit control.socket wins');

  // ... and nebula-ctl's lookup (same helper) finds exactly the node's path, whatever the tun.dev, in a base dir of
  // sockets of several namespaces.
  const base = path.join(tmp, 'base');
  mkdirSync(base, { mode: 0o700 });
  const ours = defaultControlSocketPath('weird-dev.7', { base, netnsInode: 111 });
  const theirs = defaultControlSocketPath('weird-dev.7', { base, netnsInode: 1111 });
  const servers = [await fakeNode(ours, { ok: true }), await fakeNode(theirs, { ok: true })];
  t.teardown(() => Promise.all(servers.map(closeServer)));
  writeFileSync(path.join(base, 'netns-111.notasocket.sock'), ''); // not a socket: ignored
  t.same(defaultControlSocketCandidates({ base, netnsInode: 111 }), [ours], 'namespace 111 finds its node only');
  t.same(defaultControlSocketCandidates({ base, netnsInode: 1111 }), [theirs], 'namespace 1111 finds its node only');
  t.same(defaultControlSocketCandidates({ base, netnsInode: 11 }), [], 'namespace 11: none (no prefix confusion)');
  t.same(defaultControlSocketCandidates({ base, netnsInode: null }), [], 'the no-/proc layout ignores namespaced sockets');
  t.same(defaultControlSocketCandidates({ base: path.join(tmp, 'missing'), netnsInode: 111 }), [], 'no directory: none');
});

t.test('nebula-ts -test prints the resolved control.socket', async (t) => {
  const file = path.join(tmp, 'test.yml');
  // -test loads the PKI files, so this config names real ones.
  const made = makeHostCert(path.join(tmp, 'pki'), makeCA(path.join(tmp, 'pki'), 'ctl-ca'), { name: 'n', ip: '192.168.100.1/24' });
  writeFileSync(file, `pki: {ca: ${made.ca}, cert: ${made.cert}, key: ${made.key}}\ntun: {dev: nebula5}\n`);
  const r = spawnSync(process.execPath, [NEBULA_TS, '-config', file, '-test'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const cfg = JSON.parse(r.stdout) as { control: { socket: string } };
  t.equal(cfg.control.socket, defaultControlSocketPath('nebula5'), cfg.control.socket);
  t.match(cfg.control.socket, /^\/run\/nebula-ts\/netns-\d+\.nebula5\.sock$/);
});

t.test('nebula-ctl: -socket, -config and NEBULA_TS_SOCKET reach the node', async (t) => {
  const p = path.join(tmp, 'fake.sock');
  const s = await fakeNode(p, { ok: true, vpnIp: '192.168.100.9' });
  t.teardown(() => closeServer(s));
  const bySocket = await ctl(['-socket', p, 'status']);
  t.equal(bySocket.status, 0, bySocket.stderr);
  t.match(JSON.parse(bySocket.stdout), { ok: true, vpnIp: '192.168.100.9', cmd: 'status' });

  const cfgFile = path.join(tmp, 'ctl.yml');
  writeFileSync(cfgFile, YAML.stringify({ pki: { ca: '/etc/ca.crt', cert: '/etc/h.crt', key: '/etc/h.key' }, control: { socket: p } }));
  const byConfig = await ctl(['-config', cfgFile, 'reload']);
  t.equal(byConfig.status, 0, byConfig.stderr);
  t.match(byConfig.stdout, /^reloaded/);

  const byEnv = await ctl(['status'], { env: { NEBULA_TS_SOCKET: p } });
  t.equal(byEnv.status, 0, byEnv.stderr);
  t.match(JSON.parse(byEnv.stdout), { vpnIp: '192.168.100.9' });
  const flagOverEnv = await ctl(['-socket', path.join(tmp, 'none.sock'), 'status'], { env: { NEBULA_TS_SOCKET: p } });
  t.equal(flagOverEnv.status, 1, '-socket wins over NEBULA_TS_SOCKET');
});

t.test('nebula-ctl: one-line errors for no node, a stale socket, a non-socket', async (t) => {
  const missing = path.join(tmp, 'missing.sock');
  const r1 = await ctl(['-socket', missing, 'status']);
  t.equal(r1.status, 1);
  t.equal(r1.stderr, `nebula-ctl: no nebula-ts node is listening on ${missing} (is it running? pick another with -socket or -config)\n`);
  t.equal(r1.stdout, '');

  const stale = path.join(tmp, 'stale.sock');
  const s = await fakeNode(stale, { ok: true });
  renameSync(stale, `${stale}.aside`); // libuv's close unlinks the path: keep the file, as SIGKILL does
  await closeServer(s);
  renameSync(`${stale}.aside`, stale);
  const r2 = await ctl(['-socket', stale, 'reload']);
  t.equal(r2.status, 1);
  t.equal(r2.stderr, `nebula-ctl: no nebula-ts node is listening on ${stale} (is it running? pick another with -socket or -config)\n`);

  const file = path.join(tmp, 'regular');
  writeFileSync(file, 'x');
  const r3 = await ctl(['-socket', file, 'status']);
  t.equal(r3.status, 1);
  t.equal(r3.stderr, `nebula-ctl: ${file} is not a socket (is it the node's control.socket? pick another with -socket or -config)\n`);
});

t.test('nebula-ctl: permission denied is said so (needs root to run it as nobody)', async (t) => {
  if (!prereqs(t, ['root'])) return;
  const dir = path.join(tmp, 'private');
  mkdirSync(dir, { mode: 0o700 });
  const p = path.join(dir, 'c.sock');
  const s = await fakeNode(p, { ok: true });
  t.teardown(() => closeServer(s));
  chmodSync(p, 0o600);
  // nobody must be able to reach the CLI itself: run a world-readable copy of it (the checkout may be in a 0700
  // directory, or built under umask 077).
  const runtime = copyRuntime(ROOT);
  t.teardown(() => runtime.remove());
  const bin = path.join(runtime.root, 'bin', 'nebula-ctl');
  // nobody reaches the socket's directory through `tmp` (mkdtemp made it 0700).
  chmodSync(tmp, 0o711);
  const r = await ctl(['-socket', p, 'status'], { uid: 65534, gid: 65534, bin });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, new RegExp(`^nebula-ctl: permission denied on ${p.replace(/[.]/g, '\\.')} \\(.*run nebula-ctl as the node's user, usually root\\)\\n$`));
  // The socket itself 0600 in an open directory: connect() is what is denied.
  chmodSync(dir, 0o755);
  const r2 = await ctl(['-socket', p, 'status'], { uid: 65534, gid: 65534, bin });
  t.equal(r2.status, 1, r2.stderr);
  t.match(r2.stderr, /^nebula-ctl: permission denied on /);
});
