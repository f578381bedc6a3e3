/**
 * Issue 12: lighthouse, punch and relay messages over tunnels made with v2 certificates (nebula.proto's 1.10+ fields:
 * VpnAddr, RelayVpnAddrs, RelayFromAddr / RelayToAddr), with Go nebula 1.11.0. Every certificate is a v2 one from
 * nebula-cert 1.11.0; no ordinary node has a static_host_map entry for another ordinary node. One mesh, two halves:
 *
 *   lhg (Go 1.11.0 lighthouse)       <- t1 (nebula-ts), g1 (Go 1.11.0)
 *     (a) t1 learns g1's address from lhg (a v2 HostQueryReply) and pings it directly.
 *   lht (nebula-ts lighthouse, relay) <- g2, g3 (Go 1.11.0), t2 (nebula-ts)
 *     (b) g2 and g3 report themselves in v2 updates (no VpnAddr), which lht stores and acks, and find each other
 *         through lht's v2 HostQueryReply / HostPunchNotification;
 *     (c) t2 and g3 cannot reach each other (blackhole routes); g3 lists lht in relay.relays, lht passes that on
 *         as RelayVpnAddrs, and t2 reaches g3 through lht: v2 CreateRelayRequest / Response between nebula-ts (A and
 *         R) and Go 1.11.0 (B);
 *     (d) g2 and t2 cannot reach each other either; t2's own v2 update named lht as its relay, and g2 reaches t2
 *         through lht: Go 1.11.0 as A, nebula-ts as R and B.
 *   lht <- g4, g5, g6, g7 (Go 1.11.0, dual-stack certificates: 192.168.100.x/24 and fd42::x/64)
 *     (e) g4 pings g5's IPv6 VPN address: Go asks lht about fd42::35 itself, and lht answers about the host whose
 *         certificate holds it (VpnAddr echoed), so g4 finds g5 with no static_host_map entry for it;
 *     (f) g6 and g7 cannot reach each other; g6 pings fd42::37 and asks lht for a relay to fd42::37 (RelayToAddr),
 *         which lht maps to g7 and sets up.
 *   First contact by IPv6 VPN address from nebula-ts (t1, t2 and g8 are dual-stack too):
 *     (g) t1 pings fd42::18 (g8, a client of lhg) with no tunnel to g8 and nothing keyed by its IPv4 VPN IP: t1 asks
 *         the Go lighthouse by the IPv6 address, handshakes the answer, and keys g8 by its certificate's IPv4 address;
 *     (h) t2 does the same with g4 through the nebula-ts lighthouse lht.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { request } from '../../src/ctl/client';
import { goBinaryPrefix, GoCertMaker, installNodePki } from '../../src/testbed/mesh-v2';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { needGoNebula } from '../helpers/go-nebula';
import { newMesh, ROOT, status, until } from './helpers';

const GO_VERSION = '1.11.0';
const IP = {
  lhg: '192.168.100.1',
  lht: '192.168.100.2',
  t1: '192.168.100.11',
  g1: '192.168.100.12',
  g2: '192.168.100.21',
  g3: '192.168.100.22',
  t2: '192.168.100.23',
  g4: '192.168.100.34',
  g5: '192.168.100.35',
  g6: '192.168.100.36',
  g7: '192.168.100.37',
  g8: '192.168.100.18',
} as const;
type Name = keyof typeof IP;
/** The dual-stack nodes' IPv6 VPN addresses (their certificates hold both networks). */
const IP6: Partial<Record<Name, string>> = { g4: 'fd42::34', g5: 'fd42::35', g6: 'fd42::36', g7: 'fd42::37', t1: 'fd42::11', t2: 'fd42::23', g8: 'fd42::18' };


/** A client of one lighthouse: its static_host_map names only that lighthouse; updates every second. */
function client(lighthouse: Name, relays: Name[] = []): Record<string, unknown> {
  return { lighthouse: { am_lighthouse: false, hosts: [IP[lighthouse]], interval: 1 }, relay: { relays: relays.map((r) => IP[r]), use_relays: true } };
}

interface AddrMapRow {
  vpnIp: string;
  addrs: Record<string, { learned?: Array<{ ip: string; port: number }>; reported?: Array<{ ip: string; port: number }>; relay: string[] }>;
}

/** `nebula-ctl list-lighthouse-addrmap -json` of a nebula-ts node. */
async function addrMap(mesh: Mesh, name: Name): Promise<AddrMapRow[]> {
  const out = await mesh.exec(name, process.execPath, [path.join(ROOT, 'dist/ctl/main.js'), '-socket', mesh.node(name).controlSocket, 'list-lighthouse-addrmap', '-json']);
  return JSON.parse(out) as AddrMapRow[];
}

