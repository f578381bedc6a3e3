/**
 * Typed koffi bindings to the few libc calls the data path and the supervisor need (sockets, ioctl, memfd, mmap,
 * poll, eventfd). koffi returns `any`; every binding here is wrapped in a typed function so `any` never leaves
 * this module.
 *
 * Two error styles, on purpose:
 * - control-path wrappers (socket, bind, ioctl, mmap, ...) throw a `NativeError` naming the syscall and errno;
 * - hot-path wrappers (`readFd`, `writeFd`, `recvFromFd`, `sendToFd`, `pollFds`) never throw and never allocate:
 *   they return the byte count, or `-errno` (e.g. `-EAGAIN`), so a read loop can test a number.
 *
 * Buffers are passed to koffi as `void *`: koffi hands the Buffer's own memory to C (no copy), so passing the whole
 * preallocated Buffer plus a separate length reads/writes in place without creating a subarray per call.
 */
import koffi from './koffi';
import { getSystemErrorName } from 'node:util';

// dlopen(NULL): libc symbols already linked into the node process; no second libc is loaded.
const libc = koffi.load(null);

type KoffiFn = (...args: unknown[]) => unknown;
function bind(name: string, result: string, args: string[]): KoffiFn {
  return libc.func(name, result, args) as KoffiFn;
}

// ioctl and fcntl are variadic in C; the fixed-arity declaration is used because koffi's variadic calls are slower
// and cannot be made from `.async`. glibc's wrappers are thin syscall shims, so on x86_64/arm64 Linux an int or
// pointer third argument is passed identically either way.
const c_ioctl = bind('ioctl', 'int', ['int', 'unsigned long', 'void *']);
const c_fcntl = bind('fcntl', 'int', ['int', 'int', 'long']);
const c_socket = bind('socket', 'int', ['int', 'int', 'int']);
const c_setsockopt = bind('setsockopt', 'int', ['int', 'int', 'int', 'void *', 'uint32_t']);
const c_getsockopt = bind('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']);
const c_bind = bind('bind', 'int', ['int', 'void *', 'uint32_t']);
const c_connect = bind('connect', 'int', ['int', 'void *', 'uint32_t']);
const c_getsockname = bind('getsockname', 'int', ['int', 'void *', 'void *']);
const c_shutdown = bind('shutdown', 'int', ['int', 'int']);
const c_close = bind('close', 'int', ['int']);
const c_read = bind('read', 'long', ['int', 'void *', 'size_t']);
const c_write = bind('write', 'long', ['int', 'void *', 'size_t']);
const c_recvfrom = bind('recvfrom', 'long', ['int', 'void *', 'size_t', 'int', 'void *', 'void *']);
const c_sendto = bind('sendto', 'long', ['int', 'void *', 'size_t', 'int', 'void *', 'uint32_t']);
const c_poll = bind('poll', 'int', ['void *', 'unsigned long', 'int']);
const c_eventfd = bind('eventfd', 'int', ['unsigned int', 'int']);
const c_memfd_create = bind('memfd_create', 'int', ['str', 'unsigned int']);
const c_ftruncate = bind('ftruncate', 'int', ['int', 'int64_t']);
const c_mmap = bind('mmap', 'void *', ['void *', 'size_t', 'int', 'int', 'int', 'int64_t']);
const c_munmap = bind('munmap', 'int', ['void *', 'size_t']);
const c_strerror = bind('strerror', 'str', ['int']);

/** Linux x86_64/arm64 constants (asm-generic values; these are not the same on MIPS/SPARC). */
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_REUSEPORT = 15;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MEMINFO = 55;
/** Entries of the kernel's sk_meminfo array (u32 each) that SO_MEMINFO returns, in the kernel's order. */
export const SK_MEMINFO_FIELDS = ['rmem_alloc', 'rcvbuf', 'wmem_alloc', 'sndbuf', 'fwd_alloc', 'wmem_queued', 'optmem', 'backlog', 'drops'] as const;
export const SHUT_RDWR = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_GETFD = 1;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;
export const POLLIN = 0x001;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const MFD_CLOEXEC = 1;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_FAILED = 0xffffffffffffffffn;

/** errno values the hot-path callers test for (returned negated). */
export const EINTR = 4;
export const EAGAIN = 11;

