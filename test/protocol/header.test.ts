import t from 'tap';
import {
  decodeHeader,
  encodeHeader,
  Header,
  HEADER_LEN,
  isKnownTypePair,
  MessageSubType,
  MessageType,
  subTypeName,
  typeName,
  TYPE_CLOSE_TUNNEL,
  TYPE_CONTROL,
  TYPE_HANDSHAKE,
  TYPE_LIGHTHOUSE,
  TYPE_MESSAGE,
  TYPE_RECV_ERROR,
  TYPE_TEST,
  SUBTYPE_TEST_REPLY,
  SUBTYPE_MESSAGE_RELAY,
  writeHeader,
} from '../../src/shared/protocol/header';

const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex');

t.test('spec §1 example headers', async (t) => {
  const cases: [string, number, number, number, number | bigint][] = [
    ['11 00 0000 11223344 0000000000000003', TYPE_MESSAGE, 0, 0x11223344, 3],
    ['10 00 0000 00000000 0000000000000001', TYPE_HANDSHAKE, 0, 0, 1],
    ['10 00 0000 cafe0001 0000000000000002', TYPE_HANDSHAKE, 0, 0xcafe0001, 2],
    ['12 00 0000 abcdef01 0000000000000000', TYPE_RECV_ERROR, 0, 0xabcdef01, 0],
    ['13 00 0000 00000001 0000000000000004', TYPE_LIGHTHOUSE, 0, 1, 4],
    ['14 01 0000 00000001 0000000000000004', TYPE_TEST, SUBTYPE_TEST_REPLY, 1, 4],
    ['15 00 0000 00000001 0000000000000004', TYPE_CLOSE_TUNNEL, 0, 1, 4],
    ['16 00 0000 00000001 0000000000000004', TYPE_CONTROL, 0, 1, 4],
    ['11 01 0000 ffffffff ffffffffffffffff', TYPE_MESSAGE, SUBTYPE_MESSAGE_RELAY, 0xffffffff, 0xffffffffffffffffn],
  ];
  const h = new Header();
  for (const [bytes, type, subtype, idx, counter] of cases) {
    const buf = Buffer.alloc(HEADER_LEN + 3, 0xaa);
    encodeHeader(buf, 3, type, subtype, idx, counter);
    t.equal(buf.subarray(3).toString('hex'), hex(bytes).toString('hex'), `encode ${bytes}`);
    t.equal(buf[0], 0xaa, 'bytes before the offset untouched');

    t.ok(decodeHeader(buf, 3, HEADER_LEN, h));
    t.equal(h.version, 1);
    t.equal(h.type, type);
    t.equal(h.subtype, subtype);
    t.equal(h.reserved, 0);
    t.equal(h.remoteIndex, idx);
    t.equal(h.counterBig, BigInt(counter));

    const again = Buffer.alloc(HEADER_LEN);
    h.encode(again);
    t.same(again, hex(bytes), 'decode → encode round trip');
  }
});

t.test('counter as number, bigint and uint32 halves', async (t) => {
  const a = Buffer.alloc(16);
  const b = Buffer.alloc(16);
  const c = Buffer.alloc(16);
  encodeHeader(a, 0, TYPE_MESSAGE, 0, 7, 0x1_0000_0005);
  encodeHeader(b, 0, TYPE_MESSAGE, 0, 7, 0x1_0000_0005n);
  writeHeader(c, 0, TYPE_MESSAGE, 0, 7, 1, 5);
  t.same(a, b);
  t.same(a, c);
  const h = new Header();
  decodeHeader(a, 0, 16, h);
  t.equal(h.counterHi, 1);
  t.equal(h.counterLo, 5);
  t.equal(h.counter, 0x1_0000_0005);
  h.setCounter(2n ** 63n + 1n);
  t.equal(h.counterBig, 2n ** 63n + 1n);
  h.setCounter(12);
  t.equal(h.counterHi, 0);
  t.equal(h.counterLo, 12);
});

t.test('decode does not validate version/reserved (1.6.1) and rejects short input', async (t) => {
  const h = new Header();
  const odd = hex('27 09 beef 00000001 0000000000000001');
  t.ok(decodeHeader(odd, 0, 16, h));
  t.equal(h.version, 2);
  t.equal(h.type, 7);
  t.equal(h.subtype, 9);
  t.equal(h.reserved, 0xbeef);
  t.notOk(isKnownTypePair(h.type, h.subtype));
  t.match(h.toString(), /type=unknown/);

  t.notOk(decodeHeader(Buffer.alloc(15), 0, 15, h), 'shorter than 16 bytes');
  t.notOk(decodeHeader(Buffer.alloc(20), 5, 20, h), 'offset leaves fewer than 16 bytes');
  t.notOk(decodeHeader(Buffer.alloc(40), 0, 10, h), 'packet length below 16');
  t.throws(() => encodeHeader(Buffer.alloc(15), 0, 1, 0, 0, 0), RangeError);
});

t.test('names used in logs and metrics', async (t) => {
  t.same(
    [0, 1, 2, 3, 4, 5, 6, 7].map(typeName),
    ['handshake', 'message', 'recvError', 'lightHouse', 'test', 'closeTunnel', 'control', 'unknown'],
  );
  t.equal(subTypeName(MessageType.Handshake, MessageSubType.HandshakeIXPSK0), 'ix_psk0');
  t.equal(subTypeName(MessageType.Handshake, MessageSubType.HandshakeXXPSK0), 'unknown');
  t.equal(subTypeName(MessageType.Message, MessageSubType.None), 'none');
  t.equal(subTypeName(MessageType.Message, MessageSubType.MessageRelay), 'relay');
  t.equal(subTypeName(MessageType.Test, MessageSubType.TestRequest), 'testRequest');
  t.equal(subTypeName(MessageType.Test, MessageSubType.TestReply), 'testReply');
  for (const ty of [MessageType.RecvError, MessageType.LightHouse, MessageType.CloseTunnel, MessageType.Control]) {
    t.equal(subTypeName(ty, 0), 'none');
    t.equal(subTypeName(ty, 1), 'unknown');
  }
  t.ok(isKnownTypePair(1, 1));
  t.notOk(isKnownTypePair(2, 1));
});
