/**
 * Issue 9 acceptance: nodes that know only their lighthouses find each other through them. No static_host_map entry
 * between ordinary nodes: each knows the two lighthouses (one nebula-ts, one Go nebula 1.6.1) and nothing else, and
 * in each mesh one of the two lighthouses is never started (lighthouse redundancy: the other one is enough).
 *
 * Mesh 1: the nebula-ts lighthouse runs rootless (nobody, tun.disabled, otherwise default config: its control socket
 * goes to its own runtime directory); two Go 1.6.1 nodes and one nebula-ts node. Go <-> Go and nebula-ts -> Go find
 * each other; the data does not pass through the lighthouse (its interface counts fewer datagrams than were sent);
 * the lighthouse's address map shows the nodes, and follows a node whose underlay address changes (roaming).
 * Mesh 2: the Go lighthouse; two nebula-ts nodes (routines 2) and one Go node: ts <-> ts, ts -> Go and Go -> ts.
 */
import t, { type Test } from 'tap';
import { prereqs } from '../helpers/prereq';
import type { Mesh } from '../../src/testbed/netns-mesh';
import path from 'node:path';
import { newMesh, ROOT, status, udpTool, until } from './helpers';
import { HEADER_LEN, TYPE_LIGHTHOUSE, writeHeader } from '../../src/shared/protocol/header';
import { encodeMeta, MetaType } from '../../src/shared/protocol/lighthouse';
import { parseIPv4 } from '../../src/shared/util/ipv4';

const NOBODY = { uid: 65534, gid: 65534 };
const LH_GO = '192.168.100.1';
const LH_TS = '192.168.100.2';
const LIGHTHOUSES = { lhg: LH_GO, lht: LH_TS };
/** Client config: both lighthouses, updates every second (the test waits for the first ones). */
const CLIENT = { lighthouse: { am_lighthouse: false, hosts: [LH_GO, LH_TS], interval: 1 }, punchy: { punch: true } };

async function addLighthouses(mesh: Mesh): Promise<void> {
  await mesh.add({ name: 'lhg', kind: 'go', overlayIp: LH_GO, staticHosts: [], config: { lighthouse: { am_lighthouse: true } } });
  await mesh.add({
    name: 'lht',
    kind: 'ts',
    overlayIp: LH_TS,
    staticHosts: [],
    runAs: NOBODY,
    defaultControlSocket: true,
    // serve_dns on an unprivileged port: the lighthouse runs as nobody.
    config: { lighthouse: { am_lighthouse: true, serve_dns: true, dns: { host: '0.0.0.0', port: 5353 } }, tun: { disabled: true } },
  });
}

async function addClient(mesh: Mesh, name: string, kind: 'ts' | 'go', overlayIp: string, routines?: number): Promise<void> {
  await mesh.add({ name, kind, overlayIp, routines, staticHosts: Object.keys(LIGHTHOUSES), config: CLIENT });
}

/** RX packets of the node's underlay interface (the kernel's own count, whatever the node does with them). */
async function rxPackets(mesh: Mesh, name: string): Promise<number> {
  const out = await mesh.exec(name, 'cat', ['/sys/class/net/eth0/statistics/rx_packets']);
  return Number(out.trim());
}

async function pings(t: Test, mesh: Mesh, from: string, to: string, toIp: string): Promise<void> {
  t.ok(await mesh.pingUntilReply(from, toIp, 20_000), `${from} -> ${to}: found through the lighthouse, ping answered`);
  t.equal(await mesh.ping(from, toIp, 5, 2), 5, `${from} -> ${to}: 5/5 pings`);
}

interface AddrMapEntry {
  vpnIp: string;
  /** What the host itself told us (owner = the host): its tunnel's source and its own report, as ip:port. */
  learned: string[];
  reported: string[];
}

/** `nebula-ctl list-lighthouse-addrmap -json` (Go's shape), reduced to what each host said of itself. */
async function addrMap(mesh: Mesh, name: string): Promise<AddrMapEntry[]> {
  const out = await mesh.exec(name, process.execPath, [path.join(ROOT, 'dist/ctl/main.js'), '-socket', mesh.node(name).controlSocket, 'list-lighthouse-addrmap', '-json']);
  const rows = JSON.parse(out) as Array<{ vpnIp: string; addrs: Record<string, { learned?: Array<{ ip: string; port: number }>; reported?: Array<{ ip: string; port: number }> }> }>;
  const text = (l: Array<{ ip: string; port: number }> | undefined): string[] => (l ?? []).map((a) => `${a.ip}:${a.port}`);
  return rows.map((r) => ({ vpnIp: r.vpnIp, learned: text(r.addrs[r.vpnIp]?.learned), reported: text(r.addrs[r.vpnIp]?.reported) }));
}

