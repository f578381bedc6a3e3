/**
 * The lighthouse protocol over tunnels made with v2 certificates (Go 1.10+'s lighthouse.go), beside 1.6.1's on v1
 * tunnels, in the supervisor: which fields each message is written with (per the certificate version of the tunnel
 * to its destination, or the version a query was asked in) and how both generations are read. A node is
 * fixtures/lighthouse-node.ts; `versions` gives a tunnel its certificate version (default 1). Payload bytes are
 * compared with proto3 built here by hand (vpn-addr mapping: ::ffff:a.b.c.d).
 */
import t from 'tap';
import type { CertVersion } from '../../src/shared/pki/certificate';
import { MAX_LIST_ENTRIES, MetaType, type NebulaMetaDetails } from '../../src/shared/protocol/lighthouse';
import { addrOfIPv4 } from '../../src/shared/protocol/vpn-addr';
import { addrMapJson } from '../../src/supervisor/console-lighthouse';
import { A, B, CLIENT_YAML, details, ep, ip, LH1, LH2, node, RELAY, SERVER_YAML, show, V6, v4 } from './fixtures/lighthouse-node';

const addr = addrOfIPv4;

/** A v2 message's details: no old VPN-address fields, the new ones as given. */
function v2(d: Partial<NebulaMetaDetails>): NebulaMetaDetails {
  return details(d);
}

t.test('server: a v2 update (no VpnAddr) is stored under its sender, Addr relays taken, and acked blank', async (t) => {
  const s = node(LH1, SERVER_YAML);
  s.versions.set(A, 2);
  s.rx(A, MetaType.HostUpdateNotification, v2({ ip4AndPorts: v4('203.0.113.5:4242', '10.1.0.50:4242'), ip6AndPorts: [V6], relayVpnAddrs: [addr(RELAY)] }));
  const c = s.lh.entries().get(A)!.ownedBy(A)!;
  t.same(show(c.reported), ['203.0.113.5:4242'], 'the VPN-network address filtered as for v1');
  t.same(c.reported6, [V6], 'the IPv6 underlay address kept, to be passed on');
  t.same(c.relays, [RELAY]);
  t.same(
    s.sent.map((m) => [m.to, m.payload.toString('hex')]),
    [[A, '080a1200']],
    'HostUpdateNotificationAck with empty details, as Go 1.11 answers a v2 update',
  );
  t.same(s.count(), { 'lighthouse.rx.HostUpdateNotification': 1, 'lighthouse.tx.other': 1 });

  // A v2 update naming its sender is fine; naming another host is refused, as in v1.
  s.rx(A, MetaType.HostUpdateNotification, v2({ vpnAddr: addr(A), ip4AndPorts: v4('198.51.100.7:4242') }));
  t.same(show(s.lh.entries().get(A)!.ownedBy(A)!.reported), ['198.51.100.7:4242']);
  s.rx(B, MetaType.HostUpdateNotification, v2({ vpnAddr: addr(A), ip4AndPorts: v4('198.51.100.66:1') }));
  t.same(show(s.lh.entries().get(A)!.ownedBy(A)!.reported), ['198.51.100.7:4242'], 'B cannot speak for A');
  t.notOk(s.lh.entries().has(B));
  t.equal(s.count()['lighthouse.dropped.wrong_vpn_ip'], 1);
  t.same(s.logs.filter((l) => l.msg === 'Host sent invalid update').map((l) => l.answer), ['10.1.0.2']);
});

t.test('server: a v1 update is not acked (a 1.6.1 lighthouse sends none), whatever else the map holds', async (t) => {
  const s = node(LH1, SERVER_YAML);
  s.rx(A, MetaType.HostUpdateNotification, { vpnIp: A, ip4AndPorts: v4('203.0.113.5:4242') });
  t.same(s.sent, []);
  t.same(s.count(), { 'lighthouse.rx.HostUpdateNotification': 1 });
});

