/**
 * The inside queue of a tun opened with offloads (`tun.offloads`: IFF_VNET_HDR + TUNSETOFFLOAD, set up by the
 * supervisor): every read returns a virtio-net header and a packet that may be a TCP/UDP super-packet of up to
 * 64 KB, every write must start with a header. A read is split (tso.ts) into MTU-sized packets straight into the
 * data path's read batch, so the rest of the data path sees plain IP packets as before. On the way in, consecutive
 * in-order segments of one TCP flow in a batch are merged into one super-packet write (tcp-coalesce.ts, counted as
 * `routine.inside.tx_superpackets`); any other packet goes behind an all-zero header (a plain packet whose checksums
 * the kernel verifies as usual).
 *
 * The device's gso_max_segs is TUN_GSO_MAX_SEGS, and a new read is made only while the batch has room for that many
 * segments: a super-packet is always split whole into the batch, never left half-done waiting for a wake-up that
 * the fd (already drained) would not give. A read refused by the splitter is dropped and counted as
 * `routine.dropped.malformed`; each super-packet split counts `routine.inside.rx_superpackets`.
 */
import { readFd, writeFd } from '../shared/native/libc';
import { TUN_GSO_MAX_SEGS, VNET_HDR_LEN, VNET_READ_BYTES } from '../shared/native/virtio-net';
import { C } from '../shared/state/counters';
import type { InsideQueue, PacketBatch } from './edges';
import { TcpCoalescer } from './tcp-coalesce';
import { SuperPacketSplitter } from './tso';

/** Where the edge counts what it drops and splits (this routine's row of the shared counters). */
export interface EdgeCounters {
  inc(index: number): void;
}

/** -EMSGSIZE: a packet too long for the write buffer (cannot happen with the data path's own batches). */
const EMSGSIZE = 90;

export class VnetInsideQueue implements InsideQueue {
  /** One read: the header and up to 64 KB of packet. */
  private readonly readBuf = Buffer.alloc(VNET_READ_BYTES);
  /** One write: a virtio-net header and a packet, or TCP segments merged into one super-packet. */
  private readonly writeBuf = Buffer.alloc(VNET_READ_BYTES);
  private readonly splitter = new SuperPacketSplitter();
  private readonly coalescer = new TcpCoalescer(this.writeBuf);

  constructor(
    readonly fd: number,
    private readonly counters: EdgeCounters,
    /** The device's gso_max_segs (a test lowers it to see a super-packet refused for want of room). */
    private readonly maxSegments = TUN_GSO_MAX_SEGS,
  ) {}

  readBatch(batch: PacketBatch): number {
    const capacity = batch.capacity;
    const reserve = Math.min(this.maxSegments, capacity);
    const splitter = this.splitter;
    let n = 0;
    while (capacity - n >= reserve) {
      const got = readFd(this.fd, this.readBuf, this.readBuf.length);
      if (got <= 0) break;
      const segments = splitter.prepare(this.readBuf, got, capacity - n, batch.bufs[n]!.length);
      if (segments < 0) {
        this.counters.inc(C['routine.dropped.malformed']);
        continue;
      }
      if (splitter.isSuperPacket) this.counters.inc(C['routine.inside.rx_superpackets']);
      for (let i = 0; i < segments; i++) {
        batch.lens[n] = splitter.writeSegment(i, batch.bufs[n]!);
        n++;
      }
    }
    return n;
  }

  /**
   * Writes entries [0, count): runs of in-order segments of one TCP flow as one super-packet (tcp-coalesce.ts),
   * everything else one packet per write behind an all-zero header. A failed write marks every packet it held.
   */
  writeBatch(batch: PacketBatch, count: number): number {
    const coalescer = this.coalescer;
    let written = 0;
    for (let i = 0; i < count; ) {
      if (batch.lens[i]! + VNET_HDR_LEN > this.writeBuf.length) {
        batch.lens[i++] = -EMSGSIZE;
        continue;
      }
      const packets = coalescer.build(batch, i, count);
      if (packets > 1) this.counters.inc(C['routine.inside.tx_superpackets']);
      const r = writeFd(this.fd, this.writeBuf, coalescer.outLen);
      if (r > 0) written += packets;
      else for (let k = i; k < i + packets; k++) batch.lens[k] = r < 0 ? r : -1;
      i += packets;
    }
    return written;
  }
}
