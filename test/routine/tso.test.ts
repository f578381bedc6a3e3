/**
 * Splitting tun super-packets (src/routine/tso.ts) and the sums it uses (checksum.ts): every segment is checked
 * field by field and its checksums verified with an independent RFC 1071 routine (fixtures/super-packets.ts), the
 * payloads concatenated must give back the original, and every malformed virtio header is refused with its reason.
 */
import t, { type Test } from 'tap';
import {
  REFUSED_GSO_SIZE,
  REFUSED_GSO_TYPE,
  REFUSED_IP_HEADER,
  REFUSED_OFFSETS,
  REFUSED_SHORT,
  REFUSED_TCP_HEADER,
  REFUSED_TOO_BIG,
  REFUSED_TOO_MANY_SEGMENTS,
  SuperPacketSplitter,
} from '../../src/routine/tso';
import { foldSum, onesSum, onesSumWide } from '../../src/shared/util/checksum';
import {
  GSO,
  TCP,
  ipv6Addr,
  kernelRead,
  pattern,
  pseudoHeader,
  rfc1071,
  tcp4,
  tcp6,
  udp4,
  udp6,
  vnetHeader,
} from './fixtures/super-packets';

const OUT_BYTES = 9001;
const SRC6 = ipv6Addr([0xfd00, 0, 0, 0, 0, 0, 0, 1]);
const DST6 = ipv6Addr([0xfd00, 0, 0, 0, 0, 0, 0, 2]);
/** MSS-style TCP options: NOP NOP timestamp (12 bytes) — the usual shape of a bulk-transfer segment. */
const TS_OPTIONS = Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);

interface Split {
  count: number;
  segments: Buffer[];
}

function split(read: Buffer, maxSegments = 64, outBytes = OUT_BYTES): Split {
  const s = new SuperPacketSplitter();
  const count = s.prepare(read, read.length, maxSegments, outBytes);
  const segments: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const out = Buffer.alloc(outBytes, 0xee);
    segments.push(Buffer.from(out.subarray(0, s.writeSegment(i, out))));
  }
  return { count, segments };
}

interface Layout {
  v6: boolean;
  l4: number;
  proto: 6 | 17;
}

function layoutOf(seg: Buffer): Layout {
  const v6 = seg[0]! >> 4 === 6;
  const l4 = v6 ? 40 : (seg[0]! & 0x0f) * 4;
  return { v6, l4, proto: (v6 ? seg[6] : seg[9]) as 6 | 17 };
}

/** The IP length field, IPv4 header checksum and the transport checksum of one segment, independently computed. */
function checkSums(t: Test, seg: Buffer, what: string): void {
  const { v6, l4, proto } = layoutOf(seg);
  if (v6) t.equal(seg.readUInt16BE(4), seg.length - 40, `${what}: IPv6 payload length`);
  else {
    t.equal(seg.readUInt16BE(2), seg.length, `${what}: IPv4 total length`);
    t.equal(rfc1071(seg.subarray(0, l4)), 0, `${what}: IPv4 header checksum verifies`);
  }
  const l4Bytes = seg.subarray(l4);
  if (proto === 17) {
    t.equal(l4Bytes.readUInt16BE(4), l4Bytes.length, `${what}: UDP length`);
    t.ok(l4Bytes.readUInt16BE(6) > 0, `${what}: UDP checksum present (0 would mean "none")`);
  }
  t.equal(rfc1071(pseudoHeader(seg, l4, proto, l4Bytes.length), l4Bytes), 0, `${what}: transport checksum verifies`);
}

function tcpHeaderLen(seg: Buffer, l4: number): number {
  return (seg[l4 + 12]! >> 4) * 4;
}

t.test('onesSum/foldSum agree with the plain RFC 1071 routine, odd lengths and offsets included', async (t) => {
  for (const len of [0, 1, 2, 3, 20, 1301, 9001, 65535]) {
    const b = pattern(len + 3, len);
    for (const start of [0, 1, 3]) {
      const end = start + len;
      t.equal(~foldSum(onesSum(b, start, end, 0)) & 0xffff, rfc1071(b.subarray(start, end)), `len ${len} from ${start}`);
    }
  }
  t.equal(foldSum(0x1fffe), 0xffff, 'end-around carry');
});

