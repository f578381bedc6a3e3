/**
 * GRO-style coalescing of tun writes (src/routine/tcp-coalesce.ts): what merges and what must not, the virtio-net
 * header and partial checksum of a merged write (checked with the independent RFC 1071 routine), and a round trip:
 * splitting the merged write again (tso.ts, which reads exactly what the kernel would) gives back the segments.
 */
import t from 'tap';
import { PacketBatch } from '../../src/routine/edges';
import { TcpCoalescer } from '../../src/routine/tcp-coalesce';
import { SuperPacketSplitter } from '../../src/routine/tso';
import { GSO, TCP, ipv6Addr, kernelRead, pattern, pseudoHeader, rfc1071, tcp4, tcp6, udp4 } from './fixtures/super-packets';

const TS_OPTIONS = Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);
const SRC6 = ipv6Addr([0xfd00, 0, 0, 0, 0, 0, 0, 1]);
const DST6 = ipv6Addr([0xfd00, 0, 0, 0, 0, 0, 0, 2]);

/** The segments a sender's TSO makes of `payloadLen` bytes: split with tso.ts, so ids, seqs and checksums are right. */
function segmentsOf(read: Buffer): Buffer[] {
  const s = new SuperPacketSplitter();
  const n = s.prepare(read, read.length, 64, 9001);
  if (n < 0) throw new Error(`fixture refused: ${n}`);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(9001);
    out.push(Buffer.from(b.subarray(0, s.writeSegment(i, b))));
  }
  return out;
}

function flow4(seq: number, payloadLen: number, opts: { id?: number; flags?: number; srcPort?: number; ttl?: number } = {}, gsoSize = 1000): Buffer[] {
  const packet = tcp4({ src: '192.168.100.1', dst: '192.168.100.2', id: opts.id ?? 100, ttl: opts.ttl }, { srcPort: opts.srcPort ?? 40000, dstPort: 5201, seq, ack: 777, flags: opts.flags ?? TCP.ACK | TCP.PSH, window: 500, options: TS_OPTIONS }, pattern(payloadLen, seq));
  return segmentsOf(kernelRead(packet, 20, 6, GSO.TCPV4, gsoSize));
}

function batchOf(packets: Buffer[]): PacketBatch {
  const b = new PacketBatch(64, 9001);
  packets.forEach((p, i) => {
    p.copy(b.bufs[i]!);
    b.lens[i] = p.length;
  });
  return b;
}

/** Runs the coalescer over a whole batch: the writes it makes and how many packets each holds. */
function writes(packets: Buffer[]): Array<{ packets: number; bytes: Buffer }> {
  const out = Buffer.alloc(10 + 65535);
  const c = new TcpCoalescer(out);
  const batch = batchOf(packets);
  const result: Array<{ packets: number; bytes: Buffer }> = [];
  for (let i = 0; i < packets.length; ) {
    const n = c.build(batch, i, packets.length);
    result.push({ packets: n, bytes: Buffer.from(out.subarray(0, c.outLen)) });
    i += n;
  }
  return result;
}

t.test('in-order segments of one flow become one super-packet write; splitting it again gives them back', async (t) => {
  const segs = flow4(5000, 4500); // 1000 x4 + 500, PSH on the last
  const w = writes(segs);
  t.equal(w.length, 1, 'one write');
  t.equal(w[0]!.packets, 5, 'holding all 5 segments');
  const bytes = w[0]!.bytes;
  t.same(
    { flags: bytes[0], gsoType: bytes[1], hdrLen: bytes.readUInt16LE(2), gsoSize: bytes.readUInt16LE(4), csumStart: bytes.readUInt16LE(6), csumOffset: bytes.readUInt16LE(8) },
    { flags: 1, gsoType: GSO.TCPV4, hdrLen: 52, gsoSize: 1000, csumStart: 20, csumOffset: 16 },
    'virtio-net header: NEEDS_CSUM, TCPV4, headers, segment size, checksum location',
  );
  const ip = bytes.subarray(10);
  t.equal(ip.readUInt16BE(2), ip.length, 'IPv4 total length of the merged packet');
  t.equal(rfc1071(ip.subarray(0, 20)), 0, 'IPv4 header checksum verifies');
  t.equal(ip[33]! & TCP.PSH, TCP.PSH, 'PSH of the last segment kept');
  const partial = ~rfc1071(pseudoHeader(ip, 20, 6, ip.length - 20)) & 0xffff;
  t.equal(ip.readUInt16BE(36), partial, 'TCP checksum field: the pseudo-header sum, for the kernel to finish');
  t.ok(ip.subarray(52).equals(Buffer.concat(segs.map((s) => s.subarray(52)))), 'payloads in order');
  const again = segmentsOf(bytes);
  t.equal(again.length, 5);
  again.forEach((s, i) => t.ok(s.equals(segs[i]!), `segment ${i} splits back byte-identical`));
});

