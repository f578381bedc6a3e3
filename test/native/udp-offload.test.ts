/**
 * The underlay's UDP offloads (src/routine/offload-underlay.ts) on real loopback sockets, no root: GSO sends and GRO
 * receives carry every datagram byte for byte (loopback hands a GSO send to the receiving socket whole, so the
 * GRO side sees it coalesced), the counters say so, a batch bigger than the receive batch is handed out over
 * several calls, the kernel's refusals fall back without losing a datagram (a real EINVAL: SO_NO_CHECK forbids
 * GSO; a simulated EIO), and two data paths joined by a tunnel over such sockets deliver every packet.
 */
import { measureLoop } from './fixtures/allocation';
import { udp4Packet } from './fixtures/packets';
import { loopbackUdp } from './fixtures/loopback-udp';
import { privateDatapath, testRoutineSetup } from '../../src/testbed/routine-setup';
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Datapath } from '../../src/routine/datapath';
import { DatagramBatch } from '../../src/routine/edges';
import { FdUnderlaySocket } from '../../src/routine/fd-edges';
import { MemoryInside } from '../routine/fixtures/memory-node';
import { OffloadUnderlaySocket, offloadUnderlayFor, type OffloadSink } from '../../src/routine/offload-underlay';
import type { TunnelInstall } from '../../src/shared/ipc/messages';
import { SOL_SOCKET, close, pollFds, POLLIN, setsockoptInt } from '../../src/shared/native/libc';
import { MMSGHDR_SIZE, MSG_CONTROLLEN, kernelMmsg, type MmsgCalls } from '../../src/shared/native/mmsg';
import { fillSockaddrIn, sockaddrPort } from '../../src/shared/native/sockaddr';
import { setUdpGro, udpGroEnabled } from '../../src/shared/native/udp-offload';
import { socketpairSeqpacket } from '../../src/shared/native/unix';
import { C, COUNTER_COUNT, type CounterName } from '../../src/shared/state/counters';

const LOOPBACK = 0x7f000001;
const EIO = 5;
const SO_NO_CHECK = 11;


const udp = loopbackUdp;

/** UDP_GRO on for `fd` (what offloadUnderlayFor does before it builds an edge with gro: true). */
function groOn(fd: number): number {
  if (setUdpGro(fd, true) !== 0 || !udpGroEnabled(fd)) throw new Error('the kernel refused UDP_GRO');
  return fd;
}

function readable(fd: number, timeoutMs = 2000): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return pollFds(pfd, 1, timeoutMs) === 1;
}

/** Counters and warnings an edge reported. */
class Sink implements OffloadSink {
  readonly counts = new Float64Array(COUNTER_COUNT);
  readonly warnings: Array<[string, Record<string, unknown>]> = [];
  add(index: number, n: number): void {
    this.counts[index]! += n;
  }
  warn(msg: string, fields: Record<string, unknown>): void {
    this.warnings.push([msg, fields]);
  }
  get(name: CounterName): number {
    return this.counts[C[name]]!;
  }
}

/** sendmmsg calls logged as [messages asked, messages with a UDP_SEGMENT control message, result]. */
function loggedSends(log: Array<[number, number, number]>, inner: MmsgCalls = kernelMmsg): MmsgCalls {
  return {
    recvmmsg: (fd, h, count, flags) => inner.recvmmsg(fd, h, count, flags),
    sendmmsg(fd, headers, count, flags) {
      let gso = 0;
      for (let m = 0; m < count; m++) if (headers.readUInt32LE(m * MMSGHDR_SIZE + MSG_CONTROLLEN) !== 0) gso++;
      const r = inner.sendmmsg(fd, headers, count, flags);
      log.push([count, gso, r]);
      return r;
    },
  };
}

function payload(k: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (k * 29 + i * 3 + (i >> 8)) & 0xff;
  return b;
}

/** Fills a send batch from [port, len] entries; entry k carries payload(k, len). */
function sendBatchOf(entries: Array<[port: number, len: number]>): DatagramBatch {
  const b = new DatagramBatch(Math.max(entries.length, 1), 9100);
  entries.forEach(([port, len], k) => {
    payload(k, len).copy(b.bufs[k]!);
    b.lens[k] = len;
    fillSockaddrIn(b.addrs[k]!, LOOPBACK, port);
  });
  return b;
}

