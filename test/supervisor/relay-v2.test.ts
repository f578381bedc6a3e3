/**
 * Relay set-up over tunnels made with v2 certificates (Go 1.10+'s relay_manager.go): each NebulaControl names the
 * ends in RelayFromAddr / RelayToAddr (Addr, ::ffff:a.b.c.d) on a v2 tunnel and in the 1.6.1 uint32 pair on a v1
 * tunnel, in the three roles (A wants B through R) and with the generations mixed across R. Nodes are
 * fixtures/relay-node.ts; expected bytes are built here by hand from nebula.proto (tags 08 10 18 20 28 32 3a).
 */
import t from 'tap';
import { ControlType, encodeControl } from '../../src/shared/protocol/control';
import { A, B, goControl, node, prefixes, R, request, STAGE1, trio, tunnel, varint } from './fixtures/relay-node';

/** An Addr of an IPv4 address as Go writes it: Lo = 0x0000ffff_aabbccdd, Hi 0 left out. */
function addrHex(ip: number): string {
  let v = (0xffffn << 32n) | BigInt(ip >>> 0);
  let out = '';
  while (v >= 0x80n) {
    out += Number((v & 0x7fn) | 0x80n).toString(16).padStart(2, '0');
    v >>= 7n;
  }
  const lo = '10' + out + Number(v).toString(16).padStart(2, '0');
  return (lo.length / 2).toString(16).padStart(2, '0') + lo;
}

/** Addr { Hi=1, Lo=2 } of an IPv6 address, by hand (zero halves left out), with its length prefix. */
function addr6Hex(hi: bigint, lo: bigint): string {
  const v = (n: bigint): string => {
    let out = '';
    while (n >= 0x80n) {
      out += Number((n & 0x7fn) | 0x80n).toString(16).padStart(2, '0');
      n >>= 7n;
    }
    return out + Number(n).toString(16).padStart(2, '0');
  };
  const body = (hi === 0n ? '' : '08' + v(hi)) + (lo === 0n ? '' : '10' + v(lo));
  return (body.length / 2).toString(16).padStart(2, '0') + body;
}

/** Go 1.11's Marshal of a v2 NebulaControl: Type, indexes (zeros left out), RelayToAddr (32), RelayFromAddr (3a). */
function goControlV2(type: number, initiator: number, responder: number, to: number, from: number): string {
  const field = (tag: string, v: number) => (v === 0 ? '' : tag + varint(v));
  return field('08', type) + field('10', initiator) + field('18', responder) + '32' + addrHex(to) + '3a' + addrHex(from);
}

t.test('A on a v2 tunnel to R asks in v2: RelayFromAddr = us, RelayToAddr = the target', async (t) => {
  const a = node(A, { tunnels: [tunnel(R, undefined, 2)] });
  a.relaysFor.set(B, [R]);
  a.rm.forHandshake(B, STAGE1);
  const iA = a.relays()[0]!.localIndex;
  t.same(a.controls.map((c) => [c.to, c.hex]), [[R, goControlV2(1, iA, 0, B, A)]]);
  t.equal(goControlV2(1, 0x12345678, 0, B, A), '0801' + '10f8acd19101' + '3208' + '10838084d0f0ff3f' + '3a08' + '10828084d0f0ff3f', 'the builder, byte by byte');
  t.same([a.controls[0]!.m.relayToIp, a.controls[0]!.m.relayFromIp], [0, 0], 'no old fields on a v2 tunnel');
});

