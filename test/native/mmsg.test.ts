/**
 * The batched underlay edge (FdUnderlaySocket over recvmmsg/sendmmsg) on real UDP loopback sockets, no root: bytes,
 * lengths and senders as sent, one syscall per batch, partial sends (real kernel refusals and a kernel that takes
 * fewer than asked), the fallback to one datagram per call on ENOSYS, and no allocation per packet.
 */
import { measureLoop } from './fixtures/allocation';
import { loopbackUdp } from './fixtures/loopback-udp';
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DatagramBatch } from '../../src/routine/edges';
import { FdUnderlaySocket } from '../../src/routine/fd-edges';
import { close, pollFds, POLLIN } from '../../src/shared/native/libc';
import { ENOSYS, kernelMmsg, mmsgSupported, type MmsgCalls } from '../../src/shared/native/mmsg';
import { fillSockaddrIn, sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';

const LOOPBACK = 0x7f000001;
const EAGAIN = 11;
const EINVAL = 22;
const EMSGSIZE = 90;


const udp = loopbackUdp;

function readable(fd: number, timeoutMs = 2000): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return pollFds(pfd, 1, timeoutMs) === 1;
}

/** The kernel's calls, logged: [which, asked, result] per call. */
function loggedCalls(log: Array<[string, number, number]>, inner: MmsgCalls = kernelMmsg): MmsgCalls {
  return {
    recvmmsg(fd, headers, count, flags) {
      const r = inner.recvmmsg(fd, headers, count, flags);
      log.push(['recv', count, r]);
      return r;
    },
    sendmmsg(fd, headers, count, flags) {
      const r = inner.sendmmsg(fd, headers, count, flags);
      log.push(['send', count, r]);
      return r;
    },
  };
}

/** Fills entry i with `len` bytes of a pattern unique to (tag, i), addressed to 127.0.0.1:port. */
function fill(batch: DatagramBatch, i: number, len: number, port: number, tag: number): void {
  const b = batch.bufs[i]!;
  for (let k = 0; k < len; k++) b[k] = (tag * 31 + i * 7 + k) & 0xff;
  batch.lens[i] = len;
  fillSockaddrIn(batch.addrs[i]!, LOOPBACK, port);
}

function expected(i: number, len: number, tag: number): Buffer {
  const b = Buffer.alloc(len);
  for (let k = 0; k < len; k++) b[k] = (tag * 31 + i * 7 + k) & 0xff;
  return b;
}

/** Receives until `want` datagrams arrived (bounded by poll timeouts); returns them as [bytes, sender port]. */
function receiveAll(edge: FdUnderlaySocket, batch: DatagramBatch, want: number): Array<[Buffer, number]> {
  const got: Array<[Buffer, number]> = [];
  while (got.length < want && readable(edge.fd)) {
    const n = edge.recvBatch(batch);
    for (let i = 0; i < n; i++) got.push([Buffer.from(batch.bufs[i]!.subarray(0, batch.lens[i]!)), sockaddrPort(batch.addrs[i]!)]);
  }
  return got;
}

t.test('libc has recvmmsg and sendmmsg', async (t) => {
  t.equal(mmsgSupported, true);
});

t.test('a batch of 64 datagrams leaves in one sendmmsg and arrives in one recvmmsg, bytes and senders intact', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  const tx = new FdUnderlaySocket(a.fd, { calls: loggedCalls(log) });
  const rx = new FdUnderlaySocket(b.fd, { calls: loggedCalls(log) });
  const out = new DatagramBatch(64, 1500);
  for (let i = 0; i < 64; i++) fill(out, i, 1 + i * 20, b.port, 1);
  t.equal(tx.sendBatch(out, 64), 64, 'all 64 taken');
  t.same(log, [['send', 64, 64]], 'one sendmmsg call');
  t.same([...out.lens], Array.from({ length: 64 }, (_, i) => 1 + i * 20), 'no entry marked as failed');

  log.length = 0;
  const inb = new DatagramBatch(64, 9001);
  t.ok(readable(b.fd), 'receiver readable');
  t.equal(rx.recvBatch(inb), 64, 'one recvBatch returns all 64 (loopback delivers within sendmmsg)');
  t.same(log, [['recv', 64, 64]], 'one recvmmsg call');
  for (let i = 0; i < 64; i++) {
    if (!inb.bufs[i]!.subarray(0, inb.lens[i]!).equals(expected(i, 1 + i * 20, 1))) t.fail(`datagram ${i} differs`);
  }
  t.same(
    inb.addrs.map((sa) => [sockaddrIPv4(sa), sockaddrPort(sa)]),
    Array.from({ length: 64 }, () => [LOOPBACK, a.port]),
    'every sender is 127.0.0.1 and the sending port',
  );
  t.equal(rx.recvBatch(inb), 0, 'drained: an empty socket gives 0');
  t.same(log.at(-1), ['recv', 64, -EAGAIN], 'the empty read was EAGAIN, not an error');
  t.equal(tx.mode, 'batch');
  t.equal(rx.mode, 'batch');
});

