import t from 'tap';

// tap's t.throws(fn, Class) also compares `name`, which ProtobufError leaves as "Error"; check instanceof directly.
function throwsProtobufError(fn: () => unknown): boolean {
  try {
    fn();
  } catch (e) {
    return e instanceof ProtobufError;
  }
  return false;
}
import { ProtobufError } from '../../src/shared/protobuf';
import {
  decodeHandshake,
  encodeHandshake,
  type NebulaHandshakeDetails,
} from '../../src/shared/protocol/handshake-payload';

const details: NebulaHandshakeDetails = {
  cert: Buffer.from('0a0568656c6c6f', 'hex'),
  initiatorIndex: 0xdeadbeef,
  responderIndex: 0x01020304,
  cookie: 0n,
  time: 1_700_000_000_123_456_789n,
};

t.test('round trip and exact Go encoding', async (t) => {
  const enc = encodeHandshake({ details });
  // Details=1 { Cert=1, InitiatorIndex=2, ResponderIndex=3, Time=5 } with Cookie and Hmac omitted.
  const inner = Buffer.concat([
    Buffer.from('0a07', 'hex'),
    details.cert,
    Buffer.from('10effdb6f50d', 'hex'),
    Buffer.from('1884868808', 'hex'),
    Buffer.from('28959a97ece39fe7cb17', 'hex'),
  ]);
  t.equal(enc.toString('hex'), Buffer.concat([Buffer.from([0x0a, inner.length]), inner]).toString('hex'));
  const dec = decodeHandshake(enc);
  t.same(dec.details, details);
  t.equal(dec.hmac.length, 0);
});

t.test('stage-1 payload: only initiator index and time; hmac and cookie carried when set', async (t) => {
  const stage1 = { cert: Buffer.alloc(0), initiatorIndex: 42, responderIndex: 0, cookie: 0n, time: 1n };
  t.same(decodeHandshake(encodeHandshake({ details: stage1 })).details, stage1);
  const full = { ...details, cookie: 2n ** 64n - 1n };
  const dec = decodeHandshake(encodeHandshake({ details: full, hmac: Buffer.from([1, 2, 3]) }));
  t.same(dec.details, full);
  t.same(dec.hmac, Buffer.from([1, 2, 3]));
  t.equal(decodeHandshake(Buffer.alloc(0)).details, undefined, 'missing details are reported as undefined');
  t.same(encodeHandshake({ details: stage1 }).subarray(0, 2), Buffer.from([0x0a, 0x04]));
});

t.test('unknown fields (reserved 6/7, outer 9) are ignored; CertVersion=8 is read', async (t) => {
  const inner = Buffer.concat([
    Buffer.from('10', 'hex'),
    Buffer.from([42]),
    Buffer.from('3201ff', 'hex'), // field 6, bytes
    Buffer.from('4001', 'hex'), // field 8 = 1 (CertVersion)
  ]);
  const msg = Buffer.concat([Buffer.from([0x0a, inner.length]), inner, Buffer.from('4807', 'hex')]);
  const dec = decodeHandshake(msg);
  t.equal(dec.details?.initiatorIndex, 42);
  t.equal(dec.details?.cert.length, 0);
  t.equal(dec.details?.certVersion, 1, 'CertVersion');
});

t.test('CertVersion (field 8, nebula 1.10+): written when set, as Go 1.11 writes it; 0 means absent', async (t) => {
  const v2 = { ...details, certVersion: 2 };
  const enc = encodeHandshake({ details: v2 });
  // Go's MarshalPayload: ... Time=5, then CertVersion=8 (tag 0x40) last.
  t.equal(enc.subarray(enc.length - 2).toString('hex'), '4002', 'field 8 = 2 at the end of the details');
  t.same(decodeHandshake(enc).details, v2, 'round trip');
  t.notOk('certVersion' in decodeHandshake(encodeHandshake({ details })).details!, 'absent when not set (a 1.6-era peer)');
  t.same(encodeHandshake({ details: { ...details, certVersion: 0 } }), encodeHandshake({ details }), '0 is not written');
  const withZero = Buffer.concat([Buffer.from([0x0a, 2]), Buffer.from('4000', 'hex')]);
  t.notOk('certVersion' in decodeHandshake(withZero).details!, 'an explicit 0 reads as absent');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a06408080808010', 'hex'))), 'a value over uint32 is refused, as Go does');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a03420102', 'hex'))), 'CertVersion as bytes is refused');
});

t.test('malformed input is rejected with ProtobufError', async (t) => {
  const good = encodeHandshake({ details });
  t.ok(throwsProtobufError(() => decodeHandshake(good.subarray(0, good.length - 1))), 'truncated');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a0210', 'hex'))), 'truncated inner varint');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a020a05', 'hex'))), 'inner length past the end');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a021205', 'hex'))), 'InitiatorIndex as bytes');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0801', 'hex'))), 'Details as varint');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a0208', 'hex'))), 'Cert as varint (truncated)');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0a020801', 'hex'))), 'Cert as varint');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('0f', 'hex'))), 'wire type 7');
  t.ok(throwsProtobufError(() => decodeHandshake(Buffer.from('ffffffffffffffffffff01', 'hex'))), 'overlong varint');
});
