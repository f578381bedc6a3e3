/**
 * Underlay UDP sockets as raw fds, created with koffi because Node 20's dgram ignores `reusePort` (platform-notes
 * §3). The supervisor creates one per routine (SO_REUSEPORT on all of them, same port), keeps the fd for its whole
 * life and passes it to the routine through the `stdio` array. A routine may wrap it with
 * `dgram.createSocket('udp4').bind({fd})` or use `recvFrom`/`sendTo` below directly.
 *
 * IPv4 only for now (AF_INET); Nebula's dual-stack AF_INET6 socket is a later step.
 */
import {
  AF_INET,
  EINTR,
  NativeError,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  bindSocket,
  close,
  connectSocket,
  getsockname,
  getsockoptInt,
  recvFromFd,
  sendToFd,
  setsockoptInt,
  socket,
} from './libc';
import { allocSockaddrIn, sockaddrIn, sockaddrPort } from './sockaddr';

export interface UdpSocketOptions {
  /** "0.0.0.0" or an IPv4 address. */
  host: string;
  /** 0 lets the kernel choose (read it back with `localPort`). */
  port: number;
  /** SO_REUSEPORT, so several routines' sockets share one port and the kernel spreads 4-tuples over them. */
  reusePort: boolean;
  /** SO_RCVBUFFORCE in bytes (listen.read_buffer); the kernel doubles it for bookkeeping. */
  recvBuf?: number;
  /** SO_SNDBUFFORCE in bytes (listen.write_buffer). */
  sendBuf?: number;
}

/** A bound, blocking, close-on-exec AF_INET datagram socket. Throws NativeError (e.g. code 'EADDRINUSE'). */
export function createUdpSocket(opts: UdpSocketOptions): number {
  const addr = sockaddrIn(opts.host, opts.port);
  // CLOEXEC: without it every child process (routines, `ip`, shells) would inherit the socket (platform-notes §3).
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    if (opts.reusePort) setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (opts.recvBuf !== undefined) setBufferSize(fd, 'recv', opts.recvBuf);
    if (opts.sendBuf !== undefined) setBufferSize(fd, 'send', opts.sendBuf);
    bindSocket(fd, addr, `${opts.host}:${opts.port}`);
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * Sets SO_RCVBUFFORCE/SO_SNDBUFFORCE (bypassing net.core.rmem_max, needs CAP_NET_ADMIN). Without the capability
 * it falls back to the capped SO_RCVBUF/SO_SNDBUF rather than failing, as a rootless node can still run.
 */
export function setBufferSize(fd: number, which: 'recv' | 'send', bytes: number): void {
  const force = which === 'recv' ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
  const plain = which === 'recv' ? SO_RCVBUF : SO_SNDBUF;
  try {
    setsockoptInt(fd, SOL_SOCKET, force, bytes, which === 'recv' ? 'SO_RCVBUFFORCE' : 'SO_SNDBUFFORCE');
  } catch (err) {
    if (!(err instanceof NativeError) || err.code !== 'EPERM') throw err;
    setsockoptInt(fd, SOL_SOCKET, plain, bytes, which === 'recv' ? 'SO_RCVBUF' : 'SO_SNDBUF');
  }
}

/** The kernel's effective buffer sizes (twice what was asked, see socket(7)). */
export function bufferSizes(fd: number): { recv: number; send: number } {
  return { recv: getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF), send: getsockoptInt(fd, SOL_SOCKET, SO_SNDBUF) };
}

/**
 * Connects a datagram socket to `host:port`: the kernel then drops datagrams from anyone else. Sends that name an
 * address still go there (UDP allows it on a connected socket).
 */
export function connectUdp(fd: number, host: string, port: number): void {
  connectSocket(fd, sockaddrIn(host, port), `${host}:${port}`);
}

/** The port the socket is bound to. */
export function localPort(fd: number): number {
  const sa = allocSockaddrIn();
  getsockname(fd, sa);
  return sockaddrPort(sa);
}

// One socklen_t per module instance: JS is single-threaded per isolate and each worker thread loads its own copy,
// so recvFrom can reuse it without allocating.
const socklen = Buffer.alloc(4);

/**
 * Receives one datagram into `buf` (up to buf.length) and the sender into `sockaddr` (16 bytes, read it lazily with
 * sockaddrFamily/sockaddrPort/sockaddrIPv4). Returns the length, or -errno (-EAGAIN when a non-blocking socket is
 * empty). Retries EINTR. Allocates nothing.
 */
export function recvFrom(fd: number, buf: Buffer, sockaddr: Buffer): number {
  let n: number;
  do n = recvFromFd(fd, buf, 0, sockaddr, socklen);
  while (n === -EINTR);
  return n;
}

/** Sends `len` bytes of `buf` to `sockaddr`. Returns bytes sent or -errno. Retries EINTR. Allocates nothing. */
export function sendTo(fd: number, buf: Buffer, len: number, sockaddr: Buffer): number {
  let n: number;
  do n = sendToFd(fd, buf, len, 0, sockaddr);
  while (n === -EINTR);
  return n;
}