t.test('onesSumWide (4 bytes per step) agrees with RFC 1071 at every alignment of buffer, start and length', async (t) => {
  const backing = pattern(70_000, 9);
  let mismatches = 0;
  let cases = 0;
  for (const bufferOffset of [0, 1, 2, 3, 8]) {
    const buf = Buffer.from(backing.buffer, backing.byteOffset + bufferOffset, 66_000);
    const words = new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
    for (const start of [0, 1, 2, 3, 5, 62]) {
      for (const len of [0, 1, 2, 3, 4, 5, 7, 8, 9, 1247, 1248, 1249, 1250, 65535]) {
        cases++;
        if ((~foldSum(onesSumWide(buf, words, start, start + len, 0)) & 0xffff) !== rfc1071(buf.subarray(start, start + len))) mismatches++;
      }
    }
  }
  t.equal(mismatches, 0, `all ${cases} cases agree`);
  const four = Buffer.alloc(4);
  four.writeUInt32BE(0x12345678);
  t.equal(onesSumWide(four, new Uint32Array(four.buffer, 0, four.buffer.byteLength >>> 2), 0, 4, 7), 0x1234 + 0x5678 + 7, 'initial is added');
});

t.test('TCP/IPv4 with timestamp options: 5000 bytes at gso_size 1448 -> 4 segments', async (t) => {
  const payload = pattern(5000, 7);
  const seq = 0x10203040;
  const packet = tcp4({ src: '192.168.100.1', dst: '192.168.100.2', id: 0x1234 }, { srcPort: 40000, dstPort: 5201, seq, ack: 0xa0b0c0d0, flags: TCP.ACK | TCP.PSH | TCP.FIN, window: 502, options: TS_OPTIONS }, payload);
  const { count, segments } = split(kernelRead(packet, 20, 6, GSO.TCPV4, 1448));
  t.equal(count, 4, 'ceil(5000 / 1448) segments');
  t.same(segments.map((s) => s.length), [20 + 32 + 1448, 20 + 32 + 1448, 20 + 32 + 1448, 20 + 32 + 656], 'last segment carries the remainder');
  segments.forEach((seg, i) => {
    checkSums(t, seg, `segment ${i}`);
    t.equal(seg.readUInt16BE(4), 0x1234 + i, `segment ${i}: IPv4 id incremented`);
    t.equal(seg.readUInt32BE(20 + 4), seq + i * 1448, `segment ${i}: sequence number`);
    t.equal(seg.readUInt32BE(20 + 8), 0xa0b0c0d0, `segment ${i}: ack unchanged`);
    t.equal(tcpHeaderLen(seg, 20), 32, `segment ${i}: data offset kept`);
    t.ok(seg.subarray(40, 52).equals(TS_OPTIONS), `segment ${i}: options copied`);
    t.equal(seg.readUInt16BE(6), 0x4000, `segment ${i}: DF kept`);
    const last = i === count - 1;
    t.equal(seg[20 + 13], last ? TCP.ACK | TCP.PSH | TCP.FIN : TCP.ACK, `segment ${i}: FIN/PSH ${last ? 'on the last' : 'cleared'}`);
  });
  t.ok(Buffer.concat(segments.map((s) => s.subarray(52))).equals(payload), 'payloads concatenate to the original');
});

t.test('TCP/IPv6: payload not a multiple of gso_size; CWR only on the first segment', async (t) => {
  const payload = pattern(4001, 3);
  const packet = tcp6(SRC6, DST6, { srcPort: 443, dstPort: 50000, seq: 7, ack: 9, flags: TCP.ACK | TCP.CWR | TCP.PSH, window: 1000 }, payload);
  const { count, segments } = split(kernelRead(packet, 40, 6, GSO.TCPV6, 1220));
  t.equal(count, 4);
  t.same(segments.map((s) => s.length - 60), [1220, 1220, 1220, 341]);
  segments.forEach((seg, i) => {
    checkSums(t, seg, `segment ${i}`);
    t.equal(seg.readUInt32BE(40 + 4), 7 + i * 1220, `segment ${i}: sequence number`);
    const flags = seg[40 + 13]!;
    t.equal((flags & TCP.CWR) !== 0, i === 0, `segment ${i}: CWR only on the first`);
    t.equal((flags & TCP.PSH) !== 0, i === count - 1, `segment ${i}: PSH only on the last`);
    t.ok(seg.subarray(8, 40).equals(packet.subarray(8, 40)), `segment ${i}: addresses kept`);
  });
  t.ok(Buffer.concat(segments.map((s) => s.subarray(60))).equals(payload));
});

