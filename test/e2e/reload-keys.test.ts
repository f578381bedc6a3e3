/**
 * Issue 10 acceptance on one three-node mesh (checks share it to stay cheap):
 *  - 50 outbound UDP flows from a (routines 4, inbound rules allow nothing) to an echo server on b: every reply
 *    comes back through the one conntrack table shared by the routines that sent the flows, no `no_rule` drop;
 *  - a broken firewall section on b: SIGHUP logs the key path, `nebula-ctl reload` exits non-zero printing it, and
 *    the old rules stay in force (the allowed probe still answered, the blocked one still dropped);
 *  - a static_host_map entry added on reload: a brings up a tunnel to a Go 1.6.1 node it did not know, at once and
 *    without a restart (the Go node knows nobody, so only a can have initiated it);
 *  - listen.read_buffer / write_buffer applied on reload to all four sockets, while tun.mtu in the same reload is
 *    named as needing a restart and left alone.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { prereqs } from '../helpers/prereq';
import { background } from './fixtures/background';
import { linesMatching, newMesh, status, until, ROOT } from './helpers';

const A = '192.168.100.1';
const B = '192.168.100.2';
const C = '192.168.100.3';
const ECHO_PORT = 7001;
const BLOCKED_PORT = 7002;
const CTL = path.join(ROOT, 'bin', 'nebula-ctl');
/** The helper scripts run without the test runner's loaders (NODE_OPTIONS): they start in a fraction of the time. */
const NODE = ['-u', 'NODE_OPTIONS', process.execPath];

/** UDP echo server (in b): argv = [address, port]. */
const ECHO = `
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(Number(process.argv[2]), process.argv[1], () => console.log('listening'));`;

/**
 * UDP flows (in a): argv = [dst, port, flows, expectReply]. One socket (source port) per flow, one datagram each,
 * resent up to twice a second apart while no reply came; prints how many flows got their reply and the resends.
 * Without expectReply it sends each flow's datagram once and exits.
 */
const FLOWS = `
  const dgram = require('node:dgram');
  const [dst, port, flows, expectReply] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), process.argv[4] === '1'];
  const flow = (i) => new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const msg = Buffer.from('flow ' + i);
    let tries = 0;
    const done = (ok) => { clearInterval(timer); s.close(); resolve({ ok, tries }); };
    const send = () => { tries++; s.send(msg, port, dst, () => { if (!expectReply) done(false); }); };
    const timer = setInterval(() => (tries >= 3 ? done(false) : send()), 1000);
    s.on('message', (m) => { if (m.equals(msg)) done(true); });
    s.bind(0, send);
  });
  Promise.all(Array.from({ length: flows }, (_, i) => flow(i))).then((r) =>
    console.log(JSON.stringify({ replies: r.filter((x) => x.ok).length, resent: r.reduce((n, x) => n + x.tries - 1, 0) })));`;

interface Ctl {
  code: number;
  stdout: string;
  stderr: string;
}