t.test('nebula-ts lighthouse (rootless) with Go 1.6.1 and nebula-ts nodes; the Go lighthouse stopped', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula', 'dig'])) return;
  t.setTimeout(120_000);
  const mesh = await newMesh(t);
  await addLighthouses(mesh);
  await addClient(mesh, 'g1', 'go', '192.168.100.11');
  await addClient(mesh, 'g2', 'go', '192.168.100.12');
  await addClient(mesh, 't1', 'ts', '192.168.100.13');
  mesh.writeConfigs();
  await mesh.start('lht');
  t.match(mesh.node('lht').controlSocket, /^\/tmp\/nebula-ts-65534\//, 'the rootless lighthouse put its control socket in its own runtime directory');
  await Promise.all(['g1', 'g2', 't1'].map((n) => mesh.start(n)));

  // Every node reports itself (lighthouse.interval 1): the map has their underlay addresses, learned and reported.
  const reportedItself = (m: AddrMapEntry[], n: string): boolean => {
    const node = mesh.node(n);
    const e = m.find((x) => x.vpnIp === node.overlayIp);
    return e !== undefined && e.learned.length > 0 && e.reported.includes(`${node.underlayIp}:4242`);
  };
  const map = await until('the three nodes to have reported themselves', () => addrMap(mesh, 'lht'), (m) => ['g1', 'g2', 't1'].every((n) => reportedItself(m, n)), 20_000);
  for (const n of ['g1', 'g2', 't1']) {
    const node = mesh.node(n);
    const e = map.find((x) => x.vpnIp === node.overlayIp);
    t.same(e?.learned, [`${node.underlayIp}:4242`], `${n}: learned address is its tunnel's source`);
    t.ok(e?.reported.includes(`${node.underlayIp}:4242`), `${n}: reported its own underlay address`);
  }

  // A forged update outside the tunnel (the right index, no key): dropped and counted, the map unchanged.
  const lhStatus = await status(mesh, 'lht');
  const g1Tunnel = lhStatus.tunnels.find((x) => x.vpnIp === mesh.node('g1').overlayIp)!;
  const forged = Buffer.alloc(HEADER_LEN);
  writeHeader(forged, 0, TYPE_LIGHTHOUSE, 0, g1Tunnel.localIndex, 0, 1 << 20);
  const update = encodeMeta({ type: MetaType.HostUpdateNotification, details: { vpnIp: parseIPv4(mesh.node('g1').overlayIp)!, ip4AndPorts: [{ ip: parseIPv4('10.99.0.250')!, port: 4242 }], counter: 0, ip6AndPorts: [], relayVpnIps: [] } });
  const datagram = Buffer.concat([forged, update, Buffer.alloc(16)]);
  const failedBefore = lhStatus.counters['routine.dropped.decrypt_failed'] ?? 0;
  await udpTool(mesh, 'g2', { op: 'send', to: mesh.node('lht').underlayIp, port: 4242, packets: [datagram.toString('hex')] });
  await until('the forged update to be counted', () => status(mesh, 'lht'), (s) => (s.counters['routine.dropped.decrypt_failed'] ?? 0) === failedBefore + 1, 10_000);
  const afterForgery = (await addrMap(mesh, 'lht')).find((e) => e.vpnIp === mesh.node('g1').overlayIp);
  t.notOk(afterForgery?.reported.includes('10.99.0.250:4242'), 'the forged address is not in the map');
  t.ok(afterForgery?.reported.includes(`${mesh.node('g1').underlayIp}:4242`), "g1's own report is still there");

  // serve_dns: the lighthouse answers A queries for the cert names of the hosts it has tunnels to.
  for (const n of ['g1', 't1']) {
    const answer = await mesh.exec('g2', 'dig', [`@${mesh.node('lht').underlayIp}`, '-p', '5353', '+short', '+tries=1', n]);
    t.equal(answer.trim(), mesh.node(n).overlayIp, `dig @lighthouse ${n} answers its VPN IP`);
  }
  t.equal((await mesh.exec('g2', 'dig', [`@${mesh.node('lht').underlayIp}`, '-p', '5353', '+short', '+tries=1', 'nosuchhost'])).trim(), '', 'an unknown name has no answer');

  await pings(t, mesh, 'g1', 'g2', '192.168.100.12');
  // 200 quick pings are 400 datagrams between g1 and g2; the lighthouse's own traffic meanwhile is a handful.
  const before = await rxPackets(mesh, 'lht');
  const out = await mesh.exec('g1', 'ping', ['-c', '200', '-i', '0.005', '-W', '2', '-q', '192.168.100.12']);
  t.match(out, /200 packets transmitted, 200 received/, 'g1 -> g2: 200/200 quick pings');
  const through = (await rxPackets(mesh, 'lht')) - before;
  t.ok(through < 100, `the lighthouse's interface received ${through} datagrams while g1 and g2 exchanged 400: the data went direct`);

  await pings(t, mesh, 't1', 'g1', '192.168.100.11');
  const t1 = await status(mesh, 't1');
  t.same(
    t1.tunnels.map((x) => [x.vpnIp, x.remote]).sort(),
    [
      ['192.168.100.11', `${mesh.node('g1').underlayIp}:4242`],
      [LH_TS, `${mesh.node('lht').underlayIp}:4242`],
    ],
    't1 reaches g1 directly, and has no tunnel to the stopped Go lighthouse',
  );

  // Roaming: t1's underlay address changes; its next packets come from the new address, and the lighthouse follows.
  const t1node = mesh.node('t1');
  const moved = t1node.underlayIp.replace(/\.(\d+)$/, (_m, d: string) => `.${Number(d) + 100}`);
  // Delete first: deleting a primary address takes the secondaries of its subnet with it.
  await mesh.exec('t1', 'ip', ['addr', 'del', `${t1node.underlayIp}/24`, 'dev', 'eth0']);
  await mesh.exec('t1', 'ip', ['addr', 'add', `${moved}/24`, 'dev', 'eth0']);
  t.ok(await mesh.pingUntilReply('t1', '192.168.100.11', 10_000), 't1 -> g1: traffic resumes from the new address');
  const roamed = await until(
    "the lighthouse's map to show t1's new address",
    () => addrMap(mesh, 'lht'),
    (m) => m.find((e) => e.vpnIp === t1node.overlayIp)?.learned[0] === `${moved}:4242`,
    10_000,
  );
  t.ok(roamed.find((e) => e.vpnIp === t1node.overlayIp)?.reported.includes(`${moved}:4242`), "t1's next update reports the new address too");
});