/** Receives until `want` datagrams arrived, draining what the edge holds; returns [bytes, sender port] each. */
function receiveAll(edge: { fd: number; recvBatch(b: DatagramBatch): number; pending?(): boolean }, capacity: number, want: number): Array<[Buffer, number]> {
  const batch = new DatagramBatch(capacity, 9100);
  const got: Array<[Buffer, number]> = [];
  while (got.length < want && (edge.pending?.() === true || readable(edge.fd))) {
    const n = edge.recvBatch(batch);
    for (let i = 0; i < n; i++) got.push([Buffer.from(batch.bufs[i]!.subarray(0, batch.lens[i]!)), sockaddrPort(batch.addrs[i]!)]);
  }
  return got;
}

t.test('GSO send, GRO receive over loopback: every datagram byte for byte, in order, counted', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const c = udp(t);
  const sinkA = new Sink();
  const sinkB = new Sink();
  const tx = offloadUnderlayFor(a.fd, sinkA);
  const rx = offloadUnderlayFor(b.fd, sinkB);
  t.ok(tx instanceof OffloadUnderlaySocket, 'the kernel took both offloads');
  if (!(rx instanceof OffloadUnderlaySocket)) throw new Error('the receiving socket got the plain edge');
  t.same(rx.offloads, { gro: true, gso: true, gsoMaxSegment: 65507 });
  t.ok(udpGroEnabled(b.fd), 'UDP_GRO is on for the receiving socket');
  t.same([...sinkA.warnings, ...sinkB.warnings], [], 'no warning');
  // To b: 20 x 1332 and a 400-byte tail (one message), a single 1332 to c, then 5 x 90 to b, and 1332 to b.
  const entries: Array<[number, number]> = [
    ...Array.from({ length: 20 }, () => [b.port, 1332] as [number, number]),
    [b.port, 400],
    [c.port, 1332],
    ...Array.from({ length: 5 }, () => [b.port, 90] as [number, number]),
    [b.port, 1332],
  ];
  const out = sendBatchOf(entries);
  const log: Array<[number, number, number]> = [];
  const logged = new OffloadUnderlaySocket(a.fd, sinkA, { gro: false, gso: true, calls: loggedSends(log) });
  t.equal(logged.sendBatch(out, entries.length), 28, 'all 28 datagrams taken');
  t.same(log, [[4, 2, 4]], 'one sendmmsg: 4 messages, 2 of them GSO');
  t.equal(sinkA.get('routine.outside.tx_gso_messages'), 2);

  const got = receiveAll(rx, 8, 27);
  t.equal(got.length, 27, 'b got its 27 datagrams');
  const toB = entries.map((e, k) => [e, k] as const).filter(([e]) => e[0] === b.port);
  t.same(got.map(([d]) => d.length), toB.map(([e]) => e[1]), 'sizes in order');
  t.ok(got.every(([d], i) => d.equals(payload(toB[i]![1], d.length))), 'bytes of every datagram');
  t.ok(got.every(([, port]) => port === a.port), 'each from a');
  t.equal(sinkB.get('routine.outside.rx_gro_buffers'), 2, 'two coalesced buffers (21 and 5 datagrams)');
  const atC = receiveAll(new FdUnderlaySocket(c.fd), 4, 1);
  t.same(atC.map(([d]) => d.length), [1332], 'c got its one');
  t.ok(atC[0]![0].equals(payload(21, 1332)));
  t.equal(rx.recvBatch(new DatagramBatch(8, 9100)), 0, 'nothing more');
});

t.test('datagrams sent without GSO (a Go peer) reach a GRO socket one per slot, none lost', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const sink = new Sink();
  const rx = new OffloadUnderlaySocket(groOn(b.fd), sink, { gro: true, gso: false, slots: 4 });
  t.equal(rx.offloads.gro, true);
  const entries = Array.from({ length: 30 }, () => [b.port, 1332] as [number, number]);
  t.equal(new FdUnderlaySocket(a.fd).sendBatch(sendBatchOf(entries), 30), 30);
  const got = receiveAll(rx, 64, 30);
  t.equal(got.length, 30);
  t.ok(got.every(([d], k) => d.equals(payload(k, 1332))), 'bytes intact, in order');
  t.equal(sink.get('routine.outside.rx_gro_buffers'), 0, 'nothing was coalesced');
});

