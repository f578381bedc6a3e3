/**
 * Typed koffi helpers for AF_UNIX sockets: seqpacket socketpairs, a listening socket, non-blocking accept, and
 * SCM_RIGHTS fd passing (platform-notes §3). Node's `net` cannot pass arbitrary fds (a seqpacket fd sent through
 * it aborts the receiver), so the userspace inside hands its packet fds over with hand-built sendmsg/recvmsg.
 *
 * Layouts are Linux x86_64/arm64 (LP64): struct msghdr is 56 bytes, struct cmsghdr a 16-byte header, cmsg data
 * aligned to 8. Every fd created here is CLOEXEC so it never leaks into the routines forked by the supervisor.
 */
import { chmodSync } from 'node:fs';
import koffi from './koffi';
import { NativeError, lastErrno, close, SOCK_CLOEXEC, SOCK_NONBLOCK, SOL_SOCKET, EAGAIN, EINTR } from './libc';

const libc = koffi.load(null);
type KoffiFn = (...args: unknown[]) => unknown;
function bind(name: string, result: string, args: string[]): KoffiFn {
  return libc.func(name, result, args) as KoffiFn;
}

const c_socket = bind('socket', 'int', ['int', 'int', 'int']);
const c_socketpair = bind('socketpair', 'int', ['int', 'int', 'int', 'void *']);
const c_bind = bind('bind', 'int', ['int', 'void *', 'uint32_t']);
const c_listen = bind('listen', 'int', ['int', 'int']);
const c_accept4 = bind('accept4', 'int', ['int', 'void *', 'void *', 'int']);
const c_connect = bind('connect', 'int', ['int', 'void *', 'uint32_t']);
const c_sendmsg = bind('sendmsg', 'long', ['int', 'void *', 'int']);
const c_recvmsg = bind('recvmsg', 'long', ['int', 'void *', 'int']);
const c_umask = bind('umask', 'uint32_t', ['uint32_t']);

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** sizeof(sun_path) on Linux; the path plus its NUL must fit. */
const SUN_PATH_MAX = 108;

const MSGHDR_SIZE = 56;
const CMSGHDR_SIZE = 16;
const align8 = (n: number): number => (n + 7) & ~7;
const cmsgSpace = (dataLen: number): number => CMSGHDR_SIZE + align8(dataLen);

function check(syscall: string, result: number, detail?: string): number {
  if (result === -1) throw new NativeError(syscall, lastErrno(), detail);
  return result;
}

/** socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC): one packet per write, boundaries kept, like a tun queue. */
export function socketpairSeqpacket(): [number, number] {
  const sv = Buffer.alloc(8);
  check('socketpair', c_socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) as number);
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

/** struct sockaddr_un: u16 family + 108-byte path. Returned at its full size (the kernel accepts it). */
function sockaddrUn(path: string): Buffer {
  const p = Buffer.from(path, 'utf8');
  if (p.length === 0 || p.length >= SUN_PATH_MAX) throw new Error(`unix socket path must be 1..${SUN_PATH_MAX - 1} bytes: ${path}`);
  const sa = Buffer.alloc(2 + SUN_PATH_MAX);
  sa.writeUInt16LE(AF_UNIX, 0);
  p.copy(sa, 2);
  return sa;
}

/**
 * A non-blocking listening unix socket at `path` with mode 0600. The umask is tightened around bind() so the file
 * is never briefly more open than 0600 (a chmod afterwards alone would leave a window); the chmod then makes the
 * mode exact whatever the umask was. The caller removes a stale file first.
 */
