/**
 * The v2 generation of the lighthouse message (src/shared/protocol/lighthouse.ts, meta-version.ts, vpn-addr.ts)
 * against Go 1.11's nebula.proto:
 *
 *   NebulaMetaDetails { OldVpnAddr=1 uint32, V4AddrPorts=2 repeated V4AddrPort, counter=3 uint32,
 *                       V6AddrPorts=4 repeated V6AddrPort, OldRelayVpnAddrs=5 repeated uint32 (packed),
 *                       VpnAddr=6 Addr, RelayVpnAddrs=7 repeated Addr }
 *   Addr { Hi=1 uint64, Lo=2 uint64 }   V4AddrPort { Addr=1, Port=2 }   V6AddrPort { Hi=1, Lo=2, Port=3 }
 *
 * gogoproto's MarshalToSizedBuffer writes fields in ascending number, leaves zero scalars out and writes every set
 * message (an empty Addr as `32 00`). Expected bytes are built here from those rules by a small hex builder of our
 * own (not the codec's writer), and the simplest ones are also written out byte by byte. An IPv4 address is the
 * Addr of its IPv4-mapped form (Go's netip.Addr.As16): Hi 0, Lo 0x0000ffff_aabbccdd.
 */
import t from 'tap';
import { ProtobufError } from '../../src/shared/protobuf';
import { decodeMeta, decodeMetaDetails, emptyMetaDetails, encodeMeta, MAX_LIST_ENTRIES, MetaType, type NebulaMetaDetails } from '../../src/shared/protocol/lighthouse';
import { metaDetailsFor, metaRelays, metaSubject } from '../../src/shared/protocol/meta-version';
import { addrOfIPv4, formatAddr, ipv4OfAddr } from '../../src/shared/protocol/vpn-addr';
import { parseIPv4 } from '../../src/shared/util/ipv4';

function throwsProtobufError(fn: () => unknown): string | false {
  try {
    fn();
  } catch (e) {
    return e instanceof ProtobufError ? e.message : false;
  }
  return false;
}

const ip = (s: string): number => parseIPv4(s)!;

// --- an independent proto3 builder, in hex --------------------------------------------------------------------------
function varint(n: bigint | number): string {
  let v = BigInt(n);
  let out = '';
  while (v >= 0x80n) {
    out += Number((v & 0x7fn) | 0x80n).toString(16).padStart(2, '0');
    v >>= 7n;
  }
  return out + Number(v).toString(16).padStart(2, '0');
}
const uintField = (field: number, v: bigint | number): string => (BigInt(v) === 0n ? '' : varint(field << 3) + varint(v));
const msgField = (field: number, hex: string): string => varint((field << 3) | 2) + varint(hex.length / 2) + hex;
const mapped = (a: string): bigint => (0xffffn << 32n) | BigInt(ip(a));
const addrMsg = (hi: bigint, lo: bigint): string => uintField(1, hi) + uintField(2, lo);
const v4Msg = (a: string, port: number): string => uintField(1, ip(a)) + uintField(2, port);
const meta = (type: number, details: string): string => uintField(1, type) + msgField(2, details);

t.test('Addr: an IPv4 address is its IPv4-mapped form, and only that form reads back as IPv4', async (t) => {
  t.same(addrOfIPv4(ip('10.1.2.3')), { hi: 0n, lo: 0x0000ffff0a010203n });
  t.equal(ipv4OfAddr({ hi: 0n, lo: 0x0000ffff0a010203n }), ip('10.1.2.3'));
  t.equal(ipv4OfAddr({ hi: 0n, lo: 0x0a010203n }), undefined, '::10.1.2.3 (IPv4-compatible) is IPv6 to Go (Unmap leaves it)');
  t.equal(ipv4OfAddr({ hi: 1n, lo: 0x0000ffff0a010203n }), undefined);
  t.equal(ipv4OfAddr({ hi: 0x20010db800000000n, lo: 1n }), undefined);
  t.equal(formatAddr({ hi: 0x20010db800000000n, lo: 1n }), '2001:db8:0:0:0:0:0:1');
  t.equal(formatAddr(addrOfIPv4(ip('10.1.2.3'))), '10.1.2.3');
});