t.test('a kernel refusing GSO with EINVAL (SO_NO_CHECK): sent one by one, warned once, nothing lost', async (t) => {
  const a = udp(t);
  const b = udp(t);
  // UDP without checksums cannot be segmented by the kernel: every UDP_SEGMENT send is refused with EINVAL.
  setsockoptInt(a.fd, SOL_SOCKET, SO_NO_CHECK, 1, 'SO_NO_CHECK');
  const sink = new Sink();
  const log: Array<[number, number, number]> = [];
  const tx = new OffloadUnderlaySocket(a.fd, sink, { gro: false, gso: true, calls: loggedSends(log) });
  const entries: Array<[number, number]> = [...Array.from({ length: 10 }, () => [b.port, 1332] as [number, number]), ...Array.from({ length: 6 }, () => [b.port, 80] as [number, number])];
  const out = sendBatchOf(entries);
  t.equal(tx.sendBatch(out, 16), 16, 'all sent');
  t.same([...out.lens], entries.map((e) => e[1]), 'none marked failed');
  t.same(log, [
    [2, 2, -22],
    [11, 1, 10],
    [1, 1, -22],
    [6, 0, 6],
  ], 'refused at 1332: those ten sent alone; refused at 80: those six sent alone');
  t.equal(sink.get('routine.outside.offload_fallbacks'), 2, 'each refusal counted');
  t.equal(sink.warnings.length, 1, 'one warning');
  t.match(sink.warnings[0]![1], { error: 'EINVAL', segment: 1332 });
  t.same(tx.offloads, { gro: false, gso: true, gsoMaxSegment: 79 }, 'only segments below the refused sizes are tried');
  const got = receiveAll(new FdUnderlaySocket(b.fd), 64, 16);
  t.ok(got.length === 16 && got.every(([d], k) => d.equals(payload(k, entries[k]![1]))), 'every datagram arrived, byte for byte');
  log.length = 0;
  t.equal(tx.sendBatch(sendBatchOf(entries), 16), 16);
  t.same(log, [[16, 0, 16]], 'the next batch goes without trying GSO again');
});

t.test('a GSO send refused with EIO: GSO off for good, the datagrams still leave', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const sink = new Sink();
  const log: Array<[number, number, number]> = [];
  // As a device without checksum offload would answer: the messages before the first with a UDP_SEGMENT control
  // message are sent, that one gets EIO.
  const noChecksumOffload: MmsgCalls = {
    ...kernelMmsg,
    sendmmsg(fd, h, count, flags) {
      let plain = 0;
      while (plain < count && h.readUInt32LE(plain * MMSGHDR_SIZE + MSG_CONTROLLEN) === 0) plain++;
      return plain === 0 ? -EIO : kernelMmsg.sendmmsg(fd, h, plain, flags);
    },
  };
  const tx = new OffloadUnderlaySocket(a.fd, sink, { gro: false, gso: true, calls: loggedSends(log, noChecksumOffload) });
  const entries: Array<[number, number]> = [[b.port, 50], ...Array.from({ length: 8 }, () => [b.port, 1000] as [number, number])];
  t.equal(tx.sendBatch(sendBatchOf(entries), 9), 9);
  t.same(log, [
    [2, 1, 1],
    [1, 1, -EIO],
    [8, 0, 8],
  ], 'the plain message went, the GSO one was refused, its datagrams were sent one by one');
  t.same(tx.offloads, { gro: false, gso: false, gsoMaxSegment: 0 });
  t.equal(sink.get('routine.outside.offload_fallbacks'), 1);
  t.match(sink.warnings, [['underlay GSO send refused by the kernel; sending those datagrams one by one', { error: 'EIO', gso: 'off' }]]);
  t.equal(receiveAll(new FdUnderlaySocket(b.fd), 64, 9).length, 9, 'all nine arrived');
});

t.test('a socket that refuses both options gets the plain edge, with a warning and a count for each', async (t) => {
  const [x, y] = socketpairSeqpacket();
  t.teardown(() => {
    close(x);
    close(y);
  });
  const sink = new Sink();
  const edge = offloadUnderlayFor(x, sink);
  t.ok(edge instanceof FdUnderlaySocket, 'plain edge');
  t.equal(sink.get('routine.outside.offload_fallbacks'), 2);
  t.same(sink.warnings.map(([msg, f]) => [msg, f.option]), [
    ['underlay offload refused by the kernel; carrying on without it', 'UDP_GRO'],
    ['underlay offload refused by the kernel; carrying on without it', 'UDP_SEGMENT'],
  ]);
});

