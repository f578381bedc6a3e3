/**
 * Which datagrams of a send batch leave together as one UDP GSO message (udp-offload.ts): a run of consecutive
 * datagrams to the same address, all of one size but the last (which may be shorter and then ends the run), at most
 * GSO_MAX_SEGMENTS of them and GSO_MAX_BYTES in all. Anything else is a message of its own, sent as today. The
 * batch's order is kept: the kernel sends a message's datagrams in order, and messages in order.
 *
 * A tunnel's bulk traffic (a TCP flow's MTU-sized packets, sealed one after another into the outbox) makes long
 * runs; a batch of many peers or mixed sizes makes short ones, and costs nothing more than before.
 */
import { GSO_MAX_BYTES, GSO_MAX_SEGMENTS } from '../shared/native/udp-offload';

/** True when two sockaddr_in name the same address (family, port and IPv4 address: the first 8 bytes). */
export function sameEndpoint(a: Buffer, b: Buffer): boolean {
  return a.readUInt32LE(0) === b.readUInt32LE(0) && a.readUInt32LE(4) === b.readUInt32LE(4);
}

/** The messages of one send, as parallel arrays indexed by message (preallocated to the batch's capacity). */
export class GsoPlan {
  /** Message m: its first datagram, how many datagrams, and the segment size (0: an ordinary one-datagram send). */
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly segment: Int32Array;

  constructor(readonly capacity: number) {
    this.first = new Int32Array(capacity);
    this.count = new Int32Array(capacity);
    this.segment = new Int32Array(capacity);
  }

  /**
   * Groups datagrams [from, end) of `lens`/`addrs` into messages; returns how many. Only datagrams of at most
   * `maxSegment` bytes are grouped (0: none, GSO off); a run is at least two datagrams.
   */
  build(lens: Int32Array, addrs: readonly Buffer[], from: number, end: number, maxSegment: number): number {
    let m = 0;
    let i = from;
    while (i < end) {
      const seg = lens[i]!;
      let j = i + 1;
      if (seg > 0 && seg <= maxSegment) {
        const to = addrs[i]!;
        const limit = Math.min(end, i + GSO_MAX_SEGMENTS);
        let total = seg;
        while (j < limit) {
          const len = lens[j]!;
          if (len <= 0 || len > seg || total + len > GSO_MAX_BYTES || !sameEndpoint(addrs[j]!, to)) break;
          total += len;
          j++;
          if (len < seg) break; // a shorter datagram can only be the last of a run
        }
      }
      this.first[m] = i;
      this.count[m] = j - i;
      this.segment[m] = j - i > 1 ? seg : 0;
      m++;
      i = j;
    }
    return m;
  }
}