t.test('HostQuery for 10.1.2.3: v1 as 1.6.1 writes it, v2 as Go 1.11 writes it', async (t) => {
  const v1 = encodeMeta({ type: MetaType.HostQuery, details: metaDetailsFor(1, { vpnIp: ip('10.1.2.3') }) });
  t.equal(v1.toString('hex'), '080112050883848450', 'nebula-spec §5.1: OldVpnAddr only');
  const v2 = encodeMeta({ type: MetaType.HostQuery, details: metaDetailsFor(2, { vpnIp: ip('10.1.2.3') }) });
  // 08 01 | 12 0a | 32 08 | 10 83 84 84 d0 f0 ff 3f   (Details { VpnAddr { Lo = 0xffff0a010203 } })
  t.equal(v2.toString('hex'), '0801' + '120a' + '3208' + '10838484d0f0ff3f');
  t.equal(v2.toString('hex'), meta(1, msgField(6, addrMsg(0n, mapped('10.1.2.3')))), 'the builder agrees');
  const s1 = metaSubject(decodeMeta(v1).details!);
  const s2 = metaSubject(decodeMeta(v2).details!);
  t.same([s1?.version, s1?.ipv4], [1, ip('10.1.2.3')]);
  t.same([s2?.version, s2?.ipv4], [2, ip('10.1.2.3')]);
});

t.test('HostUpdateNotification: v1 names the sender and packs relays; v2 names nobody and lists Addr relays', async (t) => {
  const fields = { ip4AndPorts: [{ ip: ip('203.0.113.5'), port: 4242 }], relays: [ip('10.1.0.9')] };
  const v1 = encodeMeta({ type: MetaType.HostUpdateNotification, details: metaDetailsFor(1, { vpnIp: ip('10.1.0.2'), ...fields }) });
  t.equal(
    v1.toString('hex'),
    '0803' + '1216' + '0882808450' + '1209' + '0885e281d80c' + '109221' + '2a04' + '89808450',
    'OldVpnAddr 10.1.0.2, V4AddrPorts { 203.0.113.5, 4242 }, OldRelayVpnAddrs packed [10.1.0.9]',
  );
  const v2 = encodeMeta({ type: MetaType.HostUpdateNotification, details: metaDetailsFor(2, fields) });
  t.equal(v2.toString('hex'), '0803' + '1215' + '1209' + '0885e281d80c' + '109221' + '3a08' + '10898084d0f0ff3f', 'V4AddrPorts, RelayVpnAddrs [Addr 10.1.0.9]');
  t.equal(v2.toString('hex'), meta(3, msgField(2, v4Msg('203.0.113.5', 4242)) + msgField(7, addrMsg(0n, mapped('10.1.0.9')))));
  const d = decodeMeta(v2).details!;
  t.equal(metaSubject(d), undefined, 'a v2 update is about nobody in particular');
  t.same(metaRelays(d), { relays: [ip('10.1.0.9')], ignored: 0 });
});

t.test('HostQueryReply in v2 with IPv6 underlay addresses, two relays and counter: byte-exact both ways', async (t) => {
  const v6 = { hi: 0x20010db800000000n, lo: 0x1n, port: 4243 };
  const details = metaDetailsFor(2, {
    vpnIp: ip('10.1.0.3'),
    ip4AndPorts: [
      { ip: ip('203.0.113.5'), port: 4242 },
      { ip: 0, port: 0 },
    ],
    ip6AndPorts: [v6],
    relays: [ip('10.1.0.9'), ip('10.1.0.10')],
  });
  const expected = meta(
    2,
    msgField(2, v4Msg('203.0.113.5', 4242)) +
      msgField(2, '') + // the zero V4AddrPort is still written, empty
      msgField(4, uintField(1, v6.hi) + uintField(2, v6.lo) + uintField(3, v6.port)) +
      msgField(6, addrMsg(0n, mapped('10.1.0.3'))) +
      msgField(7, addrMsg(0n, mapped('10.1.0.9'))) +
      msgField(7, addrMsg(0n, mapped('10.1.0.10'))),
  );
  const enc = encodeMeta({ type: MetaType.HostQueryReply, details });
  t.equal(enc.toString('hex'), expected);
  const dec = decodeMeta(Buffer.from(expected, 'hex'));
  t.same(dec, { type: MetaType.HostQueryReply, details });
  t.same(metaRelays(dec.details!), { relays: [ip('10.1.0.9'), ip('10.1.0.10')], ignored: 0 });
});

