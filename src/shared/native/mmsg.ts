/**
 * recvmmsg(2) / sendmmsg(2): one syscall, and one koffi call, for a whole batch of UDP datagrams.
 *
 * An `MmsgVector` is the kernel-facing description of a batch, built once: `struct mmsghdr[n]` whose entry i points
 * (through one `struct iovec`) at the caller's packet Buffer i and (msg_name) at its sockaddr Buffer i. The kernel
 * reads and writes those Buffers in place, so per call only the lengths change: `prepareSend` writes iov_len,
 * `prepareRecv` restores what the previous call changed, `transferred` reads msg_len back. Nothing is allocated
 * per call.
 *
 * The Buffers' addresses are taken once with koffi.address(). That is safe because taking a Buffer's address (like
 * any native access to it) moves its bytes off the V8 heap for good, and off-heap backing stores never move; the
 * vector keeps a reference to each Buffer so none is collected while the kernel may still be told its address.
 * If the caller puts a different Buffer into a slot, the entry is re-pointed (a pointer comparison per entry).
 *
 * Layouts are Linux x86_64/arm64 (LP64): struct msghdr is 56 bytes, struct mmsghdr 64 (msghdr, then the u32
 * msg_len, then padding), struct iovec 16.
 *
 * Hot-path calls return a count or -errno and never throw. `mmsgSupported` is false when libc lacks the symbols;
 * a kernel without the syscalls answers -ENOSYS, and the caller falls back to one datagram per call.
 */
import koffi from './koffi';
import { EINTR, lastErrno } from './libc';

const libc = koffi.load(null);
type KoffiFn = (...args: unknown[]) => unknown;

/** A libc function, or null when this libc does not export it (the caller then uses its fallback). */
function bindOptional(name: string, result: string, args: string[]): KoffiFn | null {
  try {
    return libc.func(name, result, args) as KoffiFn;
  } catch {
    return null;
  }
}

// int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
const c_recvmmsg = bindOptional('recvmmsg', 'int', ['int', 'void *', 'uint32_t', 'int', 'void *']);
// int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
const c_sendmmsg = bindOptional('sendmmsg', 'int', ['int', 'void *', 'uint32_t', 'int']);

/** True when libc exports both calls (the kernel may still answer ENOSYS). */
export const mmsgSupported = c_recvmmsg !== null && c_sendmmsg !== null;

export const ENOSYS = 38;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

export const MMSGHDR_SIZE = 64;
export const IOVEC_SIZE = 16;
// Offsets inside one struct mmsghdr (also used by the offload vectors, mmsg-offload.ts).
export const MSG_NAME = 0;
export const MSG_NAMELEN = 8;
export const MSG_IOV = 16;
export const MSG_IOVLEN = 24;
export const MSG_CONTROL = 32;
export const MSG_CONTROLLEN = 40;
export const MSG_FLAGS = 48;
export const MSG_LEN = 56;
// Offset of iov_len inside struct iovec.
export const IOV_LEN = 8;

/** The two syscalls as the edge calls them; a test substitutes its own to make the kernel refuse or cut short. */
export interface MmsgCalls {
  /** recvmmsg(fd, headers, count, flags, NULL): datagrams received, or -errno. */
  recvmmsg(fd: number, headers: Buffer, count: number, flags: number): number;
  /** sendmmsg(fd, headers, count, flags): datagrams the kernel took, or -errno when it took none. */
  sendmmsg(fd: number, headers: Buffer, count: number, flags: number): number;
}

/** The real calls; EINTR is retried here so callers only see real outcomes. */
export const kernelMmsg: MmsgCalls = {
  recvmmsg(fd, headers, count, flags) {
    if (c_recvmmsg === null) return -ENOSYS;
    for (;;) {
      const r = c_recvmmsg(fd, headers, count, flags, null) as number;
      if (r >= 0) return r;
      const e = lastErrno();
      if (e !== EINTR) return -e;
    }
  },
  sendmmsg(fd, headers, count, flags) {
    if (c_sendmmsg === null) return -ENOSYS;
    for (;;) {
      const r = c_sendmmsg(fd, headers, count, flags) as number;
      if (r >= 0) return r;
      const e = lastErrno();
      if (e !== EINTR) return -e;
    }
  },
};

/** `struct mmsghdr[n]` over a batch's packet and sockaddr Buffers; see the module comment. */
export class MmsgVector {
  readonly capacity: number;
  /** The mmsghdr array; `from(i)` is the same memory starting at entry i (for resuming a partial send). */
  private readonly headers: Buffer;
  private readonly iovecs: Buffer;
  private readonly tails: Buffer[] = [];
  /** The Buffers each entry points at, held so their memory stays alive and to notice a replaced Buffer. */
  private readonly bufs: Buffer[] = [];
  private readonly addrs: Buffer[] = [];
  /** Entries [0, touched) were changed by the last call and must be reset before a receive. */
  private touched = 0;

