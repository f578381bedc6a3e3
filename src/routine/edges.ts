/**
 * The data path's two edges, as small batch-shaped interfaces (in the spirit of wireguard-go's `tun.Device` and
 * `conn.Bind`): the inside queue (a tun queue or a userspace seqpacket) and the underlay UDP socket. The data path is
 * written against these alone, so it runs unchanged over real fds (fd-edges.ts) or in memory (the unit tests), and
 * batched syscalls (recvmmsg/sendmmsg, offloads) can replace one-packet-per-call edges without touching its logic.
 *
 * A batch is preallocated once: `bufs[i]` holds packet i, `lens[i]` its length; a datagram batch adds `addrs[i]`,
 * the peer's sockaddr_in. Edges fill or drain a prefix of a batch and report how many entries they handled.
 */
import { allocSockaddrIn } from '../shared/native/sockaddr';

export class PacketBatch {
  readonly bufs: Buffer[] = [];
  readonly lens: Int32Array;

  constructor(
    readonly capacity: number,
    bufferBytes: number,
  ) {
    this.lens = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.bufs.push(Buffer.alloc(bufferBytes));
  }
}

export class DatagramBatch extends PacketBatch {
  readonly addrs: Buffer[] = [];

  constructor(capacity: number, bufferBytes: number) {
    super(capacity, bufferBytes);
    for (let i = 0; i < capacity; i++) this.addrs.push(allocSockaddrIn());
  }
}

/** One queue of the inside device: raw IP packets, one per entry. */
export interface InsideQueue {
  /** Reads what is ready into batch entries 0..; returns how many (0 when nothing is ready). Never blocks. */
  readBatch(batch: PacketBatch): number;
  /**
   * Writes entries [0, count); returns how many were written. A failed entry is skipped, not retried, and its
   * `lens[i]` is set to -errno so the caller can count it.
   */
  writeBatch(batch: PacketBatch, count: number): number;
}

/** The routine's underlay UDP socket: datagrams with their peer's sockaddr_in. */
export interface UnderlaySocket {
  /** Receives what is ready into batch entries 0.. (data and sender); returns how many. Never blocks. */
  recvBatch(batch: DatagramBatch): number;
  /** Sends entries [0, count) each to its addrs[i]; returns how many were sent. A failed entry gets lens[i] = -errno. */
  sendBatch(batch: DatagramBatch, count: number): number;
  /**
   * True when datagrams already taken from the kernel wait for the next recvBatch (a UDP GRO receive that brought
   * more than the batch holds, offload-underlay.ts): the caller must ask again, as poll() will not say so. Edges
   * that never hold any leave it out.
   */
  pending?(): boolean;
}