t.test('B answers a v2 request in v2; a v2 request without both Addrs, or with an IPv6 one of no known host, is ignored', async (t) => {
  const b = node(B, { tunnels: [tunnel(R, undefined, 2)] });
  b.rm.onControl(R, Buffer.from(goControlV2(1, 0x42, 0, B, A), 'hex'));
  const [relay] = b.relays();
  t.same(relay, { localIndex: relay!.localIndex, remoteIndex: 0x42, kind: 'terminal', state: 'established', hostVpnIp: R, peerVpnIp: A });
  t.same(b.controls.map((c) => [c.to, c.hex]), [[R, goControlV2(2, 0x42, relay!.localIndex, B, A)]]);

  const quiet = node(B, { tunnels: [tunnel(R, undefined, 2)] });
  quiet.rm.onControl(R, Buffer.from('0801' + '1042' + '32' + addrHex(B), 'hex'));
  quiet.rm.onControl(R, Buffer.from('0801' + '1042' + '3204' + '08011001' + '3a' + addrHex(A), 'hex'));
  t.same([quiet.controls, quiet.relays(), quiet.published], [[], [], []]);
  t.same(
    quiet.logs.map((l) => l.msg),
    ['Control message received with nil RelayFromAddr', 'IPv6 VPN address in a relay message (10.1.0.2 -> 0:0:0:1:0:0:0:1) names no host we know'],
  );
});

t.test('A, R and B on v2 tunnels: established end to end, every message in v2', async (t) => {
  const { a, r, b, pump } = trio({ ar: 2, rb: 2 });
  a.rm.forHandshake(B, STAGE1);
  pump();
  const [ra] = a.rm.routes();
  const [rb] = b.rm.routes();
  t.ok(ra && rb, 'both ends established');
  t.equal(r.rm.routes().length, 2, 'R forwards both ways');
  for (const n of [a, r, b]) for (const c of n.controls) t.ok(c.m.relayFromAddr && c.m.relayToAddr && c.m.relayFromIp === 0 && c.m.relayToIp === 0, `${c.to}: v2 fields only`);
  t.same(r.controls.map((c) => [c.to, c.m.type]), [[B, ControlType.CreateRelayRequest], [A, ControlType.CreateRelayResponse]]);
  a.rm.forHandshake(B, STAGE1);
  t.same(a.frames.map((f) => f.remoteIndex), [ra!.remoteIndex], 'the next attempt goes through R');
});

t.test('generations mixed across R: a v2 origin, a v1 (1.6.1) target; and the other way round', async (t) => {
  for (const versions of [
    { ar: 2, rb: 1 },
    { ar: 1, rb: 2 },
  ] as const) {
    const { a, r, b, pump } = trio(versions);
    a.rm.forHandshake(B, STAGE1);
    pump();
    t.ok(a.rm.routes().length === 1 && b.rm.routes().length === 1, `A-R v${versions.ar}, R-B v${versions.rb}: established`);
    const toB = r.controls.find((c) => c.to === B)!;
    const toA = r.controls.find((c) => c.to === A)!;
    const iRB = r.relays().find((x) => x.hostVpnIp === B)!.localIndex;
    const rA = r.relays().find((x) => x.hostVpnIp === A)!;
    const v1B = goControl(1, iRB, 0, B, A);
    const v2B = goControlV2(1, iRB, 0, B, A);
    t.equal(toB.hex, versions.rb === 1 ? v1B : v2B, 'R asks B in the version of the tunnel to B');
    const respA = [ControlType.CreateRelayResponse, rA.remoteIndex, rA.localIndex, B, A] as const;
    t.equal(toA.hex, versions.ar === 1 ? goControl(...respA) : goControlV2(...respA), 'R answers A in the version of the tunnel to A');
  }
});

t.test('a v1 request still reads on a v2 tunnel (Go reads either generation), and is answered for the tunnel', async (t) => {
  const b = node(B, { tunnels: [tunnel(R, undefined, 2)] });
  b.rx(R, request(0x42, A, B));
  const [relay] = b.relays();
  t.equal(relay?.remoteIndex, 0x42);
  t.equal(b.controls[0]!.hex, goControlV2(2, 0x42, relay!.localIndex, B, A));
  // The same bytes decode whatever wrote them.
  t.equal(encodeControl(b.controls[0]!.m).toString('hex'), b.controls[0]!.hex);
});

// Dual-stack hosts: A 10.1.0.2 + fd42::2, B 10.1.0.3 + fd42::3. Go 1.11's A, pinging fd42::3, asks R for a relay to
// the address it is handshaking with: RelayToAddr = fd42::3, RelayFromAddr = its first address (10.1.0.2).
const FD42_3 = addr6Hex(0xfd42000000000000n, 3n);