  constructor(bufs: readonly Buffer[], addrs: readonly Buffer[]) {
    if (bufs.length !== addrs.length) throw new Error(`MmsgVector: ${bufs.length} buffers but ${addrs.length} addresses`);
    this.capacity = bufs.length;
    this.headers = Buffer.alloc(MMSGHDR_SIZE * this.capacity);
    this.iovecs = Buffer.alloc(IOVEC_SIZE * this.capacity);
    const iovBase = koffi.address(this.iovecs);
    for (let i = 0; i < this.capacity; i++) {
      const h = i * MMSGHDR_SIZE;
      this.headers.writeBigUInt64LE(iovBase + BigInt(i * IOVEC_SIZE), h + MSG_IOV);
      this.headers.writeBigUInt64LE(1n, h + MSG_IOVLEN);
      this.bufs.push(bufs[i]!);
      this.addrs.push(addrs[i]!);
      this.point(i, bufs[i]!, addrs[i]!);
      this.tails.push(this.headers.subarray(h));
    }
  }

  /** The mmsghdr array from entry i on (i = 0: the whole array). Preallocated views: no allocation. */
  from(i: number): Buffer {
    return this.tails[i]!;
  }

  /**
   * Entries [0, count) are about to send `lens[i]` bytes of `bufs[i]` to `addrs[i]` (the batch's own arrays).
   */
  prepareSend(bufs: readonly Buffer[], addrs: readonly Buffer[], lens: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) {
      if (bufs[i] !== this.bufs[i] || addrs[i] !== this.addrs[i]) this.repoint(i, bufs[i]!, addrs[i]!);
      // iov_len is a size_t; its high half stays 0 (a datagram is < 64 KiB).
      this.iovecs.writeUInt32LE(lens[i]!, i * IOVEC_SIZE + IOV_LEN);
    }
    if (count > this.touched) this.touched = count;
  }

  /** The send is over (iov_len of entries [0, count) no longer covers the whole buffer). */
  sent(count: number): void {
    if (count > this.touched) this.touched = count;
  }

  /**
   * Entries [0, count) are about to receive into the whole of `bufs[i]`, the sender into `addrs[i]`. Only entries a
   * previous call changed are rewritten: a send shortened iov_len, a receive overwrote msg_namelen with the
   * sender's address length.
   */
  prepareRecv(bufs: readonly Buffer[], addrs: readonly Buffer[], count: number): void {
    const touched = this.touched;
    for (let i = 0; i < count; i++) {
      if (bufs[i] !== this.bufs[i] || addrs[i] !== this.addrs[i]) this.repoint(i, bufs[i]!, addrs[i]!);
      else if (i < touched) {
        this.iovecs.writeUInt32LE(bufs[i]!.length, i * IOVEC_SIZE + IOV_LEN);
        this.headers.writeUInt32LE(addrs[i]!.length, i * MMSGHDR_SIZE + MSG_NAMELEN);
      }
    }
    this.touched = 0;
  }

  /** A receive filled entries [0, n). */
  received(n: number): void {
    if (n > this.touched) this.touched = n;
  }

  /** msg_len of entry i after a call: bytes received (or sent). */
  transferred(i: number): number {
    return this.headers.readUInt32LE(i * MMSGHDR_SIZE + MSG_LEN);
  }

  /** msg_flags of entry i after recvmmsg (MSG_TRUNC: the datagram was longer than the buffer). */
  flags(i: number): number {
    return this.headers.readInt32LE(i * MMSGHDR_SIZE + MSG_FLAGS);
  }

  private repoint(i: number, buf: Buffer, addr: Buffer): void {
    this.bufs[i] = buf;
    this.addrs[i] = addr;
    this.point(i, buf, addr);
  }

  private point(i: number, buf: Buffer, addr: Buffer): void {
    const h = i * MMSGHDR_SIZE;
    this.headers.writeBigUInt64LE(koffi.address(addr), h + MSG_NAME);
    this.headers.writeUInt32LE(addr.length, h + MSG_NAMELEN);
    const v = i * IOVEC_SIZE;
    this.iovecs.writeBigUInt64LE(koffi.address(buf), v);
    this.iovecs.writeBigUInt64LE(BigInt(buf.length), v + IOV_LEN);
  }
}