t.test('one batch object used to send then to receive: lengths and addresses are restored between calls', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const edgeA = new FdUnderlaySocket(a.fd);
  const edgeB = new FdUnderlaySocket(b.fd);
  const batch = new DatagramBatch(8, 2048);
  // Short sends shrink iov_len of entries 0..4; the receive into the same entries must use whole buffers again.
  for (let i = 0; i < 5; i++) fill(batch, i, 10, b.port, 2);
  t.equal(edgeA.sendBatch(batch, 5), 5);
  const echo = new DatagramBatch(8, 2048);
  t.same(receiveAll(edgeB, echo, 5).map(([d]) => d.length), [10, 10, 10, 10, 10]);
  for (let i = 0; i < 8; i++) fill(echo, i, 1000 + i, a.port, 3);
  t.equal(edgeB.sendBatch(echo, 8), 8);
  const back = receiveAll(edgeA, batch, 8);
  t.same(
    back.map(([d, port]) => [d.length, port]),
    Array.from({ length: 8 }, (_, i) => [1000 + i, b.port]),
    'full lengths (not the 10 bytes last sent from these entries) and the sender',
  );
  t.ok(back.every(([d], i) => d.equals(expected(i, 1000 + i, 3))), 'bytes intact');
});

t.test('a datagram longer than its buffer arrives truncated to the buffer, as with recvfrom', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const out = new DatagramBatch(2, 4096);
  fill(out, 0, 100, b.port, 4);
  fill(out, 1, 20, b.port, 4);
  t.equal(new FdUnderlaySocket(a.fd).sendBatch(out, 2), 2);
  const small = new DatagramBatch(4, 32);
  const got = receiveAll(new FdUnderlaySocket(b.fd), small, 2);
  t.same(got.map(([d]) => d.length), [32, 20]);
  t.ok(got[0]![0].equals(expected(0, 100, 4).subarray(0, 32)));
});

t.test('datagrams the kernel refuses are marked with their errno and the rest of the batch still leaves', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  const tx = new FdUnderlaySocket(a.fd, { calls: loggedCalls(log) });
  const out = new DatagramBatch(6, 70_000);
  for (let i = 0; i < 6; i++) fill(out, i, 50 + i, b.port, 5);
  fillSockaddrIn(out.addrs[2]!, LOOPBACK, 0); // port 0: EINVAL
  fill(out, 4, 65_600, b.port, 5); // longer than any UDP datagram: EMSGSIZE
  t.equal(tx.sendBatch(out, 6), 4, 'four sent');
  t.equal(out.lens[2], -EINVAL, 'entry 2 marked -EINVAL');
  t.equal(out.lens[4], -EMSGSIZE, 'entry 4 marked -EMSGSIZE');
  t.same([out.lens[0], out.lens[1], out.lens[3], out.lens[5]], [50, 51, 53, 55], 'the others untouched');
  // sendmmsg stops at a refused datagram and reports what it sent before it; the refused one alone gives its errno.
  t.same(log, [
    ['send', 6, 2],
    ['send', 4, -EINVAL],
    ['send', 3, 1],
    ['send', 2, -EMSGSIZE],
    ['send', 1, 1],
  ]);
  const got = receiveAll(new FdUnderlaySocket(b.fd), new DatagramBatch(8, 9001), 4);
  t.same(got.map(([d]) => d.length), [50, 51, 53, 55], 'the receiver got exactly the four, in order');
  t.ok(got.every(([d]) => d.equals(expected(d.length - 50, d.length, 5))), 'bytes intact');
});

