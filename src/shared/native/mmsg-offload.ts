/**
 * recvmmsg/sendmmsg vectors for the UDP offloads (udp-offload.ts), built once and reused like `MmsgVector`
 * (mmsg.ts, whose layout constants they share): per call only lengths and a few pointers are written, as two
 * 32-bit halves through a Uint32Array, so nothing is allocated per call (no BigInt arithmetic either).
 *
 * - `GroReceiveVector`: a few large slots (each can take a whole coalesced buffer, up to 64 KiB) with their own
 *   sender address and control buffer, in which the kernel puts the UDP_GRO segment size.
 * - `GsoSendVector`: over a send batch's own Buffers (one iovec per datagram, pointing at the datagram's Buffer);
 *   message m covers a run of consecutive datagrams, its iovecs gathered by the kernel into one send that the
 *   UDP_SEGMENT control message cuts back into those datagrams. A message of one datagram carries no control
 *   message and is an ordinary send.
 */
import koffi from './koffi';
import { IOVEC_SIZE, IOV_LEN, MMSGHDR_SIZE, MSG_CONTROL, MSG_CONTROLLEN, MSG_FLAGS, MSG_IOV, MSG_IOVLEN, MSG_LEN, MSG_NAME, MSG_NAMELEN } from './mmsg';
import { SOCKADDR_IN_SIZE } from './sockaddr';
import { GRO_CONTROL_BYTES, GRO_MAX_BYTES, SEGMENT_CMSG_SPACE, groSegmentSize, writeSegmentCmsg } from './udp-offload';

const TWO_32 = 0x100000000n;

/**
 * memcpy(dst, src, n) with the source as a plain number address: a datagram is copied out of the middle of a GRO
 * slot without the Uint8Array view Buffer.copy makes for a sub-range (one allocation per datagram). x86_64/arm64
 * pass a pointer and a uint64 alike, and user-space addresses (< 2^48) are exact as numbers. The result (dst) is
 * not needed: declared void, so no BigInt is made for it.
 */
const c_memcpy = koffi.load(null).func('memcpy', 'void', ['void *', 'uint64_t', 'size_t']) as (dst: Buffer, src: number, n: number) => void;

/** A Uint32Array over a whole Buffer from Buffer.alloc (its own ArrayBuffer, so 8-byte aligned). */
function words(buf: Buffer): Uint32Array {
  if (buf.byteOffset % 8 !== 0) throw new Error('mmsg-offload: unaligned buffer');
  return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
}

/** Writes a 64-bit pointer into `w` at byte offset `off` (8-aligned) from its precomputed halves. */
function putPointer(w: Uint32Array, off: number, lo: number, hi: number): void {
  w[off >>> 2] = lo;
  w[(off >>> 2) + 1] = hi;
}

/** recvmmsg over `capacity` slots of `slotBytes`, each with its sender and its control data. */
export class GroReceiveVector {
  readonly capacity: number;
  readonly slotBytes: number;
  private readonly headers: Buffer;
  private readonly h32: Uint32Array;
  private readonly iovecs: Buffer;
  private readonly control: Buffer;
  /** Slot i's bytes and sender (preallocated views of two Buffers). */
  private readonly slots: Buffer[] = [];
  private readonly names: Buffer[] = [];
  /** Address of slot 0's first byte, as a number (for copyOut). */
  private readonly dataAddress: number;
  /** Entries [0, touched) were written by the last receive (msg_namelen, msg_controllen) and must be reset. */
  private touched = 0;

