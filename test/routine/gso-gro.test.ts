/**
 * The logic of the underlay's UDP offloads without a kernel: splitting a GRO buffer back into its datagrams
 * (gro-split.ts), reading and writing the control messages (udp-offload.ts), and grouping a send batch into GSO
 * messages (gso-plan.ts).
 */
import t from 'tap';
import { DatagramBatch } from '../../src/routine/edges';
import { GroSplitter, type CoalescedSlots } from '../../src/routine/gro-split';
import { GsoPlan, sameEndpoint } from '../../src/routine/gso-plan';
import { fillSockaddrIn, sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';
import { GSO_MAX_BYTES, GSO_MAX_SEGMENTS, IPPROTO_UDP, SEGMENT_CMSG_SPACE, UDP_GRO, UDP_SEGMENT, groSegmentSize, writeSegmentCmsg } from '../../src/shared/native/udp-offload';

const PEER_A = 0x0a000001;
const PEER_B = 0x0a000002;

/** Datagram k of a test stream: `len` bytes, each a function of (k, offset), so a shifted or swapped byte shows. */
function datagram(k: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (k * 13 + i * 7 + (i >> 8)) & 0xff;
  return b;
}

function sockaddr(ip: number, port: number): Buffer {
  const sa = Buffer.alloc(16);
  fillSockaddrIn(sa, ip, port);
  return sa;
}

/** Slots as a GRO receive fills them: each the concatenation of its datagrams, with a segment size or 0. */
class FakeSlots implements CoalescedSlots {
  private readonly data: Buffer[] = [];
  private readonly sizes: number[] = [];
  private readonly senders: Buffer[] = [];

  add(datagrams: Buffer[], segmentSize: number, from: Buffer): this {
    this.data.push(Buffer.concat(datagrams));
    this.sizes.push(segmentSize);
    this.senders.push(from);
    return this;
  }
  get count(): number {
    return this.data.length;
  }
  length(i: number): number {
    return this.data[i]!.length;
  }
  segmentSize(i: number): number {
    return this.sizes[i]!;
  }
  copyOut(i: number, offset: number, dst: Buffer, n: number): void {
    if (offset + n > this.data[i]!.length || n > dst.length) throw new RangeError('copyOut past the slot or the entry');
    this.data[i]!.copy(dst, 0, offset, offset + n);
  }
  addr(i: number): Buffer {
    return this.senders[i]!;
  }
}

/** Drains the splitter through batches of `capacity` entries; returns every datagram with its sender. */
function drainAll(splitter: GroSplitter, capacity: number, entryBytes = 9001): Array<{ data: Buffer; ip: number; port: number }> {
  const batch = new DatagramBatch(capacity, entryBytes);
  const out: Array<{ data: Buffer; ip: number; port: number }> = [];
  for (let rounds = 0; rounds < 1000; rounds++) {
    const n = splitter.drainInto(batch, 0);
    for (let i = 0; i < n; i++) out.push({ data: Buffer.from(batch.bufs[i]!.subarray(0, batch.lens[i]!)), ip: sockaddrIPv4(batch.addrs[i]!), port: sockaddrPort(batch.addrs[i]!) });
    if (!splitter.pending) break;
  }
  return out;
}

t.test('a GRO buffer of N equal segments and a short last one yields exactly those datagrams', async (t) => {
  const sent = [...Array.from({ length: 7 }, (_, k) => datagram(k, 1332)), datagram(7, 410)];
  const slots = new FakeSlots().add(sent, 1332, sockaddr(PEER_A, 4242));
  const splitter = new GroSplitter(8);
  t.equal(splitter.load(slots, slots.count), 1, 'one coalesced buffer');
  const got = drainAll(splitter, 64);
  t.equal(got.length, 8, 'eight datagrams');
  t.same(got.map((g) => g.data.length), [1332, 1332, 1332, 1332, 1332, 1332, 1332, 410]);
  t.ok(got.every((g, k) => g.data.equals(sent[k]!)), 'each datagram byte for byte, in order');
  t.ok(got.every((g) => g.ip === PEER_A && g.port === 4242), 'each with the slot\'s sender');
  t.equal(splitter.pending, false);
});

t.test('an exact multiple of the segment size has no short datagram; a slot without a size is one datagram', async (t) => {
  const slots = new FakeSlots()
    .add([datagram(0, 100), datagram(1, 100), datagram(2, 100)], 100, sockaddr(PEER_A, 1))
    .add([datagram(3, 777)], 0, sockaddr(PEER_B, 2))
    // A segment size as large as the buffer (the kernel would not send one, but it means one datagram).
    .add([datagram(4, 50)], 50, sockaddr(PEER_A, 3));
  const splitter = new GroSplitter(8);
  t.equal(splitter.load(slots, slots.count), 1, 'only the first slot counts as coalesced');
  const got = drainAll(splitter, 64);
  t.same(got.map((g) => [g.data.length, g.ip, g.port]), [[100, PEER_A, 1], [100, PEER_A, 1], [100, PEER_A, 1], [777, PEER_B, 2], [50, PEER_A, 3]]);
  t.ok(got.every((g, k) => g.data.equals(datagram(k, g.data.length))), 'bytes intact');
});

t.test('more datagrams than the batch holds wait, in order, for the next calls', async (t) => {
  const first = Array.from({ length: 40 }, (_, k) => datagram(k, 1200));
  const second = [...Array.from({ length: 30 }, (_, k) => datagram(40 + k, 1200)), datagram(70, 9)];
  const slots = new FakeSlots().add(first, 1200, sockaddr(PEER_A, 7)).add(second, 1200, sockaddr(PEER_B, 8));
  const splitter = new GroSplitter(8);
  t.equal(splitter.load(slots, slots.count), 2);
  const batch = new DatagramBatch(16, 2048);
  const sizes: number[] = [];
  let total = 0;
  const perCall: number[] = [];
  do {
    const n = splitter.drainInto(batch, 0);
    perCall.push(n);
    for (let i = 0; i < n; i++) {
      const d = batch.bufs[i]!.subarray(0, batch.lens[i]!);
      if (!d.equals(datagram(total + i, d.length))) t.fail(`datagram ${total + i} differs`);
      t.equal(sockaddrIPv4(batch.addrs[i]!), total + i < 40 ? PEER_A : PEER_B);
      sizes.push(d.length);
    }
    total += n;
  } while (splitter.pending);
  t.same(perCall, [16, 16, 16, 16, 7], 'full batches, then the rest');
  t.equal(total, 71);
  t.equal(sizes.at(-1), 9, 'the short last datagram last');
  t.equal(splitter.drainInto(batch, 0), 0, 'nothing left');
});

t.test('drainInto fills from the given entry; a datagram longer than its entry is cut to it; empty datagrams count', async (t) => {
  const slots = new FakeSlots().add([datagram(0, 300), datagram(1, 300)], 300, sockaddr(PEER_A, 9)).add([Buffer.alloc(0)], 0, sockaddr(PEER_B, 10));
  const splitter = new GroSplitter(4);
  splitter.load(slots, slots.count);
  const batch = new DatagramBatch(8, 128);
  t.equal(splitter.drainInto(batch, 2), 5, 'entries 2, 3 and 4');
  t.same([batch.lens[2], batch.lens[3], batch.lens[4]], [128, 128, 0]);
  t.ok(batch.bufs[2]!.subarray(0, 128).equals(datagram(0, 300).subarray(0, 128)), 'the first 128 bytes of datagram 0');
  t.ok(batch.bufs[3]!.subarray(0, 128).equals(datagram(1, 300).subarray(0, 128)), 'the first 128 bytes of datagram 1');
  t.equal(sockaddrIPv4(batch.addrs[4]!), PEER_B, 'the empty datagram with its sender');
});

t.test('the UDP_GRO control message is found and read; anything else gives 0', async (t) => {
  const control = Buffer.alloc(64);
  const cmsg = (off: number, len: number, level: number, type: number, value: number): void => {
    control.writeUInt32LE(len, off);
    control.writeUInt32LE(0, off + 4);
    control.writeInt32LE(level, off + 8);
    control.writeInt32LE(type, off + 12);
    control.writeInt32LE(value, off + 16);
  };
  cmsg(0, 20, IPPROTO_UDP, UDP_GRO, 1332);
  t.equal(groSegmentSize(control, 0, 24), 1332, 'alone');
  control.fill(0);
  cmsg(0, 20, 0 /* IPPROTO_IP */, 1 /* IP_TOS */, 0x10);
  cmsg(24, 20, IPPROTO_UDP, UDP_GRO, 1200);
  t.equal(groSegmentSize(control, 0, 48), 1200, 'after another control message (8-byte aligned)');
  t.equal(groSegmentSize(control, 0, 24), 0, 'cut off by the length the kernel reported');
  t.equal(groSegmentSize(control, 0, 0), 0, 'no control data');
  control.fill(0);
  cmsg(0, 20, IPPROTO_UDP, UDP_SEGMENT, 1332);
  t.equal(groSegmentSize(control, 0, 24), 0, 'a UDP_SEGMENT message is not a GRO size');
  cmsg(0, 8, IPPROTO_UDP, UDP_GRO, 1332);
  t.equal(groSegmentSize(control, 0, 24), 0, 'a length shorter than a header ends the walk');
  cmsg(0, 200, IPPROTO_UDP, UDP_GRO, 1332);
  t.equal(groSegmentSize(control, 0, 64), 0, 'a length past the data ends the walk');
  const two = Buffer.alloc(128);
  two.writeUInt32LE(20, 64);
  two.writeInt32LE(IPPROTO_UDP, 72);
  two.writeInt32LE(UDP_GRO, 76);
  two.writeInt32LE(999, 80);
  t.equal(groSegmentSize(two, 64, 24), 999, 'at an offset (slot i of a shared control buffer)');
});

t.test('the UDP_SEGMENT control message has the layout the kernel checks', async (t) => {
  const control = Buffer.alloc(2 * SEGMENT_CMSG_SPACE, 0xee);
  writeSegmentCmsg(control, SEGMENT_CMSG_SPACE, 1332);
  const expected = Buffer.alloc(SEGMENT_CMSG_SPACE);
  expected.writeUInt32LE(18, 0); // CMSG_LEN(sizeof(u16))
  expected.writeInt32LE(IPPROTO_UDP, 8);
  expected.writeInt32LE(UDP_SEGMENT, 12);
  expected.writeUInt16LE(1332, 16);
  t.same(control.subarray(SEGMENT_CMSG_SPACE), expected);
  t.ok(control.subarray(0, SEGMENT_CMSG_SPACE).every((b) => b === 0xee), 'nothing written before the offset');
});

/** A send batch of (endpoint, length) entries. */
function batchOf(entries: Array<[ip: number, port: number, len: number]>): { lens: Int32Array; addrs: Buffer[] } {
  return { lens: Int32Array.from(entries.map((e) => e[2])), addrs: entries.map(([ip, port]) => sockaddr(ip, port)) };
}

function messages(plan: GsoPlan, n: number): Array<[first: number, count: number, segment: number]> {
  return Array.from({ length: n }, (_, m) => [plan.first[m]!, plan.count[m]!, plan.segment[m]!] as [number, number, number]);
}

t.test('a run of equal datagrams to one endpoint is one message; a shorter one ends it', async (t) => {
  const b = batchOf([
    [PEER_A, 4242, 1332],
    [PEER_A, 4242, 1332],
    [PEER_A, 4242, 1332],
    [PEER_A, 4242, 700],
    [PEER_A, 4242, 1332],
    [PEER_A, 4242, 1332],
  ]);
  const plan = new GsoPlan(64);
  const n = plan.build(b.lens, b.addrs, 0, 6, GSO_MAX_BYTES);
  t.same(messages(plan, n), [[0, 4, 1332], [4, 2, 1332]], 'the short datagram is the last of the first message');
});

t.test('mixed endpoints and unequal sizes split the runs; singles are ordinary sends', async (t) => {
  const b = batchOf([
    [PEER_A, 4242, 1332],
    [PEER_B, 4242, 1332], // another host
    [PEER_B, 4243, 1332], // same host, another port
    [PEER_B, 4243, 1332],
    [PEER_B, 4243, 1400], // bigger than the run's size
    [PEER_B, 4243, 90],
    [PEER_B, 4243, 90],
    [PEER_A, 4242, 90],
  ]);
  const plan = new GsoPlan(64);
  const n = plan.build(b.lens, b.addrs, 0, 8, GSO_MAX_BYTES);
  t.same(messages(plan, n), [[0, 1, 0], [1, 1, 0], [2, 2, 1332], [4, 2, 1400], [6, 1, 0], [7, 1, 0]]);
  t.ok(sameEndpoint(b.addrs[2]!, b.addrs[3]!) && !sameEndpoint(b.addrs[1]!, b.addrs[2]!) && !sameEndpoint(b.addrs[0]!, b.addrs[1]!));
});

t.test('a message holds at most 64 datagrams and 65507 bytes', async (t) => {
  const many = batchOf(Array.from({ length: 150 }, () => [PEER_A, 4242, 100] as [number, number, number]));
  const plan = new GsoPlan(150);
  const n = plan.build(many.lens, many.addrs, 0, 150, GSO_MAX_BYTES);
  t.same(messages(plan, n), [[0, 64, 100], [64, 64, 100], [128, 22, 100]], `${GSO_MAX_SEGMENTS}-datagram cap`);
  const big = batchOf(Array.from({ length: 20 }, () => [PEER_A, 4242, 9000] as [number, number, number]));
  const m = plan.build(big.lens, big.addrs, 0, 20, GSO_MAX_BYTES);
  t.same(messages(plan, m), [[0, 7, 9000], [7, 7, 9000], [14, 6, 9000]], '7 x 9000 = 63000 bytes fit, 8 would not');
  const exact = batchOf([...Array.from({ length: 49 }, () => [PEER_A, 1, 1332] as [number, number, number]), [PEER_A, 1, 239], [PEER_A, 1, 1]]);
  const k = plan.build(exact.lens, exact.addrs, 0, 51, GSO_MAX_BYTES);
  t.same(messages(plan, k), [[0, 50, 1332], [50, 1, 0]], '49 x 1332 + 239 = 65507 bytes exactly: the last byte does not fit');
});

t.test('a segment ceiling (after an EINVAL) or GSO off leaves bigger datagrams alone; a range is planned from its start', async (t) => {
  const b = batchOf([
    [PEER_A, 1, 1332],
    [PEER_A, 1, 1332],
    [PEER_A, 1, 80],
    [PEER_A, 1, 80],
    [PEER_A, 1, 80],
  ]);
  const plan = new GsoPlan(8);
  t.same(messages(plan, plan.build(b.lens, b.addrs, 0, 5, 1331)), [[0, 1, 0], [1, 1, 0], [2, 3, 80]]);
  t.same(messages(plan, plan.build(b.lens, b.addrs, 0, 5, 0)), [[0, 1, 0], [1, 1, 0], [2, 1, 0], [3, 1, 0], [4, 1, 0]]);
  t.same(messages(plan, plan.build(b.lens, b.addrs, 1, 4, GSO_MAX_BYTES)), [[1, 2, 1332], [3, 1, 0]], 'datagrams [1, 4) only');
});
