/**
 * Encrypted datagrams for a local index this routine does not know yet. The handshake that creates a tunnel travels
 * routine -> supervisor -> every routine over IPC, while the peer's first data packet comes straight to a routine's
 * socket: it can win that race (measured: 1 fresh tunnel in 4 lost its first packet, a TCP SYN costs a 1 s retry).
 * Go nebula handles the handshake and the data on one socket loop, in order, so it never sees this.
 *
 * So such a datagram waits here, bounded in count and time. When `tunnelUp` for its index arrives it is processed
 * as if it had just been received; if it expires, it gets what it would have got at once: a recvError.
 * Only unknown-index traffic lands here (not the established-tunnel fast path), so copying is fine.
 *
 * What does not fit is dropped and counted (`routine.dropped.early_overflow`), never answered at once: a tunnel that
 * starts or is re-keyed under a full-rate transfer gets its first datagrams at ~100k/s while its tunnelUp crosses IPC,
 * which under load takes milliseconds; answering the overflow with recvErrors made the peer tear the new tunnel down
 * (the re-key e2e test saw it at load 3-5). An index that really is unknown still gets its recvErrors: from the held
 * datagrams, when they expire. 256 copies of at most an MTU-sized datagram is about 350 KiB per routine at the worst.
 */
export const EARLY_MAX = 256;
export const EARLY_WAIT_MS = 250;

export interface EarlyArrival {
  localIndex: number;
  data: Buffer;
  sockaddr: Buffer;
  at: number;
}

export class EarlyArrivals {
  private readonly waiting: EarlyArrival[] = [];

  get size(): number {
    return this.waiting.length;
  }

  /** Keeps a copy; false when full (the caller drops and counts it). */
  hold(localIndex: number, buf: Buffer, len: number, sockaddr: Buffer, now: number): boolean {
    if (this.waiting.length >= EARLY_MAX) return false;
    this.waiting.push({ localIndex, data: Buffer.from(buf.subarray(0, len)), sockaddr: Buffer.from(sockaddr), at: now });
    return true;
  }

  /** Removes and returns the datagrams waiting for `localIndex`, oldest first. */
  takeFor(localIndex: number): EarlyArrival[] {
    const taken: EarlyArrival[] = [];
    for (let i = 0; i < this.waiting.length; ) {
      if (this.waiting[i]!.localIndex === localIndex) taken.push(...this.waiting.splice(i, 1));
      else i++;
    }
    return taken;
  }

  /** Removes and returns what waited longer than EARLY_WAIT_MS. */
  expire(now: number): EarlyArrival[] {
    let n = 0;
    while (n < this.waiting.length && now - this.waiting[n]!.at >= EARLY_WAIT_MS) n++;
    return n === 0 ? [] : this.waiting.splice(0, n);
  }
}