t.test('a kernel that takes fewer datagrams than asked: the rest is sent by further calls', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  const atMostThree: MmsgCalls = { ...kernelMmsg, sendmmsg: (fd, h, count, flags) => kernelMmsg.sendmmsg(fd, h, Math.min(3, count), flags) };
  const tx = new FdUnderlaySocket(a.fd, { calls: loggedCalls(log, atMostThree) });
  const out = new DatagramBatch(10, 256);
  for (let i = 0; i < 10; i++) fill(out, i, 100 + i, b.port, 6);
  t.equal(tx.sendBatch(out, 10), 10);
  t.same(log.map(([, asked, r]) => [asked, r]), [[10, 3], [7, 3], [4, 3], [1, 1]]);
  const got = receiveAll(new FdUnderlaySocket(b.fd), new DatagramBatch(16, 9001), 10);
  t.same(got.map(([d]) => d.length), Array.from({ length: 10 }, (_, i) => 100 + i), 'all ten, in order, once');
});

t.test('a full send buffer (EAGAIN) drops and marks the rest of the batch without trying each', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  let calls = 0;
  const fullAfterTwo: MmsgCalls = {
    ...kernelMmsg,
    sendmmsg: (fd, h, count, flags) => (calls++ === 0 ? kernelMmsg.sendmmsg(fd, h, Math.min(2, count), flags) : -EAGAIN),
  };
  const tx = new FdUnderlaySocket(a.fd, { calls: loggedCalls(log, fullAfterTwo) });
  const out = new DatagramBatch(6, 256);
  for (let i = 0; i < 6; i++) fill(out, i, 40, b.port, 7);
  t.equal(tx.sendBatch(out, 6), 2);
  t.same([...out.lens], [40, 40, -EAGAIN, -EAGAIN, -EAGAIN, -EAGAIN]);
  t.same(log.map(([, asked, r]) => [asked, r]), [[6, 2], [4, -EAGAIN]], 'two calls, not one per dropped datagram');
  t.equal(receiveAll(new FdUnderlaySocket(b.fd), new DatagramBatch(8, 9001), 2).length, 2);
});

t.test('ENOSYS: the socket falls back for good to one datagram per call, and nothing is lost', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  const noKernel: MmsgCalls = { recvmmsg: () => -ENOSYS, sendmmsg: () => -ENOSYS };
  const tx = new FdUnderlaySocket(a.fd, { calls: loggedCalls(log, noKernel) });
  const rx = new FdUnderlaySocket(b.fd, { calls: loggedCalls(log, noKernel) });
  const out = new DatagramBatch(5, 256);
  for (let i = 0; i < 5; i++) fill(out, i, 60 + i, b.port, 8);
  t.equal(tx.sendBatch(out, 5), 5, 'sent through sendto');
  t.equal(tx.mode, 'single');
  const got = receiveAll(rx, new DatagramBatch(8, 9001), 5);
  t.equal(rx.mode, 'single');
  t.same(got.map(([d, port]) => [d.length, port]), Array.from({ length: 5 }, (_, i) => [60 + i, a.port]));
  t.equal(tx.sendBatch(out, 5), 5, 'later batches too');
  t.equal(receiveAll(rx, new DatagramBatch(8, 9001), 5).length, 5);
  t.same(log, [
    ['send', 5, -ENOSYS],
    ['recv', 8, -ENOSYS],
  ], 'each edge asked the kernel once, then never again');
});

