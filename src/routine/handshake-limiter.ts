/**
 * The bound on the handshake path: every stage 1 the supervisor sees costs it two X25519 operations and a cert
 * check on its one event loop, and reaches it as an IPC copy, so a routine hands handshakes up at a bounded rate,
 * overall and per source IP, and sheds (and counts) the rest. Per-source buckets live in a fixed table indexed by a
 * hash of the IP: bounded memory whatever the number of sources; two sources sharing a bucket share its budget.
 * Received recvErrors (as unauthenticated, each a supervisor lookup) go through a limiter of their own.
 */
import { TokenBucket } from './token-bucket';

/**
 * Per routine: handshake datagrams handed up per second on average, and in a burst. The supervisor answers about
 * 1800 stage 1s a second on one core (docs/performance.md Change 6), so one routine's flood takes about half of its
 * event loop and what waits beyond that is bounded by the routine's IPC backlog (ipc-backlog.ts).
 */
export const HANDSHAKES_PER_SECOND = 1000;
export const HANDSHAKE_BURST = 2000;
/** Per source IP (a NATed site may hold many nodes): per second, and in a burst. */
export const HANDSHAKES_PER_SOURCE_PER_SECOND = 20;
export const HANDSHAKE_SOURCE_BURST = 40;
const SOURCE_BUCKETS = 1024;

export class HandshakeLimiter {
  private readonly total: TokenBucket;
  private readonly perSource: TokenBucket[] = [];

  constructor(now: number) {
    this.total = new TokenBucket(HANDSHAKE_BURST, HANDSHAKES_PER_SECOND, now);
    for (let i = 0; i < SOURCE_BUCKETS; i++) this.perSource.push(new TokenBucket(HANDSHAKE_SOURCE_BURST, HANDSHAKES_PER_SOURCE_PER_SECOND, now));
  }

  /** May a handshake datagram from `ip` (uint32) go up now? A refusal by the source does not spend the total. */
  allow(ip: number, now: number): boolean {
    if (!this.perSource[bucketOf(ip)]!.take(now)) return false;
    return this.total.take(now);
  }
}

/** A cheap integer hash (Knuth multiplicative) of the IP onto the table. */
function bucketOf(ip: number): number {
  return (Math.imul(ip | 0, 0x9e3779b1) >>> 22) & (SOURCE_BUCKETS - 1);
}