t.test('reading as Go reads: OldVpnAddr wins over VpnAddr, relays are old then new, IPv6 relays left out', async (t) => {
  const both = Buffer.from(
    uintField(1, ip('10.1.0.2')) + uintField(5, 0) + msgField(5, varint(ip('10.1.0.9'))) + msgField(6, addrMsg(0n, mapped('10.1.0.3'))) +
      msgField(7, addrMsg(0n, mapped('10.1.0.10'))) + msgField(7, addrMsg(0x20010db800000000n, 5n)),
    'hex',
  );
  const d = decodeMetaDetails(both);
  t.same([metaSubject(d)?.version, metaSubject(d)?.ipv4], [1, ip('10.1.0.2')], 'GetVpnAddrAndVersion: the old field when non-zero');
  t.same(metaRelays(d), { relays: [ip('10.1.0.9'), ip('10.1.0.10')], ignored: 1 });
  const v6subject = decodeMetaDetails(Buffer.from(msgField(6, addrMsg(0x20010db800000000n, 7n)), 'hex'));
  t.same(metaSubject(v6subject), { version: 2, addr: { hi: 0x20010db800000000n, lo: 7n }, ipv4: undefined }, 'an IPv6 VPN address is reported, not mistaken');
  t.same(metaSubject(emptyMetaDetails()), undefined, 'neither field: malformed (ErrBadDetailsVpnAddr)');
  // An empty Addr is ::, not IPv4 0.0.0.0, and round-trips as written (32 00).
  const empty = decodeMetaDetails(Buffer.from('3200', 'hex'));
  t.same(empty.vpnAddr, { hi: 0n, lo: 0n });
  t.equal(encodeMeta({ type: 1, details: empty }).toString('hex'), '0801' + '1202' + '3200');
  // A repeated singular message merges, as gogoproto's Unmarshal into the existing Addr does.
  const merged = decodeMetaDetails(Buffer.from(msgField(6, uintField(1, 5)) + msgField(6, uintField(2, 9)), 'hex'));
  t.same(merged.vpnAddr, { hi: 5n, lo: 9n });
});

t.test('HostUpdateNotificationAck in v2: blank details, as Go 1.11 sends it', async (t) => {
  t.equal(encodeMeta({ type: MetaType.HostUpdateNotificationAck, details: emptyMetaDetails() }).toString('hex'), '080a1200');
});