t.test('R: a v2 request naming the target by its IPv6 VPN address is relayed to that host, the address passed along', async (t) => {
  t.equal(FD42_3, '0d' + '08' + '80808080808080a1fd01' + '1003', 'the Addr builder, byte by byte');
  const r = node(R, { amRelay: true, tunnels: [tunnel(A, undefined, 2), tunnel(B, undefined, 2)] });
  r.book.tunnelUp(A, prefixes('10.1.0.2/16', 'fd42::2/64'));
  r.book.tunnelUp(B, prefixes('10.1.0.3/16', 'fd42::3/64'));
  r.rm.onControl(A, Buffer.from('0801' + '1042' + '32' + FD42_3 + '3a' + addrHex(A), 'hex'));
  const toB = r.relays().find((x) => x.hostVpnIp === B)!;
  t.same(
    r.controls.map((c) => [c.to, c.hex]),
    [[B, '0801' + '10' + varint(toB.localIndex) + '32' + FD42_3 + '3a' + addrHex(A)]],
    'R asks B (10.1.0.3) for the relay, naming B as A did (Go passes the target on as named)',
  );
  // B (Go) answers, echoing both ends; R answers A, still naming fd42::3.
  r.rm.onControl(B, Buffer.from('0802' + '10' + varint(toB.localIndex) + '1877' + '32' + FD42_3 + '3a' + addrHex(A), 'hex'));
  const toA = r.relays().find((x) => x.hostVpnIp === A)!;
  t.same(r.controls[1], { to: A, hex: '0802' + '1042' + '18' + varint(toA.localIndex) + '32' + FD42_3 + '3a' + addrHex(A), m: r.controls[1]!.m });
  t.same(
    r.rm.routes().map((x) => [x.fromVpnIp, x.targetVpnIp]).sort(),
    [
      [A, B],
      [B, A],
    ],
    'R forwards both ways between 10.1.0.2 and 10.1.0.3',
  );

  // An IPv6 address of no host R has a tunnel to: not relayed; R handshakes with that address (Go: f.Handshake(target)).
  const before = r.controls.length;
  r.rm.onControl(A, Buffer.from('0801' + '1043' + '32' + addr6Hex(0xfd42000000000000n, 0x99n) + '3a' + addrHex(A), 'hex'));
  t.same([r.controls.length, r.handshakes, r.handshakes6], [before, [], ['fd42:0:0:0:0:0:0:99']]);
  t.equal(r.logs.at(-1)?.msg, 'IPv6 VPN address in a relay message (10.1.0.2 -> fd42:0:0:0:0:0:0:99) names no host we know');
  // Not from its origin (the request names another sender): no handshake either.
  r.rm.onControl(B, Buffer.from('0801' + '1044' + '32' + addr6Hex(0xfd42000000000000n, 0x98n) + '3a' + addrHex(A), 'hex'));
  t.same(r.handshakes6, ['fd42:0:0:0:0:0:0:99'], 'a request relayed for someone else starts nothing');
});

t.test('B: a v2 request naming us by our IPv6 VPN address makes us the terminal end; the answer echoes it', async (t) => {
  const b = node(B, { tunnels: [tunnel(R, undefined, 2)], networks: ['10.1.0.3/16', 'fd42::3/64'] });
  b.rm.onControl(R, Buffer.from('0801' + '1042' + '32' + FD42_3 + '3a' + addrHex(A), 'hex'));
  const [relay] = b.relays();
  t.same(relay, { localIndex: relay!.localIndex, remoteIndex: 0x42, kind: 'terminal', state: 'established', hostVpnIp: R, peerVpnIp: A });
  t.same(b.controls.map((c) => [c.to, c.hex]), [[R, '0802' + '1042' + '18' + varint(relay!.localIndex) + '32' + FD42_3 + '3a' + addrHex(A)]]);
  t.same(b.published.at(-1), [{ localIndex: relay!.localIndex, fromVpnIp: R, kind: 'terminal', remoteIndex: 0x42 }]);
});