t.test('IPv6 segments merge too', async (t) => {
  const packet = tcp6(SRC6, DST6, { srcPort: 1, dstPort: 2, seq: 10, ack: 20, flags: TCP.ACK, window: 9 }, pattern(3000, 2));
  const segs = segmentsOf(kernelRead(packet, 40, 6, GSO.TCPV6, 1200));
  const w = writes(segs);
  t.same(w.map((x) => x.packets), [3]);
  t.equal(w[0]!.bytes[1], GSO.TCPV6);
  t.equal(w[0]!.bytes.subarray(10).readUInt16BE(4), w[0]!.bytes.length - 10 - 40, 'IPv6 payload length');
  segmentsOf(w[0]!.bytes).forEach((s, i) => t.ok(s.equals(segs[i]!), `segment ${i} back`));
});

t.test('what must not merge: other flows, gaps, a short segment before the end, flags, TTL, options, non-TCP', async (t) => {
  const a = flow4(1000, 3000);
  const b = flow4(9000, 2000, { srcPort: 40001 });
  t.same(writes([a[0]!, a[1]!, b[0]!, b[1]!, a[2]!]).map((w) => w.packets), [2, 2, 1], 'a flow change ends the group; segments of the other flow merge among themselves');
  t.same(writes([a[0]!, a[2]!]).map((w) => w.packets), [1, 1], 'a sequence gap');
  const short = flow4(1000, 1500, { flags: TCP.ACK }); // 1000 + 500 without PSH
  const next = flow4(2500, 1000, { flags: TCP.ACK });
  t.same(writes([...short, ...next]).map((w) => w.packets), [2, 1], 'a short segment is the last of its group');
  // The sender's segmentation leaves FIN on the last segment only: that one is written alone.
  t.same(writes([...flow4(1000, 3000, { flags: TCP.ACK | TCP.FIN })]).map((w) => w.packets), [2, 1], 'a FIN segment never merges');
  t.same(writes([...flow4(1000, 2000, { flags: TCP.ACK | TCP.URG })]).map((w) => w.packets), [1, 1], 'URG never merges');
  const psh = flow4(1000, 1000, { flags: TCP.ACK | TCP.PSH });
  t.same(writes([psh[0]!, ...flow4(2000, 1000)]).map((w) => w.packets), [1, 1], 'nothing is appended after PSH');
  const ttl = flow4(2000, 1000, { ttl: 3 });
  t.same(writes([a[0]!, ttl[0]!]).map((w) => w.packets), [1, 1], 'a different TTL');
  const otherTs = Buffer.from(a[1]!);
  otherTs[47] ^= 1; // TSval
  otherTs.writeUInt16BE(0, 36);
  otherTs.writeUInt16BE(rfc1071(pseudoHeader(otherTs, 20, 6, otherTs.length - 20), otherTs.subarray(20)), 36);
  t.same(writes([a[0]!, otherTs]).map((w) => w.packets), [1, 1], 'different TCP options (timestamp)');
  const u = udp4({ src: '192.168.100.1', dst: '192.168.100.2', id: 1 }, 1, 2, pattern(1000));
  t.same(writes([u, u]).map((w) => w.packets), [1, 1], 'UDP is written as is');
  t.ok(writes([u])[0]!.bytes.equals(Buffer.concat([Buffer.alloc(10), u])), 'a lone packet: all-zero header and the packet');
});

t.test('a segment whose checksum fails is never merged, and goes out untouched for the kernel to drop', async (t) => {
  const segs = flow4(1000, 4000);
  const bad = Buffer.from(segs[2]!);
  bad[100] ^= 0xff; // payload corrupted after the checksum was computed
  const w = writes([segs[0]!, segs[1]!, bad, segs[3]!]);
  t.same(w.map((x) => x.packets), [2, 1, 1], 'the group stops before it');
  t.ok(w[1]!.bytes.equals(Buffer.concat([Buffer.alloc(10), bad])), 'the bad segment as it came, behind a zero header');
  const badFirst = Buffer.from(segs[0]!);
  badFirst[60] ^= 0x01;
  t.same(writes([badFirst, segs[1]!]).map((x) => x.packets), [1, 1], 'a bad first segment starts no group');
  const badIp = Buffer.from(segs[1]!);
  badIp[8] = 63; // TTL changed, header checksum now wrong (and TTL differs)
  t.same(writes([segs[0]!, badIp]).map((x) => x.packets), [1, 1], 'a bad IPv4 header checksum');
});

t.test('a merged packet stays within 64 KB', async (t) => {
  const segs = [...flow4(1, 32 * 1400, { flags: TCP.ACK }, 1400), ...flow4(1 + 32 * 1400, 32 * 1400, { flags: TCP.ACK }, 1400)];
  t.equal(segs.length, 64);
  const w = writes(segs);
  // (65535 - 52 header bytes) / 1400 = 46 segments fit in one IPv4 packet.
  t.same(w.map((x) => x.packets), [46, 18]);
  t.ok(w.every((x) => x.bytes.length - 10 <= 65535), 'every write a valid IPv4 length');
});