t.test('IPv4 options, an exact multiple of gso_size, sequence and id wrap-around', async (t) => {
  const ipOptions = Buffer.from([0x94, 0x04, 0, 0]); // router alert
  const payload = pattern(3 * 1000, 5);
  const packet = tcp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 0xffff, options: ipOptions }, { srcPort: 1, dstPort: 2, seq: 0xffffff00, ack: 0, flags: TCP.ACK, window: 1 }, payload);
  const { count, segments } = split(kernelRead(packet, 24, 6, GSO.TCPV4, 1000));
  t.equal(count, 3);
  t.same(segments.map((s) => s.length), [1044, 1044, 1044], 'every segment full');
  t.same(segments.map((s) => s.readUInt16BE(4)), [0xffff, 0, 1], 'id wraps at 16 bits');
  t.same(segments.map((s) => s.readUInt32BE(24 + 4)), [0xffffff00, (0xffffff00 + 1000) >>> 0, (0xffffff00 + 2000) >>> 0], 'seq wraps at 32 bits');
  segments.forEach((seg, i) => {
    checkSums(t, seg, `segment ${i}`);
    t.ok(seg.subarray(20, 24).equals(ipOptions), `segment ${i}: IP options copied`);
  });
});

t.test('a super-packet smaller than gso_size is one segment', async (t) => {
  const packet = tcp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 5 }, { srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: TCP.ACK | TCP.PSH, window: 1 }, pattern(100));
  const { count, segments } = split(kernelRead(packet, 20, 6, GSO.TCPV4, 1448));
  t.equal(count, 1);
  checkSums(t, segments[0]!, 'single segment');
  t.equal(segments[0]![33], TCP.ACK | TCP.PSH, 'PSH kept on the only (last) segment');
  t.ok(segments[0]!.subarray(40).equals(pattern(100)));
});

t.test('UDP (USO) over IPv4 and IPv6: UDP length and checksum per segment', async (t) => {
  const payload = pattern(3500, 11);
  for (const [name, packet, l4] of [
    ['IPv4', udp4({ src: '192.168.100.1', dst: '192.168.100.2', id: 77 }, 5000, 6000, payload), 20],
    ['IPv6', udp6(SRC6, DST6, 5000, 6000, payload), 40],
  ] as const) {
    const { count, segments } = split(kernelRead(packet, l4, 17, GSO.UDP_L4, 1200));
    t.equal(count, 3, `${name}: 3 segments`);
    t.same(segments.map((s) => s.length - l4 - 8), [1200, 1200, 1100], `${name}: sizes`);
    segments.forEach((seg, i) => {
      checkSums(t, seg, `${name} segment ${i}`);
      if (l4 === 20) t.equal(seg.readUInt16BE(4), 77 + i, `${name} segment ${i}: id`);
    });
    t.ok(Buffer.concat(segments.map((s) => s.subarray(l4 + 8))).equals(payload), `${name}: payload intact`);
  }
});

