/**
 * The offload edge (src/routine/vnet-inside-queue.ts) over a real fd without root: a SOCK_SEQPACKET socketpair keeps
 * message boundaries as a tun queue does, so the test plays the kernel on the other end, writing virtio-net headers
 * with super-packets and reading what the edge writes.
 */
import t from 'tap';
import { PacketBatch } from '../../src/routine/edges';
import { FdInsideQueue, insideQueueFor } from '../../src/routine/fd-edges';
import { VnetInsideQueue } from '../../src/routine/vnet-inside-queue';
import { close, readFd, setNonBlocking, writeFd } from '../../src/shared/native/libc';
import { socketpairSeqpacket } from '../../src/shared/native/unix';
import { C, COUNTER_COUNT } from '../../src/shared/state/counters';
import { RoutineCounters } from '../../src/routine/context';
import { GSO, TCP, kernelRead, pattern, rfc1071, pseudoHeader, tcp4, vnetHeader } from './fixtures/super-packets';

function setup(t: { teardown(fn: () => void): void }, maxSegments?: number): { edge: VnetInsideQueue; peer: number; counters: RoutineCounters } {
  const [mine, peer] = socketpairSeqpacket();
  setNonBlocking(mine, true);
  setNonBlocking(peer, true);
  t.teardown(() => {
    close(mine);
    close(peer);
  });
  const counters = new RoutineCounters(new Float64Array(COUNTER_COUNT), 0);
  return { edge: new VnetInsideQueue(mine, counters, maxSegments), peer, counters };
}

function send(fd: number, bytes: Buffer): void {
  if (writeFd(fd, bytes, bytes.length) !== bytes.length) throw new Error('test socket refused a write');
}

function bulk(id: number, seq: number, payloadLen: number): Buffer {
  return tcp4({ src: '192.168.100.1', dst: '192.168.100.2', id }, { srcPort: 40000, dstPort: 5201, seq, ack: 1, flags: TCP.ACK | TCP.PSH, window: 500 }, pattern(payloadLen, seq));
}

t.test('a super-packet read becomes its segments in the batch; plain packets pass through', async (t) => {
  const { edge, peer, counters } = setup(t);
  const superPacket = bulk(100, 1000, 5 * 1260 + 17);
  const plain = bulk(200, 50, 300);
  send(peer, kernelRead(superPacket, 20, 6, GSO.TCPV4, 1260));
  send(peer, Buffer.concat([Buffer.alloc(10), plain]));
  const batch = new PacketBatch(64, 9001);
  const n = edge.readBatch(batch);
  t.equal(n, 7, '6 segments and one plain packet');
  let payload = Buffer.alloc(0);
  for (let i = 0; i < 6; i++) {
    const seg = batch.bufs[i]!.subarray(0, batch.lens[i]);
    t.equal(seg.readUInt32BE(24), 1000 + i * 1260, `segment ${i} sequence number`);
    t.equal(rfc1071(pseudoHeader(seg, 20, 6, seg.length - 20), seg.subarray(20)), 0, `segment ${i} TCP checksum`);
    payload = Buffer.concat([payload, seg.subarray(40)]);
  }
  t.ok(payload.equals(superPacket.subarray(40)), 'segments carry the super-packet\'s payload in order');
  t.ok(batch.bufs[6]!.subarray(0, batch.lens[6]).equals(plain), 'the plain packet, byte for byte');
  t.equal(counters.get(C['routine.inside.rx_superpackets']), 1, 'one super-packet counted');
  t.equal(counters.get(C['routine.dropped.malformed']), 0);
  t.equal(edge.readBatch(batch), 0, 'drained');
});

t.test('reads stop while the batch has less room than a full super-packet, and resume on the next call', async (t) => {
  const { edge, peer, counters } = setup(t, 4);
  for (let i = 0; i < 3; i++) send(peer, kernelRead(bulk(i, i * 10_000, 3 * 1000), 20, 6, GSO.TCPV4, 1000));
  const batch = new PacketBatch(8, 9001);
  t.equal(edge.readBatch(batch), 6, 'two super-packets of 3: room for a third (4 needed) is not there');
  t.equal(edge.readBatch(batch), 3, 'the third on the next call');
  t.equal(counters.get(C['routine.inside.rx_superpackets']), 3);
});