export function listenUnix(path: string, type: typeof SOCK_SEQPACKET | typeof SOCK_STREAM, backlog = 16): number {
  const sa = sockaddrUn(path);
  const fd = check('socket', c_socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) as number);
  try {
    const old = c_umask(0o177) as number;
    try {
      check('bind', c_bind(fd, sa, sa.length) as number, path);
    } finally {
      c_umask(old);
    }
    chmodSync(path, 0o600);
    check('listen', c_listen(fd, backlog) as number, path);
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/** accept4 on a non-blocking listening socket: the new (blocking, CLOEXEC) fd, or -EAGAIN when nobody waits. */
export function acceptNonBlocking(fd: number): number {
  const r = c_accept4(fd, null, null, SOCK_CLOEXEC) as number;
  if (r >= 0) return r;
  const e = lastErrno();
  if (e === EAGAIN || e === EINTR) return -EAGAIN;
  throw new NativeError('accept4', e);
}

/** A blocking connect to a unix socket (control plane: the peer is local and accepts promptly). */
export function connectUnix(path: string, type: typeof SOCK_SEQPACKET | typeof SOCK_STREAM): number {
  const sa = sockaddrUn(path);
  const fd = check('socket', c_socket(AF_UNIX, type | SOCK_CLOEXEC, 0) as number);
  try {
    check('connect', c_connect(fd, sa, sa.length) as number, path);
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/** struct msghdr over one iovec; `iov` and `control` must stay referenced until the syscall returns. */
function msghdr(iov: Buffer, control: Buffer | null): Buffer {
  const msg = Buffer.alloc(MSGHDR_SIZE); // msg_name NULL, msg_namelen 0, msg_flags 0
  msg.writeBigUInt64LE(koffi.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (control) {
    msg.writeBigUInt64LE(koffi.address(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  return msg;
}

function iovec(data: Buffer): Buffer {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(koffi.address(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  return iov;
}

/** sendmsg of `payload` with `fds` attached as one SCM_RIGHTS message (the kernel dups them into the receiver). */
export function sendFds(sock: number, payload: Buffer, fds: readonly number[]): void {
  if (payload.length === 0) throw new Error('sendFds: empty payload (a zero-length seqpacket reads as EOF)');
  const dataLen = 4 * fds.length;
  const control = fds.length > 0 ? Buffer.alloc(cmsgSpace(dataLen)) : null;
  if (control) {
    control.writeBigUInt64LE(BigInt(CMSGHDR_SIZE + dataLen), 0); // CMSG_LEN: header + data, unpadded
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((fd, i) => control.writeInt32LE(fd, CMSGHDR_SIZE + 4 * i));
  }
  const iov = iovec(payload);
  const msg = msghdr(iov, control);
  const n = check('sendmsg', c_sendmsg(sock, msg, MSG_NOSIGNAL) as number);
  if (n !== payload.length) throw new Error(`sendmsg: short send (${n} of ${payload.length} bytes)`);
}

/**
 * recvmsg of one message with up to `maxFds` SCM_RIGHTS fds, received CLOEXEC. Throws (after closing whatever
 * arrived) when the fds did not fit, so a caller never silently loses descriptors.
 */
export function recvFds(sock: number, maxFds: number, maxPayload = 4096): { payload: Buffer; fds: number[] } {
  const data = Buffer.alloc(maxPayload);
  const control = Buffer.alloc(cmsgSpace(4 * Math.max(1, maxFds)));
  const iov = iovec(data);
  const msg = msghdr(iov, control);
  const n = check('recvmsg', c_recvmsg(sock, msg, MSG_CMSG_CLOEXEC) as number);
  const controlLen = Number(msg.readBigUInt64LE(40));
  const flags = msg.readInt32LE(48);
  const fds: number[] = [];
  for (let off = 0; off + CMSGHDR_SIZE <= controlLen; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSGHDR_SIZE) break;
    if (control.readInt32LE(off + 8) === SOL_SOCKET && control.readInt32LE(off + 12) === SCM_RIGHTS) {
      for (let p = off + CMSGHDR_SIZE; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    }
    off += align8(len);
  }
  if (flags & MSG_CTRUNC) {
    for (const fd of fds) close(fd);
    throw new Error(`recvmsg: control data truncated (more than ${maxFds} fds sent)`);
  }
  return { payload: data.subarray(0, n), fds };
}
