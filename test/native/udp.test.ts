/**
 * koffi UDP sockets on loopback (no namespace needed): SO_REUSEPORT sharing, errors with errno names, the
 * allocation-free recvFrom/sendTo helpers, and hand-over to dgram.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { NativeError, close, isCloseOnExec, setNonBlocking } from '../../src/shared/native/libc';
import { bufferSizes, createUdpSocket, localPort, recvFrom, sendTo } from '../../src/shared/native/udp';
import {
  allocSockaddrIn,
  fillSockaddrIn,
  sockaddrFamily,
  sockaddrIPv4,
  sockaddrIn,
  sockaddrPort,
} from '../../src/shared/native/sockaddr';
import { pollFds, POLLIN } from '../../src/shared/native/libc';

const LOOPBACK = 0x7f000001;

function closeLater(t: { teardown(fn: () => void): void }, fd: number): number {
  t.teardown(() => close(fd));
  return fd;
}

/** Waits until `fd` is readable (poll(2), blocking this thread for at most timeoutMs). */
function readable(fd: number, timeoutMs: number): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return pollFds(pfd, 1, timeoutMs) === 1;
}

t.test('sockaddr_in helpers', async (t) => {
  const sa = sockaddrIn('10.1.2.3', 4242);
  t.equal(sa.length, 16);
  t.equal(sockaddrFamily(sa), 2);
  t.equal(sockaddrPort(sa), 4242);
  t.equal(sockaddrIPv4(sa), 0x0a010203);
  t.same([...sa.subarray(2, 8)], [0x10, 0x92, 10, 1, 2, 3], 'port and address in network order');
  fillSockaddrIn(sa, LOOPBACK, 1);
  t.equal(sockaddrIPv4(sa), LOOPBACK);
  t.throws(() => sockaddrIn('::1', 1), /not an IPv4 address/);
  t.throws(() => sockaddrIn('1.2.3.4', 70000), /bad port/);
});

t.test('two SO_REUSEPORT sockets share a port; a third without it gets EADDRINUSE', async (t) => {
  const a = closeLater(t, createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: true }));
  const port = localPort(a);
  t.ok(port > 0, 'kernel chose a port');
  const b = closeLater(t, createUdpSocket({ host: '127.0.0.1', port, reusePort: true }));
  t.equal(localPort(b), port, 'second socket bound to the same port');
  t.ok(isCloseOnExec(a) && isCloseOnExec(b), 'created close-on-exec');

  const err = t.throws(() => createUdpSocket({ host: '127.0.0.1', port, reusePort: false })) as NativeError;
  t.ok(err instanceof NativeError);
  t.equal(err.code, 'EADDRINUSE');
  t.equal(err.syscall, 'bind');
  t.match(err.message, /bind \(127\.0\.0\.1:\d+\) failed: EADDRINUSE: Address already in use/);

  // ss lists both sockets as this process's, with their fds.
  const ss = execFileSync('ss', ['-uapnH', 'sport', '=', `:${port}`]).toString();
  const owners = [...ss.matchAll(/pid=(\d+),fd=(\d+)/g)].map((m) => `${m[1]}/${m[2]}`).sort();
  t.same(owners, [`${process.pid}/${a}`, `${process.pid}/${b}`].sort(), 'ss -uapn shows both sockets');

  // 64 flows (distinct source ports) are spread over both sockets by the 4-tuple hash.
  const dst = sockaddrIn('127.0.0.1', port);
  const msg = Buffer.from('x');
  let sent = 0;
  for (let i = 0; i < 64; i++) {
    const s = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false });
    if (sendTo(s, msg, 1, dst) === 1) sent++;
    close(s);
  }
  t.equal(sent, 64, 'sent from 64 source ports');
  setNonBlocking(a, true);
  setNonBlocking(b, true);
  const buf = Buffer.alloc(64);
  const from = allocSockaddrIn();
  const drain = (fd: number): number => {
    let n = 0;
    while (recvFrom(fd, buf, from) >= 0) n++;
    return n;
  };
  let [na, nb] = [0, 0];
  // Loopback delivers within sendto in practice; still, wait (bounded) rather than assume it.
  const deadline = Date.now() + 2000;
  while (na + nb < 64 && Date.now() < deadline) {
    na += drain(a);
    nb += drain(b);
    if (na + nb < 64) readable(a, 10) || readable(b, 10);
  }
  t.equal(na + nb, 64, 'every datagram arrived once');
  t.ok(na > 0 && nb > 0, `both sockets got flows (${na}/${nb})`);
});

t.test('recvFrom/sendTo use preallocated buffers and report the sender lazily', async (t) => {
  const rx = closeLater(t, createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false, recvBuf: 1 << 20, sendBuf: 1 << 20 }));
  const tx = closeLater(t, createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false }));
  t.ok(bufferSizes(rx).recv >= 1 << 20, 'SO_RCVBUFFORCE applied (kernel doubles it)');
  const big = Buffer.alloc(2048);
  big.write('0123456789abcdef');
  const dst = sockaddrIn('127.0.0.1', localPort(rx));
  t.equal(sendTo(tx, big, 10, dst), 10, 'only len bytes of the whole Buffer are sent');

  const buf = Buffer.alloc(65536);
  const from = allocSockaddrIn();
  t.ok(readable(rx, 2000));
  t.equal(recvFrom(rx, buf, from), 10);
  t.equal(buf.toString('utf8', 0, 10), '0123456789');
  t.equal(sockaddrIPv4(from), LOOPBACK);
  t.equal(sockaddrPort(from), localPort(tx));

  setNonBlocking(rx, true);
  t.equal(recvFrom(rx, buf, from), -11, 'empty non-blocking socket gives -EAGAIN, no throw');

  // A tight loop allocates nothing per call: the heap does not grow with the number of calls.
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200_000; i++) recvFrom(rx, buf, from);
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 1 << 20, `heap grew ${grown} bytes over 200k calls`);
});

t.test('a koffi reuseport fd can be handed to dgram', async (t) => {
  const fd = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: true });
  const port = localPort(fd);
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  await new Promise<void>((resolve) => sock.bind({ fd }, () => resolve()));
  t.equal(sock.address().port, port);
  const got = new Promise<Buffer>((resolve) => sock.once('message', (m) => resolve(m)));
  const tx = closeLater(t, createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false }));
  sendTo(tx, Buffer.from('via dgram'), 9, sockaddrIn('127.0.0.1', port));
  t.equal((await got).toString(), 'via dgram');
});
