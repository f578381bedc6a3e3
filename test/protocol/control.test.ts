/**
 * NebulaControl (src/shared/protocol/control.ts, nebula-spec §5.8) against the bytes Go 1.6.1 and 1.11 write: gogoproto's
 * MarshalToSizedBuffer for nebula.proto's NebulaControl emits fields 1..5 in ascending order as varints (tags 08, 10,
 * 18, 20, 28) and leaves out every zero field; 1.11 adds RelayToAddr=6 / RelayFromAddr=7 (tags 32, 3a), Addr
 * messages written whenever set. The expected bytes below are built by hand from those rules, varint by varint, not
 * by our writer.
 */
import t from 'tap';
import { ProtobufError } from '../../src/shared/protobuf';
import { ControlType, controlFor, decodeControl, encodeControl, relayEndpoints, type NebulaControl } from '../../src/shared/protocol/control';

// tap's t.throws(fn, Class) also compares `name`, which ProtobufError leaves as "Error"; check instanceof directly.
function throwsProtobufError(fn: () => unknown): boolean {
  try {
    fn();
  } catch (e) {
    return e instanceof ProtobufError;
  }
  return false;
}

const A = 0x0a010002; // 10.1.0.2, varint 82 80 84 50
const B = 0x0a010003; // 10.1.0.3, varint 83 80 84 50

t.test('CreateRelayRequest as A sends it to R: Type, InitiatorRelayIndex, RelayToIp, RelayFromIp; Responder 0 left out', async (t) => {
  const m: NebulaControl = { type: ControlType.CreateRelayRequest, initiatorRelayIndex: 0x12345678, responderRelayIndex: 0, relayToIp: B, relayFromIp: A };
  const expected = [
    '0801', // Type = 1
    '10' + 'f8acd19101', // InitiatorRelayIndex = 0x12345678
    '20' + '83808450', // RelayToIp = 10.1.0.3
    '28' + '82808450', // RelayFromIp = 10.1.0.2
  ].join('');
  t.equal(encodeControl(m).toString('hex'), expected);
  t.same(decodeControl(Buffer.from(expected, 'hex')), m);
});

t.test('CreateRelayResponse with the largest index and a two-byte varint', async (t) => {
  const m: NebulaControl = { type: ControlType.CreateRelayResponse, initiatorRelayIndex: 0xffffffff, responderRelayIndex: 0x80, relayToIp: B, relayFromIp: A };
  const expected = ['0802', '10' + 'ffffffff0f', '18' + '8001', '20' + '83808450', '28' + '82808450'].join('');
  t.equal(encodeControl(m).toString('hex'), expected);
  t.same(decodeControl(Buffer.from(expected, 'hex')), m);
});

t.test('zero fields are not written (proto3), down to an empty message', async (t) => {
  t.equal(encodeControl({ type: 0, initiatorRelayIndex: 0, responderRelayIndex: 0, relayToIp: 0, relayFromIp: 0 }).length, 0);
  t.equal(encodeControl({ type: ControlType.CreateRelayResponse, initiatorRelayIndex: 0, responderRelayIndex: 7, relayToIp: 0, relayFromIp: 0 }).toString('hex'), '08021807');
  t.same(decodeControl(Buffer.alloc(0)), { type: ControlType.None, initiatorRelayIndex: 0, responderRelayIndex: 0, relayToIp: 0, relayFromIp: 0 });
});

t.test('negative numbers (as an int32 might hold an index) are written as their uint32', async (t) => {
  const m = encodeControl({ type: 1, initiatorRelayIndex: -1, responderRelayIndex: 0, relayToIp: 0, relayFromIp: 0 });
  t.equal(m.toString('hex'), '0801' + '10ffffffff0f');
});

t.test('decoding accepts any field order and reads the v1.10+ Addr fields (6, 7) beside the old ones', async (t) => {
  // Addr{Hi=1 uint64, Lo=2 uint64} for ::ffff:10.1.0.3: Lo = 0x0000ffff0a010003 -> varint 83 80 84 d0 f0 ff 3f.
  const addr = '10' + '838084d0f0ff3f';
  const bytes = [
    '28' + '82808450', // RelayFromIp first
    '32' + (addr.length / 2).toString(16).padStart(2, '0') + addr, // RelayToAddr = 6 (length-delimited)
    '3a' + '00', // RelayFromAddr = 7, empty
    '0801',
    '10' + '05',
    '20' + '83808450',
  ].join('');
  t.same(decodeControl(Buffer.from(bytes, 'hex')), {
    type: 1,
    initiatorRelayIndex: 5,
    responderRelayIndex: 0,
    relayToIp: B,
    relayFromIp: A,
    relayToAddr: { hi: 0n, lo: 0xffff0a010003n },
    relayFromAddr: { hi: 0n, lo: 0n },
  });
});

t.test('a varint wider than 32 bits keeps its low 32 bits (as Go\'s uint32 decode does)', async (t) => {
  // 0x1_0000_0005 -> 85 80 80 80 10
  t.equal(decodeControl(Buffer.from('10' + '8580808010', 'hex')).initiatorRelayIndex, 5);
});

t.test('malformed input throws ProtobufError, never anything else', async (t) => {
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('08', 'hex'))), 'tag without a value');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('10ff', 'hex'))), 'truncated varint');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('1501020304', 'hex'))), 'InitiatorRelayIndex as fixed32 (Go: wrong wireType)');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('0a0101', 'hex'))), 'Type as bytes');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('3205', 'hex'))), 'length past the end');
});