  constructor(capacity: number, slotBytes = GRO_MAX_BYTES) {
    this.capacity = capacity;
    this.slotBytes = slotBytes;
    this.headers = Buffer.alloc(MMSGHDR_SIZE * capacity);
    this.h32 = words(this.headers);
    this.iovecs = Buffer.alloc(IOVEC_SIZE * capacity);
    this.control = Buffer.alloc(GRO_CONTROL_BYTES * capacity);
    const data = Buffer.alloc(slotBytes * capacity);
    const names = Buffer.alloc(SOCKADDR_IN_SIZE * capacity);
    const dataBase = koffi.address(data);
    this.dataAddress = Number(dataBase);
    const namesBase = koffi.address(names);
    const iovBase = koffi.address(this.iovecs);
    const controlBase = koffi.address(this.control);
    for (let i = 0; i < capacity; i++) {
      const h = i * MMSGHDR_SIZE;
      this.headers.writeBigUInt64LE(namesBase + BigInt(i * SOCKADDR_IN_SIZE), h + MSG_NAME);
      this.headers.writeBigUInt64LE(iovBase + BigInt(i * IOVEC_SIZE), h + MSG_IOV);
      this.headers.writeBigUInt64LE(1n, h + MSG_IOVLEN);
      this.headers.writeBigUInt64LE(controlBase + BigInt(i * GRO_CONTROL_BYTES), h + MSG_CONTROL);
      this.iovecs.writeBigUInt64LE(dataBase + BigInt(i * slotBytes), i * IOVEC_SIZE);
      this.iovecs.writeBigUInt64LE(BigInt(slotBytes), i * IOVEC_SIZE + IOV_LEN);
      this.slots.push(data.subarray(i * slotBytes, (i + 1) * slotBytes));
      this.names.push(names.subarray(i * SOCKADDR_IN_SIZE, (i + 1) * SOCKADDR_IN_SIZE));
    }
    this.touched = capacity;
    this.prepare();
  }

  /** The mmsghdr array to hand to recvmmsg. */
  get vector(): Buffer {
    return this.headers;
  }

  /** Before a receive: the name and control lengths the kernel overwrote are set back to the room there is. */
  prepare(): void {
    const w = this.h32;
    for (let i = 0; i < this.touched; i++) {
      const h = (i * MMSGHDR_SIZE) >>> 2;
      w[h + (MSG_NAMELEN >>> 2)] = SOCKADDR_IN_SIZE;
      w[h + (MSG_CONTROLLEN >>> 2)] = GRO_CONTROL_BYTES;
      w[h + (MSG_CONTROLLEN >>> 2) + 1] = 0;
    }
    this.touched = 0;
  }

  /** A receive filled slots [0, n). */
  received(n: number): void {
    if (n > this.touched) this.touched = n;
  }

  /** Bytes in slot i (msg_len). */
  length(i: number): number {
    return this.h32[(i * MMSGHDR_SIZE + MSG_LEN) >>> 2]!;
  }

  /** msg_flags of slot i (MSG_TRUNC: cut to the slot; MSG_CTRUNC: control data cut). */
  flags(i: number): number {
    return this.h32[(i * MMSGHDR_SIZE + MSG_FLAGS) >>> 2]! | 0;
  }

  /** The UDP_GRO segment size of slot i, or 0 when the slot holds one datagram. */
  segmentSize(i: number): number {
    const controlLen = this.h32[(i * MMSGHDR_SIZE + MSG_CONTROLLEN) >>> 2]!;
    return groSegmentSize(this.control, i * GRO_CONTROL_BYTES, Math.min(controlLen, GRO_CONTROL_BYTES));
  }

  slot(i: number): Buffer {
    return this.slots[i]!;
  }

  /** Copies `n` bytes of slot i from `offset` to the start of `dst`; allocates nothing. */
  copyOut(i: number, offset: number, dst: Buffer, n: number): void {
    // The one bounds check between JS and a raw memcpy: never past the slot or the destination.
    if (offset < 0 || n < 0 || offset + n > this.slotBytes || n > dst.length || i < 0 || i >= this.capacity) {
      throw new RangeError(`GroReceiveVector.copyOut: slot ${i} [${offset}, ${offset + n}) into ${dst.length} bytes`);
    }
    if (n > 0) c_memcpy(dst, this.dataAddress + i * this.slotBytes + offset, n);
  }

  /** The sender of slot i (sockaddr_in). */
  addr(i: number): Buffer {
    return this.names[i]!;
  }
}

/** sendmmsg over a send batch's Buffers, grouping runs of datagrams into GSO messages. */
export class GsoSendVector {
  readonly capacity: number;
  private readonly headers: Buffer;
  private readonly h32: Uint32Array;
  private readonly iovecs: Buffer;
  private readonly iov32: Uint32Array;
  private readonly control: Buffer;
  private readonly tails: Buffer[] = [];
  /** The Buffers each iovec / name points at (held alive, and compared to notice a replaced Buffer). */
  private readonly bufs: Buffer[] = [];
  private readonly addrs: Buffer[] = [];
  /** Pointer halves, precomputed: datagram i's sockaddr and iovec, message m's control buffer. */
  private readonly nameLo: Uint32Array;
  private readonly nameHi: Uint32Array;
  private readonly iovLo: Uint32Array;
  private readonly iovHi: Uint32Array;
  private readonly controlLo: Uint32Array;
  private readonly controlHi: Uint32Array;