function ctlReload(socket: string): Promise<Ctl> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CTL, '-socket', socket, 'reload'], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('reload: shared conntrack, a broken firewall, static_host_map additions, socket buffers', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const mesh = await newMesh(t);
  const a = await mesh.add({
    name: 'a',
    kind: 'ts',
    overlayIp: A,
    routines: 4,
    staticHosts: ['b'],
    config: { firewall: { inbound: [] } },
  });
  const b = await mesh.add({
    name: 'b',
    kind: 'ts',
    overlayIp: B,
    staticHosts: ['a'],
    config: {
      firewall: {
        inbound: [
          { port: ECHO_PORT, proto: 'udp', host: 'any' },
          { port: 'any', proto: 'icmp', host: 'any' },
        ],
      },
    },
  });
  await mesh.add({ name: 'c', kind: 'go', overlayIp: C, staticHosts: [] });
  mesh.writeConfigs();
  await Promise.all(['a', 'b', 'c'].map((n) => mesh.start(n)));
  t.ok(await mesh.pingUntilReply('a', B), 'a -> b: tunnel up (the replies pass a on conntrack alone)');
  const echo = background(t, b.ns, 'env', [...NODE, '-e', ECHO, B, String(ECHO_PORT)]);
  await echo.waitFor(/listening/, 10_000);
  const flows = async (port: number, n: number, expectReply: boolean): Promise<{ replies: number; resent: number }> =>
    JSON.parse(await mesh.exec('a', 'env', [...NODE, '-e', FLOWS, B, String(port), String(n), expectReply ? '1' : '0'], 30_000)) as { replies: number; resent: number };

  await t.test('50 outbound UDP flows from routines 4 with no inbound rule: every reply comes back', async (t) => {
    const before = await status(mesh, 'a');
    const r = await flows(ECHO_PORT, 50, true);
    t.equal(r.replies, 50, `all 50 flows got their reply (${r.resent} resends)`);
    const after = await status(mesh, 'a');
    const delta = (name: string): number => (after.counters[name] ?? 0) - (before.counters[name] ?? 0);
    t.equal(delta('firewall.incoming.dropped.no_rule'), 0, 'no reply dropped for want of a rule');
    t.equal(delta('firewall.incoming.dropped.invalid'), 0);
    const read = after.routines.map((x, i) => x.insideRx - before.routines[i]!.insideRx);
    const received = after.routines.map((x, i) => x.insideTx - before.routines[i]!.insideTx);
    t.equal(read.length, 4);
    t.ok(
      read.every((n) => n > 0),
      `every routine sent flows, so made conntrack entries (packets read from the inside per routine: ${read.join(', ')})`,
    );
    const delivered = received.reduce((x, y) => x + y, 0);
    t.ok(
      delivered >= 50 && delivered <= 50 + r.resent,
      `every reply delivered to the inside, matched against entries other routines made (${delivered} delivered per routine: ${received.join(', ')})`,
    );
  });

  await t.test('a broken firewall section: refused with its key path, the old rules stay in force', async (t) => {
    const good = readFileSync(b.configPath, 'utf8');
    const bad = YAML.parse(good) as { firewall: { inbound: Array<Record<string, unknown>> } };
    bad.firewall.inbound[0]!.proto = 'bogus';
    writeFileSync(b.configPath, YAML.stringify(bad));
    t.teardown(() => writeFileSync(b.configPath, good));
    const from = b.output.length;
    b.process!.kill('SIGHUP');
    const logged = await mesh.waitForOutput('b', /Failed to reload config/, 10_000, from);
    t.match(logged, /firewall\.inbound\[0\]\.proto/, 'SIGHUP: the log names the key path');
    const r = await ctlReload(b.controlSocket);
    t.not(r.code, 0, 'nebula-ctl reload exits non-zero');
    t.match(r.stderr, /reload failed, running config kept: .*firewall\.inbound\[0\]\.proto/, `and prints the key path: ${r.stderr.trim()}`);
    t.equal(linesMatching(mesh, 'b', /New firewall has been installed/, from).length, 0, 'no new firewall installed');

    const sb0 = await status(mesh, 'b');
    t.equal((await flows(ECHO_PORT, 3, true)).replies, 3, 'the allowed probe is still answered');
    const sent = 3;
    await flows(BLOCKED_PORT, sent, false);
    const sb1 = await until(
      'b to drop the blocked probes',
      () => status(mesh, 'b'),
      (s) => s.counters['firewall.incoming.dropped.no_rule']! - sb0.counters['firewall.incoming.dropped.no_rule']! >= sent,
      10_000,
    );
    t.equal(sb1.counters['firewall.incoming.dropped.no_rule']! - sb0.counters['firewall.incoming.dropped.no_rule']!, sent, 'the blocked probes are still dropped, each counted');
  });

  await t.test('a static_host_map entry added on reload gets a tunnel without a restart', async (t) => {
    t.notOk((await status(mesh, 'a')).tunnels.some((x) => x.vpnIp === C), 'no tunnel to c yet');
    const pid = a.process!.pid;
    a.staticHosts = ['b', 'c'];
    mesh.writeConfig(a);
    const cLog = mesh.node('c').output.length;
    const r = await ctlReload(a.controlSocket);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^reloaded: static_host_map changed$/m);
    const s = await until('a tunnel from a to c', () => status(mesh, 'a'), (x) => x.tunnels.some((y) => y.vpnIp === C), 10_000);
    t.ok(s.tunnels.some((x) => x.vpnIp === B), 'the tunnel to b is still there');
    t.ok(linesMatching(mesh, 'c', /Handshake message received/, cLog).length > 0, 'c answered a handshake from a');
    t.equal(a.process!.pid, pid, 'same process: no restart');
    t.equal(await mesh.ping('a', C, 2, 2), 2, 'a -> c pings go through');
  });

  await t.test('socket buffers applied on reload to every socket; a restart-only key named and left alone', async (t) => {
    a.config = { ...a.config, listen: { read_buffer: 1048576, write_buffer: 524288 }, tun: { mtu: 1400 } };
    mesh.writeConfig(a);
    const from = a.output.length;
    const r = await ctlReload(a.controlSocket);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^reloaded: listen\.read_buffer, listen\.write_buffer, tun\.mtu changed; restart needed for tun\.mtu$/m, r.stdout.trim());
    const mem = await mesh.exec('a', 'ss', ['-uamn', 'sport', '=', ':4242']);
    t.equal((mem.match(/rb2097152/g) ?? []).length, 4, 'all four sockets have the new read_buffer (the kernel doubles it)');
    t.equal((mem.match(/tb1048576/g) ?? []).length, 4, 'and the new write_buffer');
    t.equal(linesMatching(mesh, 'a', /listen\.read_buffer was set.*size=2097152/, from).length, 4, 'one log line per socket');
    t.match(await mesh.exec('a', 'ip', ['link', 'show', 'nebula1']), /mtu 1300 /, 'the device keeps its MTU');
    t.equal(linesMatching(mesh, 'a', /Some changed keys need a restart to take effect.*tun\.mtu/, from).length, 1, 'the warning names tun.mtu');
    t.equal(await mesh.ping('a', B, 2, 2), 2, 'traffic still flows');
  });
});
