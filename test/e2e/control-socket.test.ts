/**
 * The default control socket (issue 8), as an operator meets it: two nebula-ts nodes in two network namespaces with
 * the same tun.dev and no control.socket in their configs both run, and a bare `nebula-ctl status` run in each
 * namespace (`ip netns exec NS nebula-ctl status`) reaches its own node. A node killed with SIGKILL leaves a stale
 * socket that the restarted node replaces. A second node started in a namespace whose node already answers on the
 * same socket refuses to start and disturbs nothing; a second node with another tun.dev runs beside it, and a bare
 * nebula-ctl then asks to pick one.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { CONTROL_SOCKET_BASE } from '../../src/shared/control-path';
import { nodeCommand } from '../../src/testbed/runner-hooks';
import { prereqs } from '../helpers/prereq';
import { alive, newMesh, status, until, ROOT } from './helpers';

const A = '192.168.100.1';
const B = '192.168.100.2';
const CTL = path.join(ROOT, 'bin', 'nebula-ctl');
const SUPERVISOR = path.join(ROOT, 'dist', 'supervisor', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end and collects its output (asynchronously: the nodes keep running meanwhile). */
function run(cmd: string, args: string[], children: Set<ChildProcess>): Promise<Run> {
  return new Promise((resolve) => {
    // No NEBULA_TS_SOCKET from the caller: the point is the bare default.
    const env = { ...process.env };
    delete env.NEBULA_TS_SOCKET;
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `ip netns exec NS nebula-ctl ARGS...`: no -socket, no -config unless given. */
function ctlIn(ns: string, args: string[], children: Set<ChildProcess>): Promise<Run> {
  return run('ip', ['netns', 'exec', ns, ...nodeCommand(), CTL, ...args], children);
}

/** The VPN IP a bare `nebula-ctl status` in `ns` reports (fails the caller with its stderr otherwise). */
async function bareStatusIp(ns: string, children: Set<ChildProcess>): Promise<string> {
  const r = await ctlIn(ns, ['status'], children);
  if (r.code !== 0) throw new Error(`nebula-ctl status in ${ns} exited ${r.code}: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { vpnIp: string }).vpnIp;
}

t.test('default control socket: one per namespace, bare nebula-ctl reaches its own node, stale replaced, live kept', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const children = new Set<ChildProcess>();
  // Nodes and nebula-ctl runs started outside the mesh are killed at the end even when an assertion threw.
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const mesh = await newMesh(t);
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, routines: 2, defaultControlSocket: true });
  const b = await mesh.add({ name: 'b', kind: 'ts', overlayIp: B, defaultControlSocket: true });
  mesh.writeConfigs();

  // The configs leave control.socket to the default, and share tun.dev.
  for (const n of [a, b]) {
    const cfg = YAML.parse(readFileSync(n.configPath, 'utf8')) as { control?: unknown; tun: { dev: string } };
    t.notOk('control' in cfg, `${n.name}: no control section in its config`);
    t.equal(cfg.tun.dev, 'nebula1', `${n.name}: tun.dev nebula1`);
  }
  t.not(a.controlSocket, b.controlSocket, `two namespaces, two default paths (${a.controlSocket}, ${b.controlSocket})`);
  t.equal(path.dirname(a.controlSocket), CONTROL_SOCKET_BASE);

  await Promise.all([mesh.start('a'), mesh.start('b')]);
  t.ok(await mesh.pingUntilReply('a', B), 'both nodes run: a reaches b through the overlay');

  t.test('a bare nebula-ctl in each namespace reaches its own node', async (t) => {
    t.equal(await bareStatusIp(a.ns, children), A, `in ${a.ns}: a (${A})`);
    t.equal(await bareStatusIp(b.ns, children), B, `in ${b.ns}: b (${B})`);
    for (const n of [a, b]) {
      const st = statSync(n.controlSocket);
      t.ok(st.isSocket(), `${n.controlSocket} is a socket`);
      t.equal(st.mode & 0o777, 0o600, `${n.name}: socket mode 0600`);
    }
    t.equal(statSync(CONTROL_SOCKET_BASE).mode & 0o077, 0, `${CONTROL_SOCKET_BASE} is private to its owner`);
    const reload = await ctlIn(a.ns, ['reload'], children);
    t.equal(reload.code, 0, `bare reload in a's namespace: ${reload.stderr.trim()}`);
    t.match(reload.stdout, /^reloaded: nothing changed/);
  });

  t.test('a second node on the same socket in the same namespace refuses to start and disturbs nothing', async (t) => {
    const inoBefore = statSync(a.controlSocket).ino;
    const pidA = a.process!.pid!;
    // b's config (same tun.dev, so the same default socket) started in a's namespace.
    const r = await run('ip', ['netns', 'exec', a.ns, ...nodeCommand(), SUPERVISOR, '-config', b.configPath], children);
    const out = r.stdout + r.stderr;
    t.not(r.code, 0, `exits non-zero (${r.code})`);
    t.match(out, /level=error msg="Failed to start"/, '"Failed to start" logged');
    t.ok(out.includes(`another nebula-ts node is already listening on control socket ${a.controlSocket}`), `names the path: ${out.trim()}`);
    t.notMatch(out, /Nebula interface is active/, 'it never came up');
    t.ok(alive(pidA), 'a still runs');
    t.equal(statSync(a.controlSocket).ino, inoBefore, "a's socket is still there, untouched");
    t.equal(await bareStatusIp(a.ns, children), A, 'a bare nebula-ctl still reaches a');
    t.ok(await mesh.pingUntilReply('a', B), 'a still carries traffic');
  });

  t.test('another tun.dev in the same namespace: both run, a bare nebula-ctl asks to pick, -config picks', async (t) => {
    // b's identity, no device, another port, no peers: it disturbs nothing of a's.
    const cfg = YAML.parse(readFileSync(b.configPath, 'utf8')) as Record<string, unknown>;
    const configPath = path.join(mesh.dir, 'second-in-a.yml');
    writeFileSync(configPath, YAML.stringify({ ...cfg, static_host_map: {}, listen: { host: '0.0.0.0', port: 4243 }, tun: { disabled: true, dev: 'nebula2' } }), { mode: 0o600 });
    const child = spawn('ip', ['netns', 'exec', a.ns, ...nodeCommand(), SUPERVISOR, '-config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await until('the second node to come up', () => out, (o) => /Nebula interface is active/.test(o) || child.exitCode !== null, 15_000);
    t.match(out, /Nebula interface is active/, `the second node runs: ${out.slice(-400)}`);
    const secondSocket = a.controlSocket.replace(/\.nebula1\.sock$/, '.nebula2.sock');
    t.ok(existsSync(secondSocket), `its socket: ${secondSocket}`);

    const bare = await ctlIn(a.ns, ['status'], children);
    t.equal(bare.code, 1);
    t.match(bare.stderr, /^nebula-ctl: several nebula-ts nodes listen in this network namespace \(.*\): pick one with -socket PATH or -config FILE\n$/);
    const picked = await ctlIn(a.ns, ['-config', configPath, 'status'], children);
    t.equal(picked.code, 0, picked.stderr);
    t.equal((JSON.parse(picked.stdout) as { vpnIp: string }).vpnIp, B, '-config reaches the second node');

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'the second node stops cleanly');
    t.notOk(existsSync(secondSocket), 'and removes its socket');
    t.equal(await bareStatusIp(a.ns, children), A, 'a bare nebula-ctl reaches a again');
  });

  t.test('SIGKILL leaves a stale socket; restarted, the node replaces it', async (t) => {
    const routinePids = (await status(mesh, 'a')).routines.map((r) => r.pid);
    await mesh.stop('a', 'SIGKILL');
    // The routines follow their supervisor; the tun device goes with the last of them.
    await until('a\'s routines to exit', () => routinePids.filter(alive), (l) => l.length === 0, 5000);
    t.ok(statSync(a.controlSocket).isSocket(), 'the killed node left its socket behind');
    const dead = await ctlIn(a.ns, ['status'], children);
    t.equal(dead.code, 1);
    t.equal(dead.stderr, `nebula-ctl: no nebula-ts node is listening on ${a.controlSocket} (is it running? pick another with -socket or -config)\n`);
    t.equal(await bareStatusIp(b.ns, children), B, 'b is not affected');

    const from = a.output.length;
    await mesh.start('a');
    // start() also matches lines of the first run: wait for this run's.
    await mesh.waitForOutput('a', /Nebula interface is active/, 15_000, from);
    t.ok(a.output.slice(from).some((l) => /Replaced a stale control socket/.test(l)), 'the stale socket was replaced (logged)');
    t.equal(await bareStatusIp(a.ns, children), A, 'a bare nebula-ctl reaches the restarted a');
    t.equal(statSync(a.controlSocket).mode & 0o777, 0o600, 'still 0600');
    t.ok(await mesh.pingUntilReply('a', B), 'the restarted a carries traffic');
  });
});