t.test('NEEDS_CSUM without GSO: the partial checksum is completed (TCP, UDP, IPv6); no flag: copied as is', async (t) => {
  const cases = [
    ['TCP/IPv4', tcp4({ src: '10.1.1.1', dst: '10.1.1.2', id: 3 }, { srcPort: 22, dstPort: 60000, seq: 5, ack: 6, flags: TCP.ACK, window: 9, options: TS_OPTIONS }, pattern(333)), 20, 6],
    ['UDP/IPv4 odd length', udp4({ src: '10.1.1.1', dst: '10.1.1.2', id: 4 }, 53, 53, pattern(101)), 20, 17],
    ['TCP/IPv6', tcp6(SRC6, DST6, { srcPort: 22, dstPort: 60000, seq: 5, ack: 6, flags: TCP.ACK, window: 9 }, pattern(1200)), 40, 6],
  ] as const;
  for (const [name, packet, l4, proto] of cases) {
    const read = kernelRead(packet, l4, proto, GSO.NONE, 0);
    const { count, segments } = split(read);
    t.equal(count, 1, `${name}: one packet`);
    checkSums(t, segments[0]!, name);
    const expected = Buffer.from(packet);
    expected.writeUInt16BE(0, l4 + (proto === 6 ? 16 : 6));
    expected.writeUInt16BE(rfc1071(pseudoHeader(packet, l4, proto, packet.length - l4), expected.subarray(l4)) || 0xffff, l4 + (proto === 6 ? 16 : 6));
    t.ok(segments[0]!.equals(expected), `${name}: only the checksum field changed`);
  }
  const plain = udp4({ src: '10.1.1.1', dst: '10.1.1.2', id: 4 }, 53, 53, pattern(64));
  plain.writeUInt16BE(0xbeef, 26); // whatever the checksum: without NEEDS_CSUM it is not ours to touch
  const { count, segments } = split(Buffer.concat([Buffer.alloc(10), plain]));
  t.equal(count, 1);
  t.ok(segments[0]!.equals(plain), 'all-zero header: the packet, byte for byte');
});

t.test('a UDP checksum that computes to 0 goes out as 0xffff (partial and USO); TCP keeps 0', async (t) => {
  /** A packet whose transport checksum comes out 0: its last payload word makes the sum 0xffff. */
  const zeroSum = (packet: Buffer, l4: number, proto: 6 | 17): Buffer => {
    const p = Buffer.from(packet);
    p.writeUInt16BE(0, p.length - 2);
    p.writeUInt16BE(0, l4 + (proto === 6 ? 16 : 6));
    const folded = ~rfc1071(pseudoHeader(p, l4, proto, p.length - l4), p.subarray(l4)) & 0xffff;
    p.writeUInt16BE(0xffff - folded, p.length - 2);
    t.equal(rfc1071(pseudoHeader(p, l4, proto, p.length - l4), p.subarray(l4)), 0, 'crafted: computes to 0');
    return p;
  };
  const udp = zeroSum(udp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 1 }, 1000, 2000, pattern(200, 4)), 20, 17);
  const partial = split(kernelRead(udp, 20, 17, GSO.NONE, 0)).segments[0]!;
  t.equal(partial.readUInt16BE(26), 0xffff, 'NEEDS_CSUM: 0xffff, not 0 ("no checksum")');
  const uso = split(kernelRead(udp, 20, 17, GSO.UDP_L4, 1000)).segments[0]!;
  t.equal(uso.readUInt16BE(26), 0xffff, 'USO segment: 0xffff');
  const tcp = zeroSum(tcp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 1 }, { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: TCP.ACK, window: 5 }, pattern(200, 4)), 20, 6);
  t.equal(split(kernelRead(tcp, 20, 6, GSO.TCPV4, 1000)).segments[0]!.readUInt16BE(36), 0, 'TCP segment: 0 stays 0');
});

t.test('segments can be built in any order and again (a batch may stop half-way)', async (t) => {
  const packet = tcp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 9 }, { srcPort: 1, dstPort: 2, seq: 100, ack: 0, flags: TCP.ACK | TCP.FIN, window: 1 }, pattern(6000));
  const read = kernelRead(packet, 20, 6, GSO.TCPV4, 1400);
  const before = Buffer.from(read);
  const inOrder = split(read).segments;
  const s = new SuperPacketSplitter();
  t.equal(s.prepare(read, read.length, 64, OUT_BYTES), 5);
  t.ok(s.isSuperPacket);
  const out = Buffer.alloc(OUT_BYTES);
  for (const i of [4, 0, 2, 2, 1, 3]) t.ok(out.subarray(0, s.writeSegment(i, out)).equals(inOrder[i]!), `segment ${i} rebuilt identically`);
  t.ok(read.equals(before), 'the read buffer is never modified');
  t.throws(() => s.writeSegment(5, out), RangeError, 'no segment past the count');
});