t.test('malformed reads and super-packets larger than the batch are dropped and counted; the rest goes on', async (t) => {
  const { edge, peer, counters } = setup(t, 64);
  const good = kernelRead(bulk(1, 1, 2000), 20, 6, GSO.TCPV4, 1000);
  const zeroGso = Buffer.from(good);
  zeroGso.writeUInt16LE(0, 4);
  const hdrLenPast = Buffer.from(good);
  hdrLenPast.writeUInt16LE(5000, 2);
  const csumPast = Buffer.concat([vnetHeader({ flags: 1, gsoType: GSO.NONE, hdrLen: 0, gsoSize: 0, csumStart: 400, csumOffset: 6 }), bulk(2, 2, 10)]);
  const tooMany = kernelRead(bulk(3, 3, 5000), 20, 6, GSO.TCPV4, 1000); // 5 segments, batch of 4
  for (const r of [zeroGso, hdrLenPast, csumPast, tooMany, good]) send(peer, r);
  const batch = new PacketBatch(4, 9001);
  t.equal(edge.readBatch(batch), 2, 'only the good super-packet\'s 2 segments');
  t.equal(counters.get(C['routine.dropped.malformed']), 4, 'four refused reads counted');
  t.equal(counters.get(C['routine.inside.rx_superpackets']), 1);
  t.equal(batch.bufs[1]!.readUInt32BE(24), 1 + 1000, 'the good one split as usual');
});

t.test('writes carry an all-zero virtio header before each packet', async (t) => {
  const { edge, peer } = setup(t);
  const batch = new PacketBatch(4, 9001);
  const packets = [bulk(1, 1, 100), bulk(2, 2, 1200)];
  packets.forEach((p, i) => {
    p.copy(batch.bufs[i]!);
    batch.lens[i] = p.length;
  });
  t.equal(edge.writeBatch(batch, 2), 2);
  const rx = Buffer.alloc(65_536);
  for (const p of packets) {
    const n = readFd(peer, rx, rx.length);
    t.equal(n, 10 + p.length, 'header + packet in one message');
    t.ok(rx.subarray(0, 10).equals(Buffer.alloc(10)), 'all-zero header');
    t.ok(rx.subarray(10, n).equals(p), 'packet byte for byte');
  }
  t.equal(readFd(peer, rx, rx.length) < 0, true, 'nothing more');
});

t.test('consecutive segments of one TCP flow leave in one write with a GSO header', async (t) => {
  const { edge, peer, counters } = setup(t);
  // The segments a sender's TSO made (split here by the edge itself from a kernel-style read).
  send(peer, kernelRead(bulk(10, 5000, 4 * 1000), 20, 6, GSO.TCPV4, 1000));
  const segments = new PacketBatch(64, 9001);
  t.equal(edge.readBatch(segments), 4);
  t.equal(edge.writeBatch(segments, 4), 4, 'all 4 packets written');
  t.equal(counters.get(C['routine.inside.tx_superpackets']), 1, 'as one super-packet');
  const rx = Buffer.alloc(65_536);
  const n = readFd(peer, rx, rx.length);
  t.equal(n, 10 + 40 + 4000, 'one message: header, IP + TCP header once, 4000 payload bytes');
  t.same([rx[0], rx[1], rx.readUInt16LE(4)], [1, GSO.TCPV4, 1000], 'NEEDS_CSUM, TCPV4, gso_size 1000');
  t.equal(readFd(peer, rx, rx.length) < 0, true, 'nothing more');
});

t.test('insideQueueFor: an fd without IFF_VNET_HDR (here a socket) gets the plain edge', async (t) => {
  const [a, b] = socketpairSeqpacket();
  t.teardown(() => {
    close(a);
    close(b);
  });
  const counters = new RoutineCounters(new Float64Array(COUNTER_COUNT), 0);
  t.ok(insideQueueFor(a, counters) instanceof FdInsideQueue, 'plain edge for a socket');
  t.notOk(insideQueueFor(a, counters) instanceof VnetInsideQueue);
});
