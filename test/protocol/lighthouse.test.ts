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
  decodeMeta,
  emptyMetaDetails,
  encodeMeta,
  hiLoToIp6,
  ip6ToHiLo,
  MetaType,
  metaTypeName,
} from '../../src/shared/protocol/lighthouse';

t.test('spec §5.1 example: HostQuery for 10.1.2.3', async (t) => {
  const enc = encodeMeta({ type: MetaType.HostQuery, details: { ...emptyMetaDetails(), vpnIp: 0x0a010203 } });
  t.equal(enc.toString('hex'), '080112050883848450');
  const dec = decodeMeta(enc);
  t.equal(dec.type, MetaType.HostQuery);
  t.equal(dec.details?.vpnIp, 0x0a010203);
});

t.test('HostQueryReply round trip with v4, v6 and relays', async (t) => {
  const v6 = ip6ToHiLo(Buffer.from('20010db8000000000000000000000001', 'hex'));
  const details = {
    vpnIp: 0x0a010203,
    ip4AndPorts: [
      { ip: 0xc0a80101, port: 4242 },
      { ip: 0, port: 0 },
    ],
    counter: 0,
    ip6AndPorts: [{ ...v6, port: 4243 }],
    relayVpnIps: [0x0a010201, 0xffffffff],
  };
  const enc = encodeMeta({ type: MetaType.HostQueryReply, details });
  t.same(decodeMeta(enc), { type: MetaType.HostQueryReply, details });
  t.equal(hiLoToIp6(v6.hi, v6.lo).toString('hex'), '20010db8000000000000000000000001');
  // The zero Ip4AndPort is still written as an empty sub-message (12 00), as Go does.
  t.ok(enc.includes(Buffer.from('1200', 'hex')));
});

t.test('unknown types and fields are tolerated', async (t) => {
  const enc = encodeMeta({ type: 10, details: emptyMetaDetails() });
  t.same(decodeMeta(enc), { type: 10, details: emptyMetaDetails() });
  t.equal(metaTypeName(10), 'HostUpdateNotificationAck');
  t.equal(metaTypeName(77), 'unknown(77)');
  // v1.10 VpnAddr=6 { Hi, Lo } inside details (read: lighthouse-v2.test.ts), and an unknown outer field (3).
  const withNew = Buffer.from('0863' + '1206' + '3204' + '0801' + '1002' + '1801', 'hex');
  const dec = decodeMeta(withNew);
  t.equal(dec.type, 99);
  t.same(dec.details, { ...emptyMetaDetails(), vpnAddr: { hi: 1n, lo: 2n } });
  // Unknown fields inside details (8: varint, 9: bytes, 10: fixed32, 11: fixed64) are skipped.
  const unknownInner = Buffer.from('0801' + '1214' + '4001' + '4a020102' + '5504030201' + '590807060504030201', 'hex');
  t.same(decodeMeta(unknownInner), { type: 1, details: emptyMetaDetails() });
  t.same(decodeMeta(Buffer.from('0801', 'hex')), { type: 1, details: undefined });
  // RelayVpnIp sent unpacked is accepted too.
  t.same(decodeMeta(Buffer.from('1202' + '2805', 'hex')).details?.relayVpnIps, [5]);
});

t.test('malformed input throws ProtobufError', async (t) => {
  t.ok(throwsProtobufError(() => decodeMeta(Buffer.from('1205088384', 'hex'))));
  t.ok(throwsProtobufError(() => decodeMeta(Buffer.from('1202' + '1201', 'hex'))));
  t.ok(throwsProtobufError(() => decodeMeta(Buffer.from('1203' + '0a0101', 'hex'))), 'vpnIp as bytes');
});
