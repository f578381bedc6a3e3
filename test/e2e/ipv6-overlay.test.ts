/**
 * Issue 12: the IPv6 overlay of v2 certificates, nebula-ts with Go nebula 1.11.0. Every node holds one dual-stack
 * v2 certificate made by nebula-cert 1.11.0 (192.168.100.n/24 and fd42::n/64):
 *
 *   t  (nebula-ts) <-> g1 (Go 1.11.0)   t initiates (over IPv4); then ping6 both ways and 20 MB each way over IPv6
 *   t  (nebula-ts) <-> g2 (Go 1.11.0)   t makes first contact by g2's IPv6 address (t's static_host_map has an IPv6
 *                                       key, fd42::3, and nothing for 192.168.100.3)
 *   (the second test: Go 1.11.0 initiating by nebula-ts's IPv6 address, chachapoly and P256)
 *
 * t and g1 run the same inbound firewall (ICMP from anyone, TCP 7001 from fd42::/64 only, TCP 7002 from
 * 192.168.100.0/24 only), and each probes the other over both families: both must let in and drop the same flows,
 * i.e. a rule of one family never matches a packet of the other, as in Go 1.11.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { goBinaryPrefix, GoCertMaker, installNodePki } from '../../src/testbed/mesh-v2';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { needGoNebula } from '../helpers/go-nebula';
import { jsonLines, newMesh, spawnFixture, status, tcpTransfer } from './helpers';

const GO_VERSION = '1.11.0';
const V4 = { t: '192.168.100.1', g1: '192.168.100.2', g2: '192.168.100.3' } as const;
const V6 = { t: 'fd42::1', g1: 'fd42::2', g2: 'fd42::3' } as const;
type Name = keyof typeof V4;
const TRANSFER_BYTES = 20 * 1024 * 1024;

const FIREWALL = {
  inbound: [
    { port: 'any', proto: 'icmp', host: 'any' },
    { port: 7001, proto: 'tcp', cidr: 'fd42::/64' },
    { port: 7002, proto: 'tcp', cidr: '192.168.100.0/24' },
    // The transfers' port, from anyone.
    { port: 5201, proto: 'tcp', host: 'any' },
  ],
};


async function transfer(t: Test, mesh: Mesh, from: Name, to: Name): Promise<void> {
  const r = await tcpTransfer(mesh, from, to, V6[to], TRANSFER_BYTES, `v6-${from}-${to}`);
  t.comment(`${from} -> ${to} over IPv6: ${TRANSFER_BYTES} bytes in ${r.ms} ms`);
  t.same(r.sent, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${from} sent ${TRANSFER_BYTES} bytes to [${V6[to]}]`);
  t.same(r.received, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${to} received them byte for byte`);
}

async function pings6(t: Test, mesh: Mesh, a: Name, b: Name): Promise<void> {
  const [ab, ba] = await Promise.all([mesh.ping(a, V6[b], 5, 2), mesh.ping(b, V6[a], 5, 2)]);
  t.equal(ab, 5, `${a} -> [${V6[b]}]: 5/5 pings`);
  t.equal(ba, 5, `${b} -> [${V6[a]}]: 5/5 pings`);
}

/** TCP connects from `from` to `to` on both families and both firewall ports: "port family outcome" lines. */
async function probeFirewall(mesh: Mesh, from: Name, to: Name): Promise<string[]> {
  const probes = [7001, 7002].flatMap((port) => [V4[to], V6[to]].map((host) => ({ proto: 'tcp', host, port })));
  const res = await jsonLines(spawnFixture(mesh, from, 'reject-probe.ts', [JSON.stringify({ probes, timeoutMs: 3000 })])).first(() => true, 20_000);
  if (res.error) throw new Error(`reject-probe: ${String(res.error)}`);
  const results = res.results as Array<{ port: number; outcome: string }>;
  return results.map((r, i) => `${r.port} ${probes[i]!.host.includes(':') ? 'v6' : 'v4'} ${r.outcome}`);
}