t.test('malformed virtio headers are refused with their reason', async (t) => {
  const packet = tcp4({ src: '10.0.0.1', dst: '10.0.0.2', id: 1 }, { srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: TCP.ACK, window: 1 }, pattern(4000));
  const good = kernelRead(packet, 20, 6, GSO.TCPV4, 1000);
  const withHeader = (patch: Partial<Parameters<typeof vnetHeader>[0]>, body = good.subarray(10)): Buffer =>
    Buffer.concat([vnetHeader({ flags: 1, gsoType: GSO.TCPV4, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16, ...patch }), body]);
  const refused = (read: Buffer, maxSegments = 64, outBytes = OUT_BYTES): number => new SuperPacketSplitter().prepare(read, read.length, maxSegments, outBytes);

  t.equal(refused(good), 4, 'the unpatched read is fine');
  t.equal(refused(good.subarray(0, 10)), REFUSED_SHORT, 'a header and nothing else');
  t.equal(refused(good.subarray(0, 4)), REFUSED_SHORT, 'shorter than the header');
  t.equal(refused(withHeader({ hdrLen: good.length })), REFUSED_OFFSETS, 'hdr_len beyond the packet');
  t.equal(refused(withHeader({ csumStart: 5000 })), REFUSED_OFFSETS, 'csum_start beyond the packet');
  t.equal(refused(withHeader({ csumStart: 24 })), REFUSED_OFFSETS, 'csum_start not at the end of the IPv4 header');
  t.equal(refused(withHeader({ csumOffset: 6 })), REFUSED_OFFSETS, 'csum_offset not the TCP checksum');
  t.equal(refused(withHeader({ flags: 0 })), REFUSED_OFFSETS, 'GSO without NEEDS_CSUM');
  t.equal(refused(withHeader({ gsoSize: 0 })), REFUSED_GSO_SIZE, 'gso_size 0');
  t.equal(refused(withHeader({}, good.subarray(10, 50))), REFUSED_GSO_SIZE, 'headers only, nothing to segment');
  t.equal(refused(withHeader({ gsoType: GSO.UDP })), REFUSED_GSO_TYPE, 'UFO (never offered)');
  t.equal(refused(withHeader({ gsoType: GSO.TCPV4 | GSO.ECN })), REFUSED_GSO_TYPE, 'TCP with ECN (never offered)');
  t.equal(refused(withHeader({ gsoType: 9 })), REFUSED_GSO_TYPE, 'unknown gso_type');
  t.equal(refused(withHeader({ gsoType: GSO.TCPV6 })), REFUSED_IP_HEADER, 'TCPV6 on an IPv4 packet');
  const badOffset = Buffer.from(good);
  badOffset[10 + 20 + 12] = 0x40; // data offset 4 words
  t.equal(refused(badOffset), REFUSED_TCP_HEADER, 'TCP data offset below 5');
  const longTcp = Buffer.from(good.subarray(0, 10 + 20 + 30));
  longTcp[10 + 20 + 12] = 0xf0; // 60-byte header in a 30-byte transport part
  t.equal(refused(longTcp), REFUSED_OFFSETS, 'TCP header longer than what is there');
  t.equal(refused(withHeader({ gsoSize: 10 })), REFUSED_TOO_MANY_SEGMENTS, '400 segments');
  t.equal(refused(good, 3), REFUSED_TOO_MANY_SEGMENTS, 'more segments than the caller can take');
  t.equal(refused(good, 64, 1000), REFUSED_TOO_BIG, 'a segment larger than the output buffers');
  t.equal(refused(Buffer.concat([Buffer.alloc(10), pattern(2000)]), 64, 1500), REFUSED_TOO_BIG, 'a plain packet larger than the output buffers');
  const partial = vnetHeader({ flags: 1, gsoType: GSO.NONE, hdrLen: 0, gsoSize: 0, csumStart: 90, csumOffset: 16 });
  t.equal(refused(Buffer.concat([partial, pattern(100)])), REFUSED_OFFSETS, 'NEEDS_CSUM pointing past the packet');
  const short6 = Buffer.concat([vnetHeader({ flags: 1, gsoType: GSO.TCPV6, hdrLen: 60, gsoSize: 100, csumStart: 40, csumOffset: 16 }), Buffer.from([0x60]), Buffer.alloc(30)]);
  t.equal(refused(short6), REFUSED_IP_HEADER, 'IPv6 header cut short');
});