t.test("batching 'single' never calls recvmmsg/sendmmsg", async (t) => {
  const a = udp(t);
  const b = udp(t);
  const log: Array<[string, number, number]> = [];
  const tx = new FdUnderlaySocket(a.fd, { batching: 'single', calls: loggedCalls(log) });
  const rx = new FdUnderlaySocket(b.fd, { batching: 'single', calls: loggedCalls(log) });
  const out = new DatagramBatch(4, 256);
  for (let i = 0; i < 4; i++) fill(out, i, 30, b.port, 9);
  fillSockaddrIn(out.addrs[1]!, LOOPBACK, 0);
  t.equal(tx.sendBatch(out, 4), 3);
  t.equal(out.lens[1], -EINVAL, 'a refused datagram is marked the same way');
  t.equal(receiveAll(rx, new DatagramBatch(8, 9001), 3).length, 3);
  t.same(log, []);
});

t.test('a Buffer replaced in a batch slot is the one the kernel fills next', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const tx = new FdUnderlaySocket(a.fd);
  const rx = new FdUnderlaySocket(b.fd);
  const inb = new DatagramBatch(2, 512);
  const out = new DatagramBatch(1, 512);
  fill(out, 0, 11, b.port, 10);
  tx.sendBatch(out, 1);
  t.equal(receiveAll(rx, inb, 1).length, 1);
  const old = inb.bufs[0]!;
  const replacement = Buffer.alloc(512);
  inb.bufs[0] = replacement;
  fill(out, 0, 22, b.port, 11);
  tx.sendBatch(out, 1);
  t.ok(readable(b.fd));
  t.equal(rx.recvBatch(inb), 1);
  t.ok(replacement.subarray(0, 22).equals(expected(0, 22, 11)), 'the new Buffer holds the datagram');
  t.ok(old.subarray(0, 11).equals(expected(0, 11, 10)), 'the old one was left alone');
});

t.test('the kernel is pointed at the same memory after garbage collections that move objects', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const tx = new FdUnderlaySocket(a.fd);
  const rx = new FdUnderlaySocket(b.fd);
  // Small Buffers (the 16-byte sockaddrs) start on the V8 heap, where a collection may move them; taking their
  // address must have moved them off it for good.
  const out = new DatagramBatch(4, 64);
  const inb = new DatagramBatch(4, 64);
  for (let i = 0; i < 4; i++) fill(out, i, 20 + i, b.port, 13);
  t.equal(tx.sendBatch(out, 4), 4);
  t.equal(receiveAll(rx, inb, 4).length, 4);
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    let junk: Buffer[] | null = Array.from({ length: 20_000 }, () => Buffer.alloc(16));
    junk = null;
    void junk;
    gc();
  }
  for (let i = 0; i < 4; i++) fill(out, i, 30 + i, b.port, 14);
  t.equal(tx.sendBatch(out, 4), 4);
  const got = receiveAll(rx, inb, 4);
  t.same(got.map(([d, port]) => [d.length, port]), Array.from({ length: 4 }, (_, i) => [30 + i, a.port]));
  t.ok(got.every(([d], i) => d.equals(expected(i, 30 + i, 14))), 'bytes intact');
  t.same(inb.addrs.map((sa) => sockaddrPort(sa)), [a.port, a.port, a.port, a.port], 'senders written into the batch Buffers');
});

t.test('sending and receiving batches allocates nothing per packet', async (t) => {
  const a = udp(t);
  const b = udp(t);
  const tx = new FdUnderlaySocket(a.fd);
  const rx = new FdUnderlaySocket(b.fd);
  const out = new DatagramBatch(64, 256);
  for (let i = 0; i < 64; i++) fill(out, i, 64, b.port, 12);
  const inb = new DatagramBatch(64, 2048);
  const round = (): number => {
    for (let i = 0; i < 64; i++) out.lens[i] = 64; // as the outbox does before each flush
    tx.sendBatch(out, 64);
    return rx.recvBatch(inb);
  };
  for (let i = 0; i < 200; i++) round(); // warm up: vectors built, code compiled
  const rounds = 2000;
  const { total: received, gcDuring, youngGrowth: grown } = await measureLoop(rounds, round);
  t.equal(received, rounds * 64, 'every datagram came back');
  t.equal(gcDuring, 0, 'no garbage collection during the loop');
  t.ok(grown < 64 * 1024, `young generation grew ${grown} bytes over ${rounds * 64 * 2} packets`);
});