  constructor(bufs: readonly Buffer[], addrs: readonly Buffer[]) {
    if (bufs.length !== addrs.length) throw new Error(`GsoSendVector: ${bufs.length} buffers but ${addrs.length} addresses`);
    const n = bufs.length;
    this.capacity = n;
    this.headers = Buffer.alloc(MMSGHDR_SIZE * n);
    this.h32 = words(this.headers);
    this.iovecs = Buffer.alloc(IOVEC_SIZE * n);
    this.iov32 = words(this.iovecs);
    this.control = Buffer.alloc(SEGMENT_CMSG_SPACE * n);
    this.nameLo = new Uint32Array(n);
    this.nameHi = new Uint32Array(n);
    this.iovLo = new Uint32Array(n);
    this.iovHi = new Uint32Array(n);
    this.controlLo = new Uint32Array(n);
    this.controlHi = new Uint32Array(n);
    const iovBase = koffi.address(this.iovecs);
    const controlBase = koffi.address(this.control);
    for (let i = 0; i < n; i++) {
      this.bufs.push(bufs[i]!);
      this.addrs.push(addrs[i]!);
      this.point(i, bufs[i]!, addrs[i]!);
      const iov = iovBase + BigInt(i * IOVEC_SIZE);
      this.iovLo[i] = Number(iov % TWO_32);
      this.iovHi[i] = Number(iov / TWO_32);
      const ctl = controlBase + BigInt(i * SEGMENT_CMSG_SPACE);
      this.controlLo[i] = Number(ctl % TWO_32);
      this.controlHi[i] = Number(ctl / TWO_32);
      this.tails.push(this.headers.subarray(i * MMSGHDR_SIZE));
    }
  }

  /** The mmsghdr array from message m on (preallocated views). */
  from(m: number): Buffer {
    return this.tails[m]!;
  }

  /** Datagrams [first, end) are about to be sent: their iovecs get `lens[i]` (and the batch's Buffers, if replaced). */
  prepare(bufs: readonly Buffer[], addrs: readonly Buffer[], lens: Int32Array, first: number, end: number): void {
    const w = this.iov32;
    for (let i = first; i < end; i++) {
      if (bufs[i] !== this.bufs[i] || addrs[i] !== this.addrs[i]) this.point(i, bufs[i]!, addrs[i]!);
      // iov_len is a size_t; its high half stays 0 (a datagram is < 64 KiB).
      w[(i * IOVEC_SIZE + IOV_LEN) >>> 2] = lens[i]!;
    }
  }

  /**
   * Message m sends datagrams [first, first + count) to datagram `first`'s address; `segmentSize` > 0 makes it one
   * GSO send of those datagrams (all of that size but the last, which may be shorter), 0 an ordinary one (count 1).
   */
  setMessage(m: number, first: number, count: number, segmentSize: number): void {
    const w = this.h32;
    const h = m * MMSGHDR_SIZE;
    putPointer(w, h + MSG_NAME, this.nameLo[first]!, this.nameHi[first]!);
    w[(h + MSG_NAMELEN) >>> 2] = SOCKADDR_IN_SIZE;
    putPointer(w, h + MSG_IOV, this.iovLo[first]!, this.iovHi[first]!);
    putPointer(w, h + MSG_IOVLEN, count, 0);
    if (segmentSize > 0) {
      writeSegmentCmsg(this.control, m * SEGMENT_CMSG_SPACE, segmentSize);
      putPointer(w, h + MSG_CONTROL, this.controlLo[m]!, this.controlHi[m]!);
      putPointer(w, h + MSG_CONTROLLEN, SEGMENT_CMSG_SPACE, 0);
    } else {
      putPointer(w, h + MSG_CONTROL, 0, 0);
      putPointer(w, h + MSG_CONTROLLEN, 0, 0);
    }
  }

  /** Points datagram i's iovec at `buf` and remembers its sockaddr (control path: a Buffer was replaced). */
  private point(i: number, buf: Buffer, addr: Buffer): void {
    this.bufs[i] = buf;
    this.addrs[i] = addr;
    const name = koffi.address(addr);
    this.nameLo[i] = Number(name % TWO_32);
    this.nameHi[i] = Number(name / TWO_32);
    this.iovecs.writeBigUInt64LE(koffi.address(buf), i * IOVEC_SIZE);
  }
}