t.test('Go 1.6.1 lighthouse with nebula-ts (routines 2) and Go nodes; the nebula-ts lighthouse stopped', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(120_000);
  const mesh = await newMesh(t);
  await addLighthouses(mesh);
  await addClient(mesh, 't1', 'ts', '192.168.100.11', 2);
  await addClient(mesh, 't2', 'ts', '192.168.100.12', 2);
  await addClient(mesh, 'g1', 'go', '192.168.100.13');
  mesh.writeConfigs();
  await mesh.start('lhg');
  await Promise.all(['t1', 't2', 'g1'].map((n) => mesh.start(n)));

  await pings(t, mesh, 't1', 't2', '192.168.100.12');
  await pings(t, mesh, 't1', 'g1', '192.168.100.13');
  await pings(t, mesh, 'g1', 't2', '192.168.100.12');
  for (const [n, peers] of [
    ['t1', ['t2', 'g1']],
    ['t2', ['t1', 'g1']],
  ] as const) {
    const s = await status(mesh, n);
    for (const p of peers) {
      const peer = mesh.node(p);
      t.equal(s.tunnels.find((x) => x.vpnIp === peer.overlayIp)?.remote, `${peer.underlayIp}:4242`, `${n} reaches ${p} directly`);
    }
  }
  const t2 = await status(mesh, 't2');
  t.ok(t2.counters['messages.tx.lighthouse']! > 0 && t2.counters['messages.rx.lighthouse']! > 0, 't2 talked to the Go lighthouse');
});