const text = (l: Array<{ ip: string; port: number }> | undefined): string[] => (l ?? []).map((a) => `${a.ip}:${a.port}`);

/** The certificate version a nebula-ts node holds for a peer (print-cert -json: v2 JSON carries `version: 2`). */
async function peerCertVersion(mesh: Mesh, node: Name, peer: Name): Promise<number> {
  const reply = (await request(mesh.node(node).controlSocket, { cmd: 'print-cert', args: ['-json', IP[peer]] })) as { ok: boolean; output?: string; error?: string };
  if (!reply.ok || reply.output === undefined) throw new Error(`print-cert on ${node} for ${peer}: ${reply.error}`);
  return (JSON.parse(reply.output) as { version?: number }).version ?? 1;
}

async function blockDirect(mesh: Mesh, a: Name, b: Name): Promise<void> {
  await mesh.exec(a, 'ip', ['route', 'add', 'blackhole', `${mesh.node(b).underlayIp}/32`]);
  await mesh.exec(b, 'ip', ['route', 'add', 'blackhole', `${mesh.node(a).underlayIp}/32`]);
}

t.test('v2 certificates: lighthouse, punch and relay messages between nebula-ts and Go 1.11.0', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(90_000);
  const mesh = await newMesh(t);
  const nc = new GoCertMaker(go.cert, path.join(mesh.dir, 'pki-111'));
  const ca = nc.ca('v2 mesh ca', 2);
  const go111 = { commandPrefix: goBinaryPrefix(go.nebula) };
  const pki = { pki: { ca: ca.crt } };

  await mesh.add({ name: 'lhg', kind: 'go', overlayIp: IP.lhg, staticHosts: [], config: { ...pki, lighthouse: { am_lighthouse: true } }, ...go111 });
  await mesh.add({ name: 't1', kind: 'ts', overlayIp: IP.t1, staticHosts: ['lhg'], config: { ...pki, ...client('lhg') } });
  await mesh.add({ name: 'g1', kind: 'go', overlayIp: IP.g1, staticHosts: ['lhg'], config: { ...pki, ...client('lhg') }, ...go111 });
  await mesh.add({ name: 'g8', kind: 'go', overlayIp: IP.g8, staticHosts: ['lhg'], config: { ...pki, ...client('lhg') }, ...go111 });
  await mesh.add({
    name: 'lht',
    kind: 'ts',
    overlayIp: IP.lht,
    staticHosts: [],
    config: { ...pki, lighthouse: { am_lighthouse: true }, relay: { am_relay: true }, tun: { disabled: true } },
  });
  await mesh.add({ name: 'g2', kind: 'go', overlayIp: IP.g2, staticHosts: ['lht'], config: { ...pki, ...client('lht') }, ...go111 });
  await mesh.add({ name: 'g3', kind: 'go', overlayIp: IP.g3, staticHosts: ['lht'], config: { ...pki, ...client('lht', ['lht']) }, ...go111 });
  await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2, staticHosts: ['lht'], config: { ...pki, ...client('lht', ['lht']) } });
  for (const name of ['g4', 'g5', 'g6'] as const) await mesh.add({ name, kind: 'go', overlayIp: IP[name], staticHosts: ['lht'], config: { ...pki, ...client('lht') }, ...go111 });
  await mesh.add({ name: 'g7', kind: 'go', overlayIp: IP.g7, staticHosts: ['lht'], config: { ...pki, ...client('lht', ['lht']) }, ...go111 });
  for (const name of Object.keys(IP) as Name[]) {
    const keys = nc.keygen(name);
    const networks = IP6[name] ? `${IP[name]}/24,${IP6[name]}/64` : `${IP[name]}/24`;
    installNodePki(mesh.node(name), { certs: [nc.sign(ca, name, networks, keys.pub)], key: keys.key });
  }
  mesh.writeConfigs();
  await blockDirect(mesh, 't2', 'g3');
  await blockDirect(mesh, 'g2', 't2');
  await blockDirect(mesh, 'g6', 'g7');
  await Promise.all([mesh.start('lhg'), mesh.start('lht')]);
  await Promise.all((['t1', 'g1', 'g8', 'g2', 'g3', 't2', 'g4', 'g5', 'g6', 'g7'] as const).map((n) => mesh.start(n)));

  await t.test('(a) a nebula-ts client finds a Go 1.11.0 peer through a Go 1.11.0 lighthouse', async (t) => {
    t.ok(await mesh.pingUntilReply('t1', IP.g1, 15_000), 't1 -> g1: found through lhg, ping answered');
    t.equal(await mesh.ping('t1', IP.g1, 5, 2), 5, 't1 -> g1: 5/5 pings');
    const g1 = mesh.node('g1');
    const row = (await addrMap(mesh, 't1')).find((r) => r.vpnIp === IP.g1);
    t.ok(text(row?.addrs[IP.lhg]?.reported).includes(`${g1.underlayIp}:4242`), "t1 holds g1's underlay address, as lhg answered it (owner lhg)");
    const s = await status(mesh, 't1');
    t.equal(s.tunnels.find((x) => x.vpnIp === IP.g1)?.remote, `${g1.underlayIp}:4242`, 't1 reaches g1 directly');
    t.equal(await peerCertVersion(mesh, 't1', 'lhg'), 2, "the tunnel to lhg is a v2 one (t1 holds lhg's v2 certificate)");
    t.notOk(s.counters['lighthouse.dropped.invalid'], 'no lighthouse message from lhg was refused');
  });

  await t.test('(b) two Go 1.11.0 clients find each other through a nebula-ts lighthouse', async (t) => {
    // Both report themselves in v2 updates (no VpnAddr): the map holds each one's own report.
    const selfReported = (rows: AddrMapRow[], n: Name): boolean => text(rows.find((r) => r.vpnIp === IP[n])?.addrs[IP[n]]?.reported).includes(`${mesh.node(n).underlayIp}:4242`);
    await until('g2 and g3 to have reported themselves to lht', () => addrMap(mesh, 'lht'), (rows) => selfReported(rows, 'g2') && selfReported(rows, 'g3'), 15_000);
    t.equal(await peerCertVersion(mesh, 'lht', 'g2'), 2, 'lht holds g2 on a v2 tunnel');
    t.ok(await mesh.pingUntilReply('g2', IP.g3, 15_000), 'g2 -> g3: found through lht, ping answered');
    t.equal(await mesh.ping('g2', IP.g3, 5, 2), 5, 'g2 -> g3: 5/5 pings');
    const c = (await status(mesh, 'lht')).counters;
    t.ok((c['lighthouse.rx.HostQuery'] ?? 0) >= 1 && (c['lighthouse.tx.HostQueryReply'] ?? 0) >= 1, `lht answered v2 queries (rx ${c['lighthouse.rx.HostQuery']}, tx ${c['lighthouse.tx.HostQueryReply']})`);
    t.ok((c['lighthouse.tx.HostPunchNotification'] ?? 0) >= 1, 'and told the queried host to punch');
    t.ok((c['lighthouse.tx.other'] ?? 0) >= 2, 'each v2 update was acked (HostUpdateNotificationAck)');
    t.same([c['lighthouse.dropped.wrong_vpn_ip'] ?? 0, c['lighthouse.dropped.invalid'] ?? 0], [0, 0], 'no v2 message refused');
  });

  await t.test('(c) a nebula-ts relay carries nebula-ts and Go 1.11.0, blocked from each other, on v2 tunnels', async (t) => {
    // lht passes g3's relay (RelayVpnAddrs) on in its v2 answers, and t2 asks lht for the relay in v2.
    t.ok(await mesh.pingUntilReply('t2', IP.g3, 20_000), 't2 -> g3: answered through the relay');
    const s = await status(mesh, 't2');
    t.equal(s.tunnels.find((x) => x.vpnIp === IP.g3)?.remote, `relay ${IP.lht}`, "t2's tunnel to g3 is relayed by lht");
    const row = (await addrMap(mesh, 't2')).find((r) => r.vpnIp === IP.g3);
    t.same(row?.addrs[IP.lht]?.relay, [IP.lht], 'g3 named lht as its relay, as lht answered');
    const before = (await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0;
    t.equal(await mesh.ping('t2', IP.g3, 10, 2), 10, 't2 -> g3: 10/10 pings');
    const forwarded = ((await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0) - before;
    t.ok(forwarded >= 20, `lht forwarded the 20 datagrams of those pings (${forwarded})`);
    t.ok(await mesh.pingUntilReply('g3', IP.t2, 10_000), 'g3 -> t2: answered through the relay');
  });

  await t.test('(d) a Go 1.11.0 node reaches a nebula-ts node through the nebula-ts relay, on v2 tunnels', async (t) => {
    // t2 cannot initiate (it knows nothing of g2): g2 is A, asking lht (v2) for the relay t2 reported (v2 update).
    t.ok(await mesh.pingUntilReply('g2', IP.t2, 20_000), 'g2 -> t2: answered through the relay');
    const s = await status(mesh, 't2');
    t.equal(s.tunnels.find((x) => x.vpnIp === IP.g2)?.remote, `relay ${IP.lht}`, "t2's tunnel to g2 is relayed by lht");
    const before = (await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0;
    t.equal(await mesh.ping('g2', IP.t2, 5, 2), 5, 'g2 -> t2: 5/5 pings');
    const forwarded = ((await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0) - before;
    t.ok(forwarded >= 10, `lht forwarded the 10 datagrams of those pings (${forwarded})`);
  });

  await t.test('(e) a Go 1.11.0 client finds a dual-stack peer by its IPv6 VPN address through the nebula-ts lighthouse', async (t) => {
    const selfReported = (rows: AddrMapRow[], n: Name): boolean => text(rows.find((r) => r.vpnIp === IP6[n])?.addrs[IP[n]]?.reported).includes(`${mesh.node(n).underlayIp}:4242`);
    // lht lists each dual-stack host under its IPv6 VPN address too (as Go keys its map): what a query for it is served.
    await until('g5 to have reported itself to lht (listed under fd42::35)', () => addrMap(mesh, 'lht'), (rows) => selfReported(rows, 'g5'), 15_000);
    // g4 has no static_host_map entry for g5 and names it only by fd42::35, so g5's address can only come from lht's
    // answer to a query for fd42::35; a query lht could not map would be counted as lighthouse.dropped.invalid.
    t.ok(await mesh.pingUntilReply('g4', IP6.g5!, 15_000), 'g4 -> [fd42::35]: found through lht, ping answered');
    t.equal(await mesh.ping('g4', IP6.g5!, 5, 2), 5, 'g4 -> [fd42::35]: 5/5 pings');
    t.equal((await status(mesh, 'lht')).counters['lighthouse.dropped.invalid'] ?? 0, 0, 'no query for an IPv6 VPN address was refused');
  });

  await t.test('(f) a nebula-ts relay carries two Go 1.11.0 peers that name each other by IPv6 VPN address', async (t) => {
    t.ok(await mesh.pingUntilReply('g6', IP6.g7!, 20_000), 'g6 -> [fd42::37]: answered through the relay');
    const relays = async () => {
      const reply = (await request(mesh.node('lht').controlSocket, { cmd: 'print-relays', args: [] })) as { ok: boolean; output?: string };
      return (JSON.parse(reply.output ?? '{"Relays":[]}') as { Relays: Array<{ NebulaIp: string; RelayForIps: Array<{ PeerIp: string; State: string }> }> }).Relays;
    };
    const forwardsTo = (rows: Awaited<ReturnType<typeof relays>>, host: Name, peer: Name): boolean =>
      rows.some((r) => r.NebulaIp === IP[host] && r.RelayForIps.some((x) => x.PeerIp === IP[peer] && x.State === 'established'));
    const rows = await relays();
    t.ok(forwardsTo(rows, 'g6', 'g7') && forwardsTo(rows, 'g7', 'g6'), 'lht relays between g6 and g7 (fd42::37 mapped to 192.168.100.37)');
    const before = (await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0;
    t.equal(await mesh.ping('g6', IP6.g7!, 5, 2), 5, 'g6 -> [fd42::37]: 5/5 pings');
    const forwarded = ((await status(mesh, 'lht')).counters['routine.relay.forwarded'] ?? 0) - before;
    t.ok(forwarded >= 10, `lht forwarded the 10 datagrams of those pings (${forwarded})`);
  });

  /** First contact: `from` pings `to` by its IPv6 VPN address only, found through `from`'s lighthouse. */
  const firstContact = async (t: Test, from: Name, to: Name): Promise<void> => {
    const before = await status(mesh, from);
    t.notOk(before.tunnels.some((x) => x.vpnIp === IP[to]), `${from} has no tunnel to ${to} yet`);
    t.ok(await mesh.pingUntilReply(from, IP6[to]!, 20_000), `${from} -> [${IP6[to]}]: found by its IPv6 VPN address, ping answered`);
    t.equal(await mesh.ping(from, IP6[to]!, 5, 2), 5, `${from} -> [${IP6[to]}]: 5/5 pings`);
    const after = await status(mesh, from);
    const tunnel = after.tunnels.find((x) => x.vpnIp === IP[to]);
    t.equal(tunnel?.remote, `${mesh.node(to).underlayIp}:4242`, `${from} keys ${to} by its IPv4 VPN IP and reaches it directly`);
    t.ok((after.counters['hostinfo.cached_packets.sent'] ?? 0) > (before.counters['hostinfo.cached_packets.sent'] ?? 0), 'the first echo request waited for the tunnel and was sent');
    t.equal(after.counters['handshake_manager.first_contact_refused'] ?? 0, 0);
  };

  await t.test('(g) nebula-ts makes first contact by IPv6 VPN address through a Go 1.11.0 lighthouse', async (t) => {
    await firstContact(t, 't1', 'g8');
  });

  await t.test('(h) nebula-ts makes first contact by IPv6 VPN address through a nebula-ts lighthouse', async (t) => {
    await firstContact(t, 't2', 'g4');
    t.equal((await status(mesh, 'lht')).counters['lighthouse.dropped.invalid'] ?? 0, 0, 'lht mapped the query for fd42::34 to g4');
  });
});