t.test('IPv6 overlay with Go 1.11.0: ping6, TCP over IPv6 both ways, each side initiating, IPv6 firewall rules', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(150_000);
  const mesh = await newMesh(t);
  const nc = new GoCertMaker(go.cert, path.join(mesh.dir, 'pki-111'));
  const ca = nc.ca('mesh ca v2', 2);
  const go111 = { commandPrefix: goBinaryPrefix(go.nebula) };
  await mesh.add({ name: 'g1', kind: 'go', overlayIp: V4.g1, staticHosts: [], config: { pki: { ca: ca.crt }, firewall: FIREWALL }, ...go111 });
  await mesh.add({ name: 'g2', kind: 'go', overlayIp: V4.g2, staticHosts: [], config: { pki: { ca: ca.crt } }, ...go111 });
  // t knows g1 by its IPv4 VPN address, g2 by its IPv6 VPN address only.
  const g2Underlay = `${mesh.node('g2').underlayIp}:4242`;
  await mesh.add({ name: 't', kind: 'ts', overlayIp: V4.t, staticHosts: ['g1'], config: { pki: { ca: ca.crt }, firewall: FIREWALL, static_host_map: { [V6.g2]: [g2Underlay] } } });
  for (const name of Object.keys(V4) as Name[]) {
    const keys = nc.keygen(name, '25519');
    installNodePki(mesh.node(name), { certs: [nc.sign(ca, name, `${V4[name]}/24,${V6[name]}/64`, keys.pub)], key: keys.key });
  }
  mesh.writeConfigs();
  await Promise.all([mesh.start('g1'), mesh.start('g2')]);
  await mesh.start('t');

  await t.test('nebula-ts makes first contact by IPv6 address (t -> [fd42::3], a static_host_map IPv6 key)', async (t) => {
    t.ok(await mesh.pingUntilReply('t', V6.g2, 15_000), 't -> [fd42::3]: ping answered');
    const s = await status(mesh, 't');
    t.equal(s.tunnels.find((x) => x.name === 'g2')?.vpnIp, V4.g2, 'the tunnel is keyed by the IPv4 VPN IP of g2\'s certificate');
    t.ok((s.counters['hostinfo.cached_packets.sent'] ?? 0) >= 1, 'the first echo request waited for the tunnel and went out on it');
  });

  await t.test('nebula-ts initiates (t -> g1), then IPv6 over the tunnel', async (t) => {
    t.ok(await mesh.pingUntilReply('t', V4.g1, 15_000), 't -> g1: the tunnel is up');
    await pings6(t, mesh, 't', 'g1');
    await transfer(t, mesh, 't', 'g1');
    await transfer(t, mesh, 'g1', 't');
  });

  await t.test('the tunnel made by first contact carries IPv6 both ways (g2 <-> t)', async (t) => {
    t.same((await status(mesh, 't')).tunnels.map((x) => x.name).sort(), ['g1', 'g2'], 't has tunnels to g1 and g2');
    await pings6(t, mesh, 'g2', 't');
    await transfer(t, mesh, 'g2', 't');
  });

  await t.test('IPv6 and IPv4 firewall rules: nebula-ts and Go 1.11.0 let in the same flows', async (t) => {
    const listeners = ['t', 'g1'].map((n) =>
      jsonLines(spawnFixture(mesh, n, 'reject-probe.ts', [JSON.stringify({ listen: [7001, 7002].flatMap((port) => [{ host: V4[n as Name], port }, { host: V6[n as Name], port }]) })])),
    );
    await Promise.all(listeners.map((l) => l.first((v) => v.listening === true, 20_000)));
    const before = (await status(mesh, 't')).counters['firewall.incoming.dropped.no_rule'] ?? 0;
    const [intoTs, intoGo] = await Promise.all([probeFirewall(mesh, 'g1', 't'), probeFirewall(mesh, 't', 'g1')]);
    const expected = ['7001 v4 timeout', '7001 v6 connected', '7002 v4 connected', '7002 v6 timeout'];
    t.same(intoGo, expected, 'Go 1.11.0: the IPv6 rule lets in IPv6 only, the IPv4 rule IPv4 only');
    t.same(intoTs, expected, 'nebula-ts: the same flows');
    const after = (await status(mesh, 't')).counters['firewall.incoming.dropped.no_rule'] ?? 0;
    t.ok(after - before >= 2, `t counted the refused SYNs (${after - before}, retransmissions included)`);
  });
});

t.test('IPv6 overlay with Go 1.11.0: chachapoly and P256', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(120_000);
  const mesh = await newMesh(t, { cipher: 'chachapoly' });
  const nc = new GoCertMaker(go.cert, path.join(mesh.dir, 'pki-111'));
  const ca = nc.ca('mesh ca p256', 2, 'P256');
  await mesh.add({ name: 't', kind: 'ts', overlayIp: V4.t, staticHosts: [], config: { pki: { ca: ca.crt } } });
  const tUnderlay = `${mesh.node('t').underlayIp}:4242`;
  await mesh.add({ name: 'g1', kind: 'go', overlayIp: V4.g1, staticHosts: [], config: { pki: { ca: ca.crt }, static_host_map: { [V6.t]: [tUnderlay] } }, commandPrefix: goBinaryPrefix(go.nebula) });
  for (const name of ['t', 'g1'] as const) {
    const keys = nc.keygen(name, 'P256');
    installNodePki(mesh.node(name), { certs: [nc.sign(ca, name, `${V4[name]}/24,${V6[name]}/64`, keys.pub)], key: keys.key });
  }
  mesh.writeConfigs();
  await mesh.start('g1');
  await mesh.start('t');
  t.ok(await mesh.pingUntilReply('g1', V6.t, 15_000), 'g1 -> [fd42::1]: ping answered (g1 initiates, P256, chachapoly)');
  await pings6(t, mesh, 'g1', 't');
  await transfer(t, mesh, 't', 'g1');
  await transfer(t, mesh, 'g1', 't');
});