/** Counted while servedMesh set up (A's v2 update and its ack). */
const SETUP = { 'lighthouse.rx.HostUpdateNotification': 1, 'lighthouse.tx.other': 1 };

/** A lighthouse holding A (reported over v2, relays) and B (learned). */
function servedMesh(aVersion: CertVersion, bVersion: CertVersion) {
  const s = node(LH1, SERVER_YAML);
  s.versions.set(A, aVersion);
  s.versions.set(B, bVersion);
  s.lh.learned(A, ep('203.0.113.5:6000'));
  s.rx(A, MetaType.HostUpdateNotification, v2({ ip4AndPorts: v4('198.51.100.7:4242'), ip6AndPorts: [V6], relayVpnAddrs: [addr(RELAY)] }));
  s.lh.learned(B, ep('203.0.113.9:7000'));
  s.sent.length = 0;
  return s;
}

t.test('server: a v2 query is answered in v2; the punch notification in the version of the tunnel to the target', async (t) => {
  const s = servedMesh(2, 2);
  s.rx(B, MetaType.HostQuery, v2({ vpnAddr: addr(A) }));
  t.same(
    s.sent.map(({ to, type, details }) => ({ to, type, details })),
    [
      { to: B, type: MetaType.HostQueryReply, details: v2({ vpnAddr: addr(A), ip4AndPorts: v4('203.0.113.5:6000', '198.51.100.7:4242'), ip6AndPorts: [V6], relayVpnAddrs: [addr(RELAY)] }) },
      { to: A, type: MetaType.HostPunchNotification, details: v2({ vpnAddr: addr(B), ip4AndPorts: v4('203.0.113.9:7000') }) },
    ],
  );
  // The punch notification byte for byte: 08 05 | 12 len | 12 09 (08 <203.0.113.9> 10 <7000>) | 32 08 10 <::ffff:10.1.0.3>
  t.equal(s.sent[1]!.payload.toString('hex'), '0805' + '1215' + '1209' + '0889e281d80c' + '10d836' + '3208' + '10838084d0f0ff3f');
  t.same(s.count(), { ...SETUP, 'lighthouse.rx.HostQuery': 1, 'lighthouse.tx.HostQueryReply': 1, 'lighthouse.tx.HostPunchNotification': 1 });
});

t.test('server: mixed generations: a 1.6.1 querier (v1) about a v2 host, and a v2 querier about a v1 host', async (t) => {
  const s = servedMesh(2, 1);
  s.rx(B, MetaType.HostQuery, { vpnIp: A });
  t.same(s.sent[0]!.details, details({ vpnIp: A, ip4AndPorts: v4('203.0.113.5:6000', '198.51.100.7:4242'), ip6AndPorts: [V6], relayVpnIps: [RELAY] }), 'the v1 querier gets v1 fields only');
  t.same(s.sent[1]!.details, v2({ vpnAddr: addr(B), ip4AndPorts: v4('203.0.113.9:7000') }), 'A (v2 tunnel) is told in v2');

  const r = servedMesh(1, 2);
  r.rx(B, MetaType.HostQuery, v2({ vpnAddr: addr(A) }));
  t.same(r.sent[0]!.details?.vpnAddr, addr(A), 'reply in the version asked');
  t.same(r.sent[0]!.details?.relayVpnAddrs, [addr(RELAY)]);
  t.same(r.sent[1]!.details, details({ vpnIp: B, ip4AndPorts: v4('203.0.113.9:7000') }), 'A (v1 tunnel, maybe 1.6.1) is told in v1');
});

t.test('server: queries naming no host, or an IPv6 address of no tunnelled host, are dropped and counted as invalid', async (t) => {
  const s = servedMesh(2, 2);
  s.peer(A, '10.1.0.2/16', 'fd42::2/64');
  s.rx(B, MetaType.HostQuery, v2({}));
  s.rx(B, MetaType.HostQuery, v2({ vpnAddr: { hi: 0x20010db800000000n, lo: 2n } }));
  t.same(s.sent, []);
  t.same(s.count(), { ...SETUP, 'lighthouse.rx.HostQuery': 2, 'lighthouse.dropped.invalid': 2 });
  t.ok(s.logs.some((l) => l.msg === 'Dropping malformed HostQuery: an IPv6 VPN address of no host we have a tunnel to' && l.vpnAddr === '2001:db8:0:0:0:0:0:2'));
});