// --- 1.10+ (v2 tunnels): RelayToAddr=6 / RelayFromAddr=7, Addr { Hi=1 uint64, Lo=2 uint64 } -----------------------
// ::ffff:10.1.0.3 is Addr { Lo = 0x0000ffff0a010003 } -> 10 83 80 84 d0 f0 ff 3f; ::ffff:10.1.0.2 -> 10 82 80 84 d0 f0 ff 3f.
const ADDR_B = '10' + '838084d0f0ff3f';
const ADDR_A = '10' + '828084d0f0ff3f';

t.test('controlFor: v1 writes the uint32 pair, v2 the Addr pair (Go 1.11 StartRelays), byte for byte', async (t) => {
  const c = { type: ControlType.CreateRelayRequest, initiatorRelayIndex: 0x12345678, responderRelayIndex: 0, fromVpnIp: A, toVpnIp: B };
  t.equal(encodeControl(controlFor(1, c)).toString('hex'), '0801' + '10f8acd19101' + '2083808450' + '2882808450');
  const v2 = ['0801', '10f8acd19101', '3208' + ADDR_B, '3a08' + ADDR_A].join('');
  t.equal(encodeControl(controlFor(2, c)).toString('hex'), v2, 'Type, InitiatorRelayIndex, RelayToAddr, RelayFromAddr; no old fields');
  const back = relayEndpoints(decodeControl(Buffer.from(v2, 'hex')));
  t.same(back, { ok: true, version: 2, control: c });
  const resp = { type: ControlType.CreateRelayResponse, initiatorRelayIndex: 1, responderRelayIndex: 0x80, fromVpnIp: A, toVpnIp: B };
  t.equal(encodeControl(controlFor(2, resp)).toString('hex'), ['0802', '1001', '188001', '3208' + ADDR_B, '3a08' + ADDR_A].join(''));
});

t.test('relayEndpoints reads as Go\'s HandleControlMsg: an old field set means v1; v2 needs both Addrs; an IPv6 address nobody maps refused', async (t) => {
  const read = (hex: string) => relayEndpoints(decodeControl(Buffer.from(hex, 'hex')));
  // Both generations present: the old fields win (v1), as Go checks them first.
  t.same(read('0801' + '1005' + '2083808450' + '2882808450' + '3208' + ADDR_A + '3a08' + ADDR_B), {
    ok: true,
    version: 1,
    control: { type: 1, initiatorRelayIndex: 5, responderRelayIndex: 0, fromVpnIp: A, toVpnIp: B },
  });
  // Only one old field: still v1, the other end 0.0.0.0 (Go makes both Addrs from the old pair).
  t.same(read('0801' + '2083808450'), { ok: true, version: 1, control: { type: 1, initiatorRelayIndex: 0, responderRelayIndex: 0, fromVpnIp: 0, toVpnIp: B } });
  t.same(read('0801' + '3208' + ADDR_B), { ok: false, reason: 'Control message received with nil RelayFromAddr' });
  t.same(read('0801' + '3a08' + ADDR_A), { ok: false, reason: 'Control message received with nil RelayToAddr' });
  t.same(read('0801'), { ok: false, reason: 'Control message received with nil RelayFromAddr' });
  const v6 = read('0801' + '3204' + '0801' + '1001' + '3a08' + ADDR_A);
  t.equal(v6.ok, false);
  t.equal(v6.ok ? '' : v6.reason, 'IPv6 VPN address in a relay message (10.1.0.2 -> 0:0:0:1:0:0:0:1) names no host we know');
});

// fd42::3 = Addr { Hi = 0xfd42000000000000, Lo = 3 }: 08 80 80 80 80 80 80 80 a1 fd 01 | 10 03 (13 bytes).
const ADDR_FD42_3 = '08' + '80808080808080a1fd01' + '1003';

t.test('relayEndpoints with a resolver: an IPv6 address it maps is that host, kept as named; controlFor writes it back', async (t) => {
  const FD42_3 = { hi: 0xfd42000000000000n, lo: 3n };
  const vpnIpOf = (a: { hi: bigint; lo: bigint }): number | undefined => (a.hi === FD42_3.hi && a.lo === FD42_3.lo ? B : a.hi === 0n && a.lo >> 32n === 0xffffn ? Number(a.lo & 0xffffffffn) : undefined);
  // Go 1.11's A asking for fd42::3: Type, InitiatorRelayIndex 5, RelayToAddr fd42::3, RelayFromAddr 10.1.0.2.
  const wire = '0801' + '1005' + '320d' + ADDR_FD42_3 + '3a08' + ADDR_A;
  const read = relayEndpoints(decodeControl(Buffer.from(wire, 'hex')), vpnIpOf);
  t.same(read, { ok: true, version: 2, control: { type: 1, initiatorRelayIndex: 5, responderRelayIndex: 0, fromVpnIp: A, toVpnIp: B, toAddr: FD42_3 } }, 'to = 10.1.0.3, named fd42::3; from by its own IPv4: no fromAddr');
  if (!read.ok) return;
  t.equal(encodeControl(controlFor(2, read.control)).toString('hex'), wire, 'written again, byte for byte as Go wrote it');
  t.equal(encodeControl(controlFor(1, read.control)).toString('hex'), '0801' + '1005' + '2083808450' + '2882808450', 'v1: the VPN IPs');
  t.same(relayEndpoints(decodeControl(Buffer.from(wire, 'hex'))), { ok: false, reason: 'IPv6 VPN address in a relay message (10.1.0.2 -> fd42:0:0:0:0:0:0:3) names no host we know' }, 'without one: refused');
});

t.test('hostile Addr fields throw ProtobufError', async (t) => {
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('3001', 'hex'))), 'RelayToAddr as a varint');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('3a03' + '10ffff', 'hex'))), 'truncated Lo');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('3a03' + '0a0101', 'hex'))), 'Hi as bytes');
  t.ok(throwsProtobufError(() => decodeControl(Buffer.from('3209' + ADDR_B, 'hex'))), 'Addr length past the end');
});
