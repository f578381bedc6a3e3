/**
 * Splitting what a UDP GRO receive handed over (udp-offload.ts) back into the datagrams the peer sent: a slot with a
 * segment size is datagrams of exactly that size, the last one possibly shorter; a slot without is one datagram.
 * Each datagram is copied into its own entry of the data path's receive batch, with the slot's sender, so the data
 * path sees exactly what a receive without GRO would have given it (and parses, decrypts and replay-checks each one
 * as before).
 *
 * A receive may bring more datagrams than the batch has room for (a slot holds up to 64): what does not fit stays
 * here, `pending`, and is handed out by the next calls, in order.
 */
import type { DatagramBatch } from './edges';

/** What a GRO receive produced (GroReceiveVector; plain arrays in the tests). */
export interface CoalescedSlots {
  /** Bytes in slot i. */
  length(i: number): number;
  /** The UDP_GRO segment size of slot i, or 0 when it holds one datagram. */
  segmentSize(i: number): number;
  /** Copies `n` bytes of slot i from `offset` to the start of `dst` (n <= dst.length), allocating nothing. */
  copyOut(i: number, offset: number, dst: Buffer, n: number): void;
  /** The sender of slot i (sockaddr_in, 16 bytes). */
  addr(i: number): Buffer;
}

export class GroSplitter {
  private slots: CoalescedSlots | null = null;
  private readonly lens: Int32Array;
  private readonly segments: Int32Array;
  private count = 0;
  /** The slot being handed out, and the offset of its next datagram. */
  private at = 0;
  private offset = 0;

  constructor(readonly capacity: number) {
    this.lens = new Int32Array(capacity);
    this.segments = new Int32Array(capacity);
  }

  /** Datagrams taken from the kernel that the last drain had no room for. */
  get pending(): boolean {
    return this.at < this.count;
  }

  /**
   * Slots [0, count) of `slots` are to be handed out (replacing anything still pending). Returns how many of them
   * were coalesced, i.e. held more than one datagram.
   */
  load(slots: CoalescedSlots, count: number): number {
    this.slots = slots;
    this.count = count;
    this.at = 0;
    this.offset = 0;
    let coalesced = 0;
    for (let i = 0; i < count; i++) {
      const len = slots.length(i);
      const seg = slots.segmentSize(i);
      this.lens[i] = len;
      // No size, or one at least the whole buffer: the slot is a single datagram.
      this.segments[i] = seg > 0 && seg < len ? seg : len;
      if (seg > 0 && seg < len) coalesced++;
    }
    return coalesced;
  }

  /**
   * Copies the next datagrams into batch entries [n, capacity), each with its sender; returns the new n. A datagram
   * longer than its entry is cut to it (it then fails authentication, as a datagram cut by the kernel does).
   */
  drainInto(batch: DatagramBatch, n: number): number {
    const slots = this.slots;
    if (slots === null) return n;
    const capacity = batch.capacity;
    while (n < capacity && this.at < this.count) {
      const at = this.at;
      const len = this.lens[at]!;
      const start = this.offset;
      const take = Math.min(this.segments[at]!, len - start);
      const dst = batch.bufs[n]!;
      const copied = Math.min(take, dst.length);
      slots.copyOut(at, start, dst, copied);
      slots.addr(at).copy(batch.addrs[n]!, 0, 0, 16);
      batch.lens[n++] = copied;
      // A zero-length datagram is one entry too; every step moves on by at least one slot or one segment.
      if (take <= 0 || start + take >= len) {
        this.at = at + 1;
        this.offset = 0;
      } else this.offset = start + take;
    }
    return n;
  }
}