// fd42::2 and fd42::3 as Go writes them: Addr { Hi = 0xfd42000000000000, Lo = 2 | 3 }.
const FD42_2 = { hi: 0xfd42000000000000n, lo: 2n };
const FD42_3 = { hi: 0xfd42000000000000n, lo: 3n };
/** VpnAddr (field 6) = fd42::2, by hand: 32 0d | 08 <varint 0xfd42000000000000> 10 02 (13 bytes). */
const FD42_2_FIELD = '320d' + '08' + '80808080808080a1fd01' + '1002';

/** servedMesh with dual-stack certificates on the tunnels to A (10.1.0.2, fd42::2) and B (10.1.0.3, fd42::3). */
function dualStackMesh() {
  const s = servedMesh(2, 2);
  s.peer(A, '10.1.0.2/16', 'fd42::2/64');
  s.peer(B, '10.1.0.3/16', 'fd42::3/64');
  return s;
}

t.test('server: a Go 1.11 query for an IPv6 VPN address is answered about the host holding it, named as asked', async (t) => {
  const s = dualStackMesh();
  s.rx(B, MetaType.HostQuery, v2({ vpnAddr: FD42_2 }));
  t.same(
    s.sent.map(({ to, type, details }) => ({ to, type, details })),
    [
      { to: B, type: MetaType.HostQueryReply, details: v2({ vpnAddr: FD42_2, ip4AndPorts: v4('203.0.113.5:6000', '198.51.100.7:4242'), ip6AndPorts: [V6], relayVpnAddrs: [addr(RELAY)] }) },
      // Go's findNetworkUnion: A's first network (10.1.0.0/16) holds B's IPv4 address, so B is named by that.
      { to: A, type: MetaType.HostPunchNotification, details: v2({ vpnAddr: addr(B), ip4AndPorts: v4('203.0.113.9:7000') }) },
    ],
  );
  t.ok(s.sent[0]!.payload.toString('hex').includes(FD42_2_FIELD), 'the reply carries VpnAddr fd42::2 byte for byte');
  t.same(s.count(), { ...SETUP, 'lighthouse.rx.HostQuery': 1, 'lighthouse.tx.HostQueryReply': 1, 'lighthouse.tx.HostPunchNotification': 1 });

  // The host's tunnel goes: its addresses name nobody, and the query is refused as before.
  s.book.tunnelGone(A);
  s.lh.tunnelGone(A);
  s.sent.length = 0;
  s.rx(B, MetaType.HostQuery, v2({ vpnAddr: FD42_2 }));
  t.same(s.sent, []);
  t.equal(s.count()['lighthouse.dropped.invalid'], 1);
});

t.test('server: the punch notification names the querier by its address in the target\'s networks (IPv6 here)', async (t) => {
  const s = servedMesh(2, 2);
  // A's IPv4 network does not hold B's IPv4 address, but both share fd42::/64: Go names B by fd42::3.
  s.peer(A, '10.2.0.2/16', 'fd42::2/64');
  s.peer(B, '10.1.0.3/16', 'fd42::3/64');
  s.rx(B, MetaType.HostQuery, v2({ vpnAddr: addr(A) }));
  t.same(s.sent[1]!.details, v2({ vpnAddr: FD42_3, ip4AndPorts: v4('203.0.113.9:7000') }));
  // On a v1 tunnel to A (a v1 certificate: IPv4 networks only) B is named by its VPN IP, as before.
  const old = servedMesh(1, 2);
  old.peer(A, '10.2.0.2/16');
  old.peer(B, '10.1.0.3/16', 'fd42::3/64');
  old.rx(B, MetaType.HostQuery, v2({ vpnAddr: addr(A) }));
  t.same(old.sent[1]!.details, details({ vpnIp: B, ip4AndPorts: v4('203.0.113.9:7000') }));
});