t.test('hostile input: truncated, wrong wire types and oversize lists throw ProtobufError', async (t) => {
  const cases: Array<[string, string]> = [
    ['truncated Addr varint', meta(1, msgField(6, '10ffff'))],
    ['Addr length past the end', meta(1, '3209' + '10838484d0f0ff3f')],
    ['VpnAddr as a varint', meta(1, '3001')],
    ['RelayVpnAddrs as fixed32', meta(1, '3d01020304')],
    ['Addr.Hi as bytes', meta(1, msgField(6, '0a0101'))],
    ['Addr.Lo as fixed64', meta(1, msgField(6, '110102030405060708'))],
    ['V6AddrPort.Hi as bytes', meta(1, msgField(4, '0a0101'))],
    ['unknown wire type 3 in Addr', meta(1, msgField(6, '0b'))],
  ];
  for (const [what, hex] of cases) t.ok(throwsProtobufError(() => decodeMeta(Buffer.from(hex, 'hex'))), what);

  const many = (n: number, one: string): Buffer => Buffer.from(one.repeat(n), 'hex');
  const v4 = msgField(2, v4Msg('203.0.113.5', 4242));
  const v6 = msgField(4, uintField(1, 1n) + uintField(3, 1));
  const relay = msgField(7, addrMsg(0n, mapped('10.1.0.9')));
  const lists: Array<[string, string, (d: NebulaMetaDetails) => number | undefined]> = [
    ['V4AddrPorts', v4, (d) => d.ip4AndPorts.length],
    ['V6AddrPorts', v6, (d) => d.ip6AndPorts.length],
    ['RelayVpnAddrs', relay, (d) => d.relayVpnAddrs?.length],
  ];
  for (const [what, one, count] of lists) {
    t.equal(count(decodeMetaDetails(many(MAX_LIST_ENTRIES, one))), MAX_LIST_ENTRIES, `${what}: exactly the limit is accepted`);
    t.match(throwsProtobufError(() => decodeMetaDetails(many(MAX_LIST_ENTRIES + 1, one))), new RegExp(`^${what}: more than ${MAX_LIST_ENTRIES}`), `${what}: one more is refused`);
  }
  // The packed old relay list: one field of 129 varints, or 129 unpacked occurrences.
  const packed = msgField(5, varint(ip('10.1.0.9')).repeat(MAX_LIST_ENTRIES + 1));
  t.match(throwsProtobufError(() => decodeMetaDetails(Buffer.from(packed, 'hex'))), /^OldRelayVpnAddrs: more than/);
  t.match(throwsProtobufError(() => decodeMetaDetails(many(MAX_LIST_ENTRIES + 1, uintField(5, 7)))), /^OldRelayVpnAddrs: more than/);
  t.equal(decodeMetaDetails(Buffer.from(msgField(5, varint(7).repeat(MAX_LIST_ENTRIES)), 'hex')).relayVpnIps.length, MAX_LIST_ENTRIES);
});

t.test('naming a host by another address: a v2 HostQueryReply about fd42::3 (as Go answers a query for it); v1 keeps VpnIp', async (t) => {
  const fd42 = { hi: 0xfd42000000000000n, lo: 3n };
  const fields = { vpnIp: ip('10.1.0.3'), vpnAddr: fd42, ip4AndPorts: [{ ip: ip('203.0.113.5'), port: 4242 }] };
  const v2 = encodeMeta({ type: MetaType.HostQueryReply, details: metaDetailsFor(2, fields) });
  t.equal(v2.toString('hex'), meta(2, msgField(2, v4Msg('203.0.113.5', 4242)) + msgField(6, addrMsg(fd42.hi, fd42.lo))), 'VpnAddr = fd42::3');
  t.equal(v2.toString('hex'), '0802' + '121a' + '1209' + '0885e281d80c' + '109221' + '320d' + '0880808080808080a1fd01' + '1003', 'byte by byte');
  const v1 = decodeMeta(encodeMeta({ type: MetaType.HostQueryReply, details: metaDetailsFor(1, fields) })).details!;
  t.same([v1.vpnIp, v1.vpnAddr], [ip('10.1.0.3'), undefined], 'v1 cannot carry IPv6: the host by its VPN IP');
  const other4 = metaDetailsFor(1, { vpnIp: ip('10.1.0.3'), vpnAddr: addrOfIPv4(ip('10.9.0.3')) });
  t.equal(other4.vpnIp, ip('10.9.0.3'), 'v1 writes an IPv4 address as named');
});

t.test('metaRelays with a resolver maps the relays it knows, IPv6 included, and counts the rest', async (t) => {
  const d = decodeMetaDetails(Buffer.from(msgField(7, addrMsg(0xfd42000000000000n, 9n)) + msgField(7, addrMsg(0xfd42000000000000n, 0x99n)) + msgField(7, addrMsg(0n, mapped('10.1.0.10'))), 'hex'));
  const vpnIpOf = (a: { hi: bigint; lo: bigint }): number | undefined => (a.lo === 9n ? ip('10.1.0.9') : ipv4OfAddr(a));
  t.same(metaRelays(d, vpnIpOf), { relays: [ip('10.1.0.9'), ip('10.1.0.10')], ignored: 1 });
  t.same(metaRelays(d), { relays: [ip('10.1.0.10')], ignored: 2 }, 'by default only IPv4 addresses map');
});