t.test('GSO sends and GRO receives allocate nothing per packet', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const sink = new Sink();
  const tx = new OffloadUnderlaySocket(a.fd, sink, { gro: false, gso: true });
  const rx = new OffloadUnderlaySocket(groOn(b.fd), sink, { gro: true, gso: false });
  const out = sendBatchOf(Array.from({ length: 64 }, () => [b.port, 1332] as [number, number]));
  const inb = new DatagramBatch(64, 9100);
  const round = (): number => {
    for (let i = 0; i < 64; i++) out.lens[i] = 1332;
    tx.sendBatch(out, 64);
    let n = 0;
    do n += rx.recvBatch(inb);
    while (rx.pending());
    return n;
  };
  for (let i = 0; i < 200; i++) round();
  const rounds = 1000;
  const gsoBefore = sink.get('routine.outside.tx_gso_messages');
  const { total: received, gcDuring, youngGrowth: grown } = await measureLoop(rounds, round);
  t.equal(received, rounds * 64, 'every datagram came back');
  t.equal(sink.get('routine.outside.tx_gso_messages') - gsoBefore, rounds * 2, 'two GSO messages per round (64 x 1332 > 64 KiB)');
  t.equal(gcDuring, 0, 'no garbage collection during the loop');
  t.ok(grown < 64 * 1024, `young generation grew ${grown} bytes over ${rounds * 64 * 2} packets`);
});

// ---- two data paths joined by a tunnel over offloading sockets ----

const VPN_A = 0x0a000001;
const VPN_B = 0x0a000002;

/** An IPv4/UDP packet A -> B carrying `k` in a 1272-byte payload (1300 bytes, the MTU). */
function ipPacket(k: number): Buffer {
  return udp4Packet('10.0.0.1', 5000, '10.0.0.2', 6000, payload(k, 1272));
}

function datapathNode(vpnIp: number, udpFd: number, sink: Sink, tunnel: TunnelInstall): { datapath: Datapath; inside: MemoryInside } {
  const inside = new MemoryInside();
  const underlay = new OffloadUnderlaySocket(groOn(udpFd), sink, { gro: true, gso: true });
  return { datapath: privateDatapath(testRoutineSetup(vpnIp, { tunnels: [tunnel] }), { underlay, inside }), inside };
}

t.test('two data paths over offloading sockets: 3 batches sealed as GSO, received coalesced, all 192 packets delivered intact', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const keyAB = randomBytes(32);
  const keyBA = randomBytes(32);
  const peer = (name: string, ip: number) => ({ name, groups: [], issuer: 'ca', caName: 'ca', ips: [ip], subnets: [], ips6: [], subnets6: [] });
  const sinkA = new Sink();
  const sinkB = new Sink();
  const A = datapathNode(VPN_A, a.fd, sinkA, { slot: 2, localIndex: 0x1111, remoteIndex: 0x2222, vpnIp: VPN_B, sendKey: keyAB, recvKey: keyBA, remoteIp: LOOPBACK, remotePort: b.port, peer: peer('b', VPN_B) });
  const B = datapathNode(VPN_B, b.fd, sinkB, { slot: 5, localIndex: 0x2222, remoteIndex: 0x1111, vpnIp: VPN_A, sendKey: keyBA, recvKey: keyAB, remoteIp: LOOPBACK, remotePort: a.port, peer: peer('a', VPN_A) });
  const total = 192;
  // Three inside batches of 64 leave A before B reads: B's one receive brings all of them, more than its batch holds.
  for (let round = 0; round < 3; round++) {
    for (let k = round * 64; k < (round + 1) * 64; k++) A.inside.toRead.push(ipPacket(k));
    t.equal(A.datapath.onInsideReadable(), 64);
  }
  t.ok(readable(b.fd), 'B readable');
  t.equal(B.datapath.onUnderlayReadable(), total, 'one call hands B every datagram, past its 64-entry batch');
  const delivered = B.inside.written;
  t.equal(delivered.length, total, 'every packet written to B\'s inside');
  t.ok(delivered.every((d, k) => d.equals(ipPacket(k))), 'byte for byte, in order');
  // 1332-byte datagrams: 49 fit in 64 KiB, so each 64-packet batch is two GSO messages.
  t.equal(sinkA.get('routine.outside.tx_gso_messages'), 6, 'A sent 6 GSO messages');
  t.equal(sinkB.get('routine.outside.rx_gro_buffers'), 6, 'B received 6 coalesced buffers');
});