t.test('server: a v2 update may name its sender by any address of its certificate, never by another host\'s', async (t) => {
  const s = dualStackMesh();
  s.rx(A, MetaType.HostUpdateNotification, v2({ vpnAddr: FD42_2, ip4AndPorts: v4('198.51.100.8:4242') }));
  t.same(show(s.lh.entries().get(A)!.ownedBy(A)!.reported), ['198.51.100.8:4242'], 'fd42::2 is A');
  s.rx(A, MetaType.HostUpdateNotification, v2({ vpnAddr: FD42_3, ip4AndPorts: v4('198.51.100.66:1') }));
  t.same(show(s.lh.entries().get(A)!.ownedBy(A)!.reported), ['198.51.100.8:4242'], 'fd42::3 is B: refused');
  t.equal(s.count()['lighthouse.dropped.wrong_vpn_ip'], 1);
});

t.test('server: list-lighthouse-addrmap lists a dual-stack host under each of its addresses, as Go keys its map', async (t) => {
  const s = dualStackMesh();
  const rows = addrMapJson(s.lh);
  t.same(
    rows.map((r) => r.vpnIp),
    ['10.1.0.2', '10.1.0.3', 'fd42::2', 'fd42::3'],
  );
  t.same(rows[2]!.addrs, rows[0]!.addrs, "fd42::2's row is A's entry");
  t.same(rows[0]!.addrs['10.1.0.2']?.reported, [{ ip: '198.51.100.7', port: 4242 }]);
});

t.test('client: v2 queries and updates per lighthouse tunnel: LH1 on v2, LH2 on v1', async (t) => {
  const c = node(A, CLIENT_YAML);
  c.versions.set(LH1, 2);
  c.lh.queryServer(ip('10.1.2.3'), 10_000);
  t.same(
    c.sent.map((m) => [m.to, m.payload.toString('hex')]),
    [
      [LH1, '0801' + '120a' + '3208' + '10838484d0f0ff3f'],
      [LH2, '080112050883848450'],
    ],
  );
  c.sent.length = 0;
  const cfg = c.config();
  c.setConfig({ ...cfg, lighthouse: { ...cfg.lighthouse, advertise_addrs: ['198.51.100.1:0'] }, relay: { ...cfg.relay, relays: ['10.1.0.9'] } });
  c.lh.sendUpdate();
  t.same(c.sent[0]!.details, v2({ ip4AndPorts: v4('198.51.100.1:4242'), relayVpnAddrs: [addr(RELAY)] }), 'v2: names nobody, relays as Addr');
  t.same(c.sent[1]!.details, details({ vpnIp: A, ip4AndPorts: v4('198.51.100.1:4242'), relayVpnIps: [RELAY] }), 'v1: exactly as before');
  t.same(c.count(), { 'lighthouse.tx.HostQuery': 2, 'lighthouse.tx.HostUpdateNotification': 2 });
});

t.test('client: a v2 HostQueryReply and HostPunchNotification from a Go 1.11 lighthouse', async (t) => {
  const c = node(A, CLIENT_YAML);
  c.rx(LH1, MetaType.HostQueryReply, v2({ vpnAddr: addr(B), ip4AndPorts: v4('203.0.113.9:7000', '172.16.0.1:4242'), ip6AndPorts: [V6], relayVpnAddrs: [addr(RELAY), { hi: 1n, lo: 1n }] }));
  t.same(show(c.lh.entries().get(B)!.ownedBy(LH1)!.reported), ['203.0.113.9:7000'], 'stored about B, filtered');
  t.same(c.lh.entries().get(B)!.ownedBy(LH1)!.reported6, [V6]);
  t.same(c.lh.relaysFor(B), [RELAY], 'the IPv6 relay left out');
  t.same(c.triggered, [B]);

  c.rx(LH1, MetaType.HostPunchNotification, v2({ vpnAddr: addr(B), ip4AndPorts: v4('203.0.113.9:7000') }));
  for (const x of c.timers) x.fn();
  t.same(show(c.punched), ['203.0.113.9:7000']);
  t.same(c.tests, [B], 'the punch back goes to the host VpnAddr names');
  t.same(c.count(), { 'lighthouse.rx.HostQueryReply': 1, 'lighthouse.rx.HostPunchNotification': 1, 'messages.tx.holepunch': 1 });
});

