/**
 * nebula-ctl's console commands (Nebula's ssh console, issue 10) against two running nebula-ts nodes in namespaces,
 * one mesh for every command: each listing read as text and as JSON (parsed and checked: the peer's vpn ip, the
 * indexes both ends agree on, the cert names), and each action seen where it lands: close-tunnel reaches the peer
 * (its log and its host map), change-remote moves the data path (pings stop, then come back), create-tunnel brings a
 * tunnel up, log-level debug makes debug lines appear, log-format json makes the peer log json. Bad arguments give
 * one line on stderr and a non-zero exit.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { request } from '../../src/ctl/client';
import { COMMANDS } from '../../src/shared/console-commands';
import { prereqs } from '../helpers/prereq';
import { childrenOf, newMesh, ROOT, until } from './helpers';

const A = '192.168.100.1';
const B = '192.168.100.2';
const B_UNDERLAY = '10.99.0.2:4242';
const CTL = path.join(ROOT, 'bin', 'nebula-ctl');
const SUPERVISOR = path.join(ROOT, 'dist', 'supervisor', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node script args` to its end, without the test runner's loaders (unset in the exec chain: tap puts its
 * NODE_OPTIONS back into a child's env): what an operator's shell runs, and much cheaper. */
function run(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface HostInfoJson {
  vpnIp: string;
  localIndex: number;
  remoteIndex: number;
  remoteAddrs: Array<{ ip: string; port: number }>;
  cachedPackets: number;
  cert: { details: { name: string; ips: string[] }; fingerprint: string } | null;
  messageCounter: number;
  currentRemote: { ip: string; port: number } | null;
  currentRelaysToMe: string[];
  currentRelaysThroughMe: string[];
}

t.test('nebula-ctl console commands against a running two-node mesh', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, routines: 2 });
  const b = await mesh.add({ name: 'b', kind: 'ts', overlayIp: B });
  mesh.writeConfigs();
  await Promise.all([mesh.start('a'), mesh.start('b')]);
  t.ok(await mesh.pingUntilReply('a', B), 'a reaches b through the overlay');

  const ctl = (node: typeof a, ...args: string[]): Promise<Run> => run(CTL, ['-socket', node.controlSocket, ...args]);
  /** A command that must succeed: its stdout. */
  const ok = async (node: typeof a, ...args: string[]): Promise<string> => {
    const r = await ctl(node, ...args);
    if (r.code !== 0) throw new Error(`nebula-ctl ${args.join(' ')} on ${node.name} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const json = async <T>(node: typeof a, ...args: string[]): Promise<T> => JSON.parse(await ok(node, ...args)) as T;
  /**
   * The same command straight over the socket, as nebula-ctl sends it (no process to start): for the state checks
   * and polls around the actions, which are themselves run through nebula-ctl.
   */
  const direct = async <T>(node: typeof a, cmd: string, ...args: string[]): Promise<T> => {
    const reply = (await request(node.controlSocket, { cmd, args })) as { ok: boolean; output?: string; error?: string };
    if (!reply.ok || reply.output === undefined) throw new Error(`${cmd} ${args.join(' ')} on ${node.name}: ${reply.error}`);
    return JSON.parse(reply.output) as T;
  };
  const hostmapOf = (node: typeof a): Promise<HostInfoJson[]> => direct<HostInfoJson[]>(node, 'list-hostmap', '-json');

  await t.test('listings: list-hostmap, print-tunnel, print-cert, list-pending-hostmap', async (t) => {
    // Read-only and independent: asked all at once.
    const [text, hostmap, tunnel, fromB, certText, own, peerCert, raw, pending] = await Promise.all([
      ok(a, 'list-hostmap'),
      json<HostInfoJson[]>(a, 'list-hostmap', '-json'),
      json<HostInfoJson>(a, 'print-tunnel', B),
      json<HostInfoJson>(b, 'print-tunnel', '-pretty', A),
      ok(a, 'print-cert'),
      json<{ details: { name: string; ips: string[] } }>(a, 'print-cert', '-json'),
      json<{ details: { name: string }; fingerprint: string }>(a, 'print-cert', '-json', B),
      ok(a, 'print-cert', '-raw'),
      json<unknown>(a, 'list-pending-hostmap', '-json'),
    ]);
    t.match(text, new RegExp(`^${B}: \\[${B_UNDERLAY}\\]$`, 'm'), "text: b's vpn ip and its address, as Go");
    const listed = hostmap.find((h) => h.vpnIp === B);
    t.ok(listed, `list-hostmap -json has ${B}`);
    t.same(
      [tunnel.vpnIp, tunnel.localIndex, tunnel.remoteIndex],
      [B, listed!.localIndex, listed!.remoteIndex],
      'print-tunnel and list-hostmap agree on the indexes',
    );
    t.equal(tunnel.cert?.details.name, 'b', "the peer's cert name");
    t.same(tunnel.currentRemote, { ip: '10.99.0.2', port: 4242 });
    t.ok(tunnel.messageCounter >= 2, `messageCounter counts sent packets (${tunnel.messageCounter})`);
    t.same([fromB.localIndex, fromB.remoteIndex], [tunnel.remoteIndex, tunnel.localIndex], "b's indexes are a's, mirrored");
    t.equal(fromB.cert?.details.name, 'a');

    t.match(certText, /^NebulaCertificate \{\n\tDetails \{\n\t\tName: a\n/, 'print-cert: our cert as text');
    t.same([own.details.name, own.details.ips], ['a', [`${A}/24`]]);
    t.same([peerCert.details.name, peerCert.fingerprint], ['b', tunnel.cert?.fingerprint], "print-cert <vpn-ip>: the peer's cert");
    t.match(raw, /^-----BEGIN NEBULA CERTIFICATE-----\n[\s\S]+-----END NEBULA CERTIFICATE-----\n$/);
    t.same(pending, [], 'nothing pending');
  });

  await t.test('version, device-info, routines, conntrack', async (t) => {
    const [versionRun, version, deviceText, deviceJson, routines, routinesText, ct, ctText] = await Promise.all([
      run(SUPERVISOR, ['-version']),
      ok(a, 'version'),
      ok(a, 'device-info'),
      json<unknown>(a, 'device-info', '-json'),
      json<Array<{ routine: number; pid: number; uptimeSeconds: number; restarts: number; outsideTx: number }>>(a, 'routines', '-json'),
      ok(a, 'routines'),
      json<{ count: number; entries: Array<{ Protocol: string; LocalIP: string; RemoteIP: string; incoming: boolean }> }>(a, 'conntrack', '-json'),
      ok(a, 'conntrack'),
    ]);
    t.equal(version, versionRun.stdout.replace(/^Version: /, ''), 'the version nebula-ts -version prints');
    t.equal(deviceText, `name=nebula1 cidr=[${A}/24]\n`);
    t.same(deviceJson, { name: 'nebula1', cidr: [`${A}/24`] });

    t.same(routines.map((r) => r.routine), [0, 1], 'two routines');
    t.same(routines.map((r) => r.pid).sort((x, y) => x - y), childrenOf(a.process!.pid!), "their pids are the supervisor's children");
    t.same(routines.map((r) => r.restarts), [0, 0]);
    t.ok(routines.every((r) => Number.isInteger(r.uptimeSeconds) && r.uptimeSeconds >= 0), 'an uptime each');
    t.ok(routines.reduce((n, r) => n + r.outsideTx, 0) > 0, 'the pings went out through them');
    t.match(routinesText, /^ROUTINE\s+PID\s+UPTIME\s+RESTARTS/);

    t.ok(ct.count >= 1, `conntrack count ${ct.count}`);
    t.ok(
      ct.entries.some((e) => e.Protocol === 'icmp' && e.LocalIP === A && e.RemoteIP === B && !e.incoming),
      'the outgoing ping flow is listed',
    );
    t.match(ctText, /^Conntrack entries: \d+ \(capacity \d+\)\n/);
  });

  await t.test('log-level debug takes effect; log-format json on the peer', async (t) => {
    t.same(await Promise.all([ok(a, 'log-level'), ok(b, 'log-format')]), ['Log level is: info\n', 'Log format is: text\n']);
    t.notOk(a.output.some((l) => l.includes('level=debug')), 'no debug line so far');
    t.same(await Promise.all([ok(a, 'log-level', 'debug'), ok(b, 'log-format', 'json')]), ['Log level is: debug\n', 'Log format is: json\n']);
    // No address is known for .77: the handshake waits, and says so at debug level.
    t.equal(await ok(a, 'create-tunnel', '192.168.100.77'), 'Created\n');
    await mesh.waitForOutput('a', /level=debug msg="No known address for host, waiting" vpnIp=192\.168\.100\.77/, 5000);
    const pending = await direct<HostInfoJson[]>(a, 'list-pending-hostmap', '-json');
    const p77 = pending.find((p) => p.vpnIp === '192.168.100.77');
    t.ok(p77 && p77.localIndex > 0 && p77.remoteIndex === 0 && p77.cert === null, 'list-pending-hostmap has the handshake');
    t.equal(await ok(a, 'log-level', 'info'), 'Log level is: info\n');
  });

  await t.test('change-remote moves the tunnel, data path included', async (t) => {
    // Nobody answers at .200: while the tunnel points there, pings are lost; moved back, they are answered.
    t.equal(await ok(a, 'change-remote', B, '10.99.0.200:4242'), 'Changed\n');
    t.same((await json<HostInfoJson>(a, 'print-tunnel', B)).currentRemote, { ip: '10.99.0.200', port: 4242 }, 'print-tunnel shows the new remote');
    t.equal(await mesh.ping('a', B, 1, 1), 0, 'the routines send to the new remote too: no reply');
    t.equal(await ok(a, 'change-remote', '-address', B_UNDERLAY, B), 'Changed\n', "Go's -address form");
    t.same((await direct<HostInfoJson>(a, 'print-tunnel', B)).currentRemote, { ip: '10.99.0.2', port: 4242 });
    t.ok(await mesh.pingUntilReply('a', B, 5000), 'back on the real address: answered');
  });

  await t.test('close-tunnel reaches the peer; create-tunnel brings the tunnel back', async (t) => {
    const from = b.output.length;
    t.equal(await ok(a, 'close-tunnel', B), 'Closed\n');
    t.notOk((await hostmapOf(a)).some((h) => h.vpnIp === B), 'gone from our host map');
    const line = await mesh.waitForOutput('b', /"msg":"Received close tunnel message"/, 5000, from);
    t.equal((JSON.parse(line) as { vpnIp: string }).vpnIp, A, 'the peer got our closeTunnel (and logs json now)');
    await until('b to drop a', () => hostmapOf(b), (hs) => !hs.some((h) => h.vpnIp === A), 5000);

    t.equal(await ok(a, 'create-tunnel', B), 'Created\n');
    const up = await until('the tunnel to come up', () => hostmapOf(a), (hs) => hs.some((h) => h.vpnIp === B), 5000);
    const ours = up.find((h) => h.vpnIp === B)!;
    const theirs = await until('b to have the tunnel', () => hostmapOf(b), (hs) => hs.some((h) => h.vpnIp === A && h.localIndex === ours.remoteIndex), 5000);
    t.equal(theirs.find((h) => h.vpnIp === A)!.remoteIndex, ours.localIndex, 'both ends have the new tunnel');
    const again = await ctl(a, 'create-tunnel', B);
    t.same([again.code, again.stderr], [1, 'nebula-ctl: create-tunnel: Tunnel already exists\n']);

    const beforeLocal = b.output.length;
    t.equal(await ok(a, 'close-tunnel', '-local-only', B), 'Closed\n');
    t.notOk((await hostmapOf(a)).some((h) => h.vpnIp === B), '-local-only: gone from our host map');
    t.ok((await hostmapOf(b)).some((h) => h.localIndex === ours.remoteIndex), '-local-only: the peer keeps its tunnel');
    t.ok(await mesh.pingUntilReply('a', B, 5000), 'traffic makes a new tunnel');
    // The new handshake went the same way after any closeTunnel would have: none arrived.
    t.same(b.output.slice(beforeLocal).filter((l) => l.includes('Received close tunnel message')), [], '-local-only: the peer was not told');
  });

  await t.test('bad arguments: one line on stderr, non-zero exit; help', async (t) => {
    // One of each kind (every message is checked in test/supervisor/console.test.ts): refused by the node (exit 1),
    // refused by nebula-ctl before it connects (exit 2).
    const cases: Array<[string[], number, string]> = [
      [['print-tunnel'], 1, 'nebula-ctl: print-tunnel: No vpn ip was provided'],
      [['close-tunnel', '192.168.100.9'], 1, 'nebula-ctl: close-tunnel: Could not find tunnel for vpn ip: 192.168.100.9'],
      [['change-remote', B, '10.99.0.2'], 1, 'nebula-ctl: change-remote: Address could not be parsed: 10.99.0.2'],
      [['log-level', 'loud'], 1, 'nebula-ctl: log-level: Unknown log level loud. Possible log levels: [panic fatal error warning info debug trace]'],
      [['list-hostmap', '-bogus'], 2, 'nebula-ctl: list-hostmap: flag provided but not defined: -bogus'],
      [['frobnicate'], 2, 'nebula-ctl: unknown command "frobnicate" (nebula-ctl help lists the commands)'],
    ];
    const [results, gone, help, closeHelp] = await Promise.all([
      Promise.all(cases.map(([args]) => ctl(a, ...args))),
      run(CTL, ['-socket', path.join(mesh.dir, 'nobody.sock'), 'version']),
      ok(a, 'help'),
      ok(a, 'close-tunnel', '-h'),
    ]);
    cases.forEach(([args, code, line], i) => {
      const r = results[i]!;
      t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code, stdout: '', stderr: line + '\n' }, `nebula-ctl ${args.join(' ')}`);
    });
    t.equal(gone.code, 1);
    t.match(gone.stderr, /^nebula-ctl: no nebula-ts node is listening on \S+nobody\.sock \(is it running\?.*\)\n$/, 'no node: one line');

    for (const c of COMMANDS) t.match(help, new RegExp(`^${c.name} - `, 'm'), `help lists ${c.name}`);
    t.match(closeHelp, /^close-tunnel - Closes a tunnel for the provided vpn ip\n[\s\S]*-local-only\n/, 'per-command help');
  });
});
