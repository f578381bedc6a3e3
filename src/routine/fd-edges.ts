/**
 * The real edges over file descriptors: the routine's tun queue (or userspace seqpacket) and its UDP socket, both
 * non-blocking, driven by synchronous koffi calls from the data-path thread (never the libuv threadpool).
 *
 * The underlay moves a whole batch per syscall with recvmmsg/sendmmsg (one koffi call per batch, as Go nebula's
 * `listen.batch`), over an `MmsgVector` built once per batch object and reused: per packet only a length is written
 * or read. When the kernel answers ENOSYS (or libc lacks the calls) the socket falls back for good to one
 * recvfrom/sendto per datagram, which is also what `batching: 'single'` selects. The inside queue is one
 * read/write per packet (a tun fd has no batch call: writev would merge packets), unless the supervisor opened the
 * tun with offloads (`tun.offloads`): then a read may bring a super-packet of many packets (vnet-inside-queue.ts).
 */
import { EAGAIN, readFd, writeFd } from '../shared/native/libc';
import { ENOSYS, MSG_DONTWAIT, MmsgVector, kernelMmsg, type MmsgCalls } from '../shared/native/mmsg';
import { recvFrom, sendTo } from '../shared/native/udp';
import { fdHasVnetHeader } from '../shared/native/virtio-net';
import type { DatagramBatch, InsideQueue, PacketBatch, UnderlaySocket } from './edges';
import { VnetInsideQueue, type EdgeCounters } from './vnet-inside-queue';

/**
 * The edge for a routine's inside fd. The fd itself says which kind it is: a tun queue opened with IFF_VNET_HDR
 * (the supervisor asked for offloads and the kernel took them) carries virtio-net headers; anything else (a plain
 * tun queue, the userspace inside's socket) carries bare packets. `counters`: this routine's row, where the offload
 * edge counts super-packets and refused reads.
 */
export function insideQueueFor(fd: number, counters: EdgeCounters): InsideQueue {
  return fdHasVnetHeader(fd) ? new VnetInsideQueue(fd, counters) : new FdInsideQueue(fd);
}

export class FdInsideQueue implements InsideQueue {
  constructor(readonly fd: number) {}

  readBatch(batch: PacketBatch): number {
    let n = 0;
    while (n < batch.capacity) {
      const buf = batch.bufs[n]!;
      const len = readFd(this.fd, buf, buf.length);
      if (len <= 0) break;
      batch.lens[n++] = len;
    }
    return n;
  }

  writeBatch(batch: PacketBatch, count: number): number {
    let written = 0;
    for (let i = 0; i < count; i++) {
      const r = writeFd(this.fd, batch.bufs[i]!, batch.lens[i]!);
      if (r > 0) written++;
      else batch.lens[i] = r < 0 ? r : -1;
    }
    return written;
  }
}

export interface UnderlayIoOptions {
  /** 'batch' (default): recvmmsg/sendmmsg, falling back to 'single' on ENOSYS; 'single': one datagram per call. */
  batching?: 'batch' | 'single';
  /** The syscalls used for 'batch' (a test substitutes its own to make the kernel refuse or cut a send short). */
  calls?: MmsgCalls;
}

/** -errno given to entries a send never offered to the kernel because it stopped taking any (EAGAIN, ENOBUFS). */
const ENOBUFS = 105;

export class FdUnderlaySocket implements UnderlaySocket {
  private batched: boolean;
  private readonly calls: MmsgCalls;
  /** One vector per batch object (the data path has two: its receive batch and its outbox). */
  private readonly vectors = new WeakMap<DatagramBatch, MmsgVector>();
  private lastBatch: DatagramBatch | null = null;
  private lastVector: MmsgVector | null = null;

  constructor(
    readonly fd: number,
    options: UnderlayIoOptions = {},
  ) {
    this.batched = options.batching !== 'single';
    this.calls = options.calls ?? kernelMmsg;
  }

  /** How datagrams move now: 'batch' until the kernel refused recvmmsg/sendmmsg, then 'single'. */
  get mode(): 'batch' | 'single' {
    return this.batched ? 'batch' : 'single';
  }

  recvBatch(batch: DatagramBatch): number {
    if (!this.batched) return this.recvSingle(batch);
    const vec = this.vectorFor(batch);
    vec.prepareRecv(batch.bufs, batch.addrs, batch.capacity);
    // MSG_DONTWAIT: return what is queued now, whatever the fd's own flags say.
    const n = this.calls.recvmmsg(this.fd, vec.from(0), batch.capacity, MSG_DONTWAIT);
    if (n === -ENOSYS) {
      this.batched = false;
      return this.recvSingle(batch);
    }
    // Any other error (EAGAIN: nothing queued) ends this batch, as a failing recvfrom does on the single path.
    if (n <= 0) return 0;
    vec.received(n);
    const lens = batch.lens;
    // A datagram longer than its buffer arrives truncated to it (msg_len = buffer length), as with recvfrom: it
    // then fails authentication, as in Go.
    for (let i = 0; i < n; i++) lens[i] = vec.transferred(i);
    return n;
  }

  /**
   * Sends entries [0, count) with as few sendmmsg calls as the kernel allows. sendmmsg stops at the first datagram
   * it refuses and reports only how many it took before it; the refused one is retried alone, which gives its
   * -errno (EMSGSIZE, EACCES, ENETUNREACH, ...) to mark it, and the rest continue after it. When the socket takes
   * nothing at all (EAGAIN: send buffer full; ENOBUFS) the rest of the batch is dropped and marked rather than
   * tried one by one.
   */
  sendBatch(batch: DatagramBatch, count: number): number {
    if (count <= 0) return 0;
    if (!this.batched) return this.sendSingle(batch, 0, count);
    const vec = this.vectorFor(batch);
    vec.prepareSend(batch.bufs, batch.addrs, batch.lens, count);
    const lens = batch.lens;
    let done = 0;
    let sent = 0;
    while (done < count) {
      const r = this.calls.sendmmsg(this.fd, vec.from(done), count - done, 0);
      if (r > 0) {
        done += r;
        sent += r;
      } else if (r === -ENOSYS) {
        this.batched = false;
        return sent + this.sendSingle(batch, done, count);
      } else if (r === -EAGAIN || r === -ENOBUFS) {
        for (let i = done; i < count; i++) lens[i] = r;
        break;
      } else {
        // 0 cannot happen for count > 0; treat it as a refusal so the loop always advances.
        lens[done++] = r < 0 ? r : -ENOBUFS;
      }
    }
    vec.sent(count);
    return sent;
  }

  private vectorFor(batch: DatagramBatch): MmsgVector {
    if (batch === this.lastBatch) return this.lastVector!;
    let vec = this.vectors.get(batch);
    if (vec === undefined) {
      vec = new MmsgVector(batch.bufs, batch.addrs);
      this.vectors.set(batch, vec);
    }
    this.lastBatch = batch;
    this.lastVector = vec;
    return vec;
  }

  private recvSingle(batch: DatagramBatch): number {
    let n = 0;
    while (n < batch.capacity) {
      const len = recvFrom(this.fd, batch.bufs[n]!, batch.addrs[n]!);
      if (len < 0) break;
      batch.lens[n++] = len;
    }
    return n;
  }

  private sendSingle(batch: DatagramBatch, from: number, count: number): number {
    let sent = 0;
    for (let i = from; i < count; i++) {
      const r = sendTo(this.fd, batch.bufs[i]!, batch.lens[i]!, batch.addrs[i]!);
      if (r >= 0) sent++;
      else batch.lens[i] = r;
    }
    return sent;
  }
}
