/**
 * What the data path produces, gathered into batches and flushed to an edge at the end of each input batch (or
 * when full), so one wake-up's output leaves in as few edge calls as the edge allows. The data path seals or
 * decrypts straight into the lent entry: nothing is copied.
 */
import { C } from '../shared/state/counters';
import type { DatagramOutbox } from '../shared/tunnel/send';
import type { RoutineCounters } from './context';
import { DatagramBatch, PacketBatch, type InsideQueue, type UnderlaySocket } from './edges';

/** `countAs` of a datagram that bumps no counter when sent. */
export const NO_COUNTER = -1;

/**
 * Datagrams for the underlay socket. Each entry remembers which counter to bump once the socket has taken it
 * (`countAs`), so a datagram is counted as sent only when it was, and a failure is counted as one.
 */
export class UnderlayOutbox implements DatagramOutbox {
  private readonly batch: DatagramBatch;
  private readonly countAs: Int32Array;
  private count = 0;
  /** The counter the next committed datagram is counted under (set by the caller just before it seals). */
  nextCountAs = NO_COUNTER;

  constructor(
    private readonly socket: UnderlaySocket,
    capacity: number,
    bufferBytes: number,
    private readonly counters: RoutineCounters,
  ) {
    this.batch = new DatagramBatch(capacity, bufferBytes);
    this.countAs = new Int32Array(capacity);
  }

  buffer(): Buffer {
    if (this.count === this.batch.capacity) this.flush();
    return this.batch.bufs[this.count]!;
  }

  commit(len: number, to: Buffer): void {
    const b = this.batch;
    b.lens[this.count] = len;
    to.copy(b.addrs[this.count]!, 0, 0, 16);
    this.countAs[this.count] = this.nextCountAs;
    this.nextCountAs = NO_COUNTER;
    this.count++;
  }

  flush(): void {
    const count = this.count;
    if (count === 0) return;
    this.count = 0;
    this.socket.sendBatch(this.batch, count);
    const counters = this.counters;
    const lens = this.batch.lens;
    for (let i = 0; i < count; i++) {
      if (lens[i]! < 0) counters.inc(C['routine.outside.tx_errors']);
      else if (this.countAs[i]! !== NO_COUNTER) counters.inc(this.countAs[i]!);
    }
  }
}

/**
 * Decrypted packets for the inside queue. Without an inside (tun.disabled) it only lends a scratch buffer to decrypt
 * into, and nothing is ever committed.
 */
export class InsideOutbox {
  private readonly batch: PacketBatch;
  private count = 0;
  /** False without an inside (tun.disabled): nothing may be committed then. */
  readonly hasInside: boolean;

  constructor(
    private readonly queue: InsideQueue | null,
    capacity: number,
    bufferBytes: number,
    private readonly counters: RoutineCounters,
  ) {
    this.batch = new PacketBatch(queue ? capacity : 1, bufferBytes);
    this.hasInside = queue !== null;
  }

  buffer(): Buffer {
    if (this.count === this.batch.capacity) this.flush();
    return this.batch.bufs[this.count]!;
  }

  commit(len: number): void {
    this.batch.lens[this.count] = len;
    this.count++;
  }

  flush(): void {
    const count = this.count;
    if (count === 0 || this.queue === null) return;
    this.count = 0;
    const written = this.queue.writeBatch(this.batch, count);
    this.counters.add(C['routine.inside.tx_packets'], written);
    if (written < count) this.counters.add(C['routine.inside.tx_errors'], count - written);
  }
}