/** A failed syscall: `code` is the errno name ('EADDRINUSE'), `errno` its (positive) number. */
export class NativeError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}${detail ? ` (${detail})` : ''} failed: ${code}: ${strerror(errno)}`);
    this.name = 'NativeError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** errno of the last failed koffi call on this thread (koffi saves it right after the call). */
export function lastErrno(): number {
  return koffi.errno();
}

export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

export function strerror(errno: number): string {
  return c_strerror(errno) as string;
}

/** Throws NativeError when a syscall returned -1; otherwise returns the result. */
function check(syscall: string, result: number, detail?: string): number {
  if (result === -1) throw new NativeError(syscall, lastErrno(), detail);
  return result;
}

/** Result of a hot-path call: the value, or -errno. */
function orErrno(result: number): number {
  return result < 0 ? -lastErrno() : result;
}

// ---- control path (throws) ----

/** ioctl(fd, req, arg) with a pointer argument (struct ifreq and friends as raw Buffers). */
export function ioctl(fd: number, request: number, arg: Buffer, detail?: string): number {
  return check('ioctl', c_ioctl(fd, request, arg) as number, detail);
}

/** ioctl(fd, req, arg) returning -errno instead of throwing (for calls whose failure is expected, e.g. EINVAL). */
export function ioctlNoThrow(fd: number, request: number, arg: Buffer): number {
  return orErrno(c_ioctl(fd, request, arg) as number);
}

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check('fcntl', c_fcntl(fd, cmd, arg) as number);
}

/** Sets or clears O_NONBLOCK. Note it belongs to the open file description: every dup/inherited copy shares it. */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFL);
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) fcntl(fd, F_SETFL, next);
}

export function isNonBlocking(fd: number): boolean {
  return (fcntl(fd, F_GETFL) & O_NONBLOCK) !== 0;
}

export function isCloseOnExec(fd: number): boolean {
  return (fcntl(fd, F_GETFD) & FD_CLOEXEC) !== 0;
}

export function socket(domain: number, type: number, protocol = 0): number {
  return check('socket', c_socket(domain, type, protocol) as number);
}

/** setsockopt with an int value (all options used here are ints). */
export function setsockoptInt(fd: number, level: number, option: number, value: number, detail?: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  check('setsockopt', c_setsockopt(fd, level, option, v, 4) as number, detail);
}

export function getsockoptInt(fd: number, level: number, option: number): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  check('getsockopt', c_getsockopt(fd, level, option, v, len) as number);
  return v.readInt32LE(0);
}

/**
 * getsockopt(SOL_SOCKET, SO_MEMINFO): the socket's memory accounting (SK_MEMINFO_FIELDS order), or undefined when the
 * call fails (an old kernel, a closed fd). Never throws: it is read at scrape time.
 */
export function socketMemInfo(fd: number): number[] | undefined {
  const v = Buffer.alloc(4 * SK_MEMINFO_FIELDS.length);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(v.length, 0);
  if ((c_getsockopt(fd, SOL_SOCKET, SO_MEMINFO, v, len) as number) !== 0) return undefined;
  const got = Math.min(len.readUInt32LE(0), v.length) >>> 2;
  const out: number[] = [];
  for (let i = 0; i < SK_MEMINFO_FIELDS.length; i++) out.push(i < got ? v.readUInt32LE(i * 4) : 0);
  return out;
}

export function bindSocket(fd: number, sockaddr: Buffer, detail?: string): void {
  check('bind', c_bind(fd, sockaddr, sockaddr.length) as number, detail);
}

/** connect(2): for a datagram socket, the only address it then receives from. */
export function connectSocket(fd: number, sockaddr: Buffer, detail?: string): void {
  check('connect', c_connect(fd, sockaddr, sockaddr.length) as number, detail);
}

/** getsockname into `sockaddr` (which must be large enough); returns the address length. */
export function getsockname(fd: number, sockaddr: Buffer): number {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(sockaddr.length, 0);
  check('getsockname', c_getsockname(fd, sockaddr, len) as number);
  return len.readUInt32LE(0);
}

/** shutdown(2). On a UDP socket this wakes a thread blocked in recvfrom (it returns 0). */
export function shutdown(fd: number, how: number): void {
  check('shutdown', c_shutdown(fd, how) as number);
}

export function close(fd: number): void {
  check('close', c_close(fd) as number);
}

export function eventfd(initval = 0, flags = EFD_CLOEXEC): number {
  return check('eventfd', c_eventfd(initval, flags) as number);
}

export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  return check('memfd_create', c_memfd_create(name, flags) as number);
}

export function ftruncate(fd: number, length: number): void {
  check('ftruncate', c_ftruncate(fd, length) as number);
}

/** mmap of a whole fd; returns the mapping's address. */
export function mmap(length: number, prot: number, flags: number, fd: number, offset = 0): bigint {
  const p = c_mmap(null, length, prot, flags, fd, offset) as bigint | null;
  if (p === null || p === MAP_FAILED) throw new NativeError('mmap', lastErrno());
  return p;
}

export function munmap(addr: bigint, length: number): void {
  check('munmap', c_munmap(addr, length) as number);
}

// ---- hot path (returns -errno, allocates nothing) ----

/** read(fd, buf, len): bytes read (0 = EOF), or -errno (-EAGAIN on an empty non-blocking fd). */
export function readFd(fd: number, buf: Buffer, len: number): number {
  return orErrno(c_read(fd, buf, len) as number);
}

/** write(fd, buf, len): bytes written, or -errno. One call = one packet on a tun fd. */
export function writeFd(fd: number, buf: Buffer, len: number): number {
  return orErrno(c_write(fd, buf, len) as number);
}

/**
 * recvfrom(fd, buf, buf.length, flags, sockaddr, &socklen). `socklen` is a caller-owned 4-byte Buffer; it is set to
 * `sockaddr.length` here before the call, so the caller just keeps one alongside its sockaddr Buffer.
 */
export function recvFromFd(fd: number, buf: Buffer, flags: number, sockaddr: Buffer, socklen: Buffer): number {
  socklen.writeUInt32LE(sockaddr.length, 0);
  return orErrno(c_recvfrom(fd, buf, buf.length, flags, sockaddr, socklen) as number);
}

/** sendto(fd, buf, len, flags, sockaddr, sizeof sockaddr): bytes sent, or -errno. */
export function sendToFd(fd: number, buf: Buffer, len: number, flags: number, sockaddr: Buffer): number {
  return orErrno(c_sendto(fd, buf, len, flags, sockaddr, sockaddr.length) as number);
}

/**
 * poll(fds, n, timeoutMs) over a caller-built `struct pollfd[]` Buffer (8 bytes each: int fd, short events, short
 * revents). Returns the ready count, 0 on timeout, or -errno.
 */
export function pollFds(pollfds: Buffer, count: number, timeoutMs: number): number {
  return orErrno(c_poll(pollfds, count, timeoutMs) as number);
}