t.test('client: a reply or punch naming a known host by its IPv6 VPN address is taken for that host', async (t) => {
  const c = node(A, CLIENT_YAML, 64, ['10.1.0.2/16', 'fd42::2/64']);
  c.peer(B, '10.1.0.3/16', 'fd42::3/64');
  c.peer(RELAY, '10.1.0.9/16', 'fd42::9/64');
  const relay6 = { hi: 0xfd42000000000000n, lo: 9n };
  c.rx(LH1, MetaType.HostQueryReply, v2({ vpnAddr: FD42_3, ip4AndPorts: v4('203.0.113.9:7000'), relayVpnAddrs: [relay6] }));
  t.same(show(c.lh.entries().get(B)!.ownedBy(LH1)!.reported), ['203.0.113.9:7000'], 'stored about B (10.1.0.3)');
  t.same(c.lh.relaysFor(B), [RELAY], 'the relay named by fd42::9 is 10.1.0.9');
  t.same(c.triggered, [B]);
  c.rx(LH1, MetaType.HostPunchNotification, v2({ vpnAddr: FD42_3, ip4AndPorts: v4('203.0.113.9:7000') }));
  for (const x of c.timers) x.fn();
  t.same(show(c.punched), ['203.0.113.9:7000']);
  t.same(c.tests, [B], 'the punch back goes to B');
  t.same(c.count(), { 'lighthouse.rx.HostQueryReply': 1, 'lighthouse.rx.HostPunchNotification': 1, 'messages.tx.holepunch': 1 });
});

t.test('client: replies and punches naming no host or an IPv6 address of no known host are dropped as invalid, nothing stored or sent', async (t) => {
  const c = node(A, CLIENT_YAML);
  c.peer(B, '10.1.0.3/16', 'fd42::3/64');
  const six = { hi: 0x20010db800000000n, lo: 3n };
  c.rx(LH1, MetaType.HostQueryReply, v2({ ip4AndPorts: v4('203.0.113.9:7000') }));
  c.rx(LH1, MetaType.HostQueryReply, v2({ vpnAddr: six, ip4AndPorts: v4('203.0.113.9:7000') }));
  c.rx(LH1, MetaType.HostPunchNotification, v2({ ip4AndPorts: v4('203.0.113.9:7000') }));
  c.rx(LH1, MetaType.HostPunchNotification, v2({ vpnAddr: six, ip4AndPorts: v4('203.0.113.9:7000') }));
  t.equal(c.lh.size, 0);
  t.same([c.triggered, c.timers, c.sent], [[], [], []]);
  t.same(c.count(), { 'lighthouse.rx.HostQueryReply': 2, 'lighthouse.rx.HostPunchNotification': 2, 'lighthouse.dropped.invalid': 4 });
});

t.test('an oversize list makes the whole message invalid: counted, nothing stored', async (t) => {
  const s = node(LH1, SERVER_YAML);
  const many = Array.from({ length: MAX_LIST_ENTRIES + 1 }, (_, i) => ({ ip: ip('198.51.100.1') + i, port: 4242 }));
  s.rx(A, MetaType.HostUpdateNotification, v2({ ip4AndPorts: many }));
  s.rx(A, MetaType.HostUpdateNotification, v2({ relayVpnAddrs: many.map((e) => addr(e.ip)) }));
  t.notOk(s.lh.entries().has(A));
  t.same(s.sent, []);
  t.same(s.count(), { 'lighthouse.dropped.invalid': 2 });
});
