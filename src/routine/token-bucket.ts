/**
 * Rate limits for what unauthenticated input can make a routine do (send recvErrors, hand handshakes up to the
 * supervisor). Plain numbers, no allocation, a clock passed in: cheap enough for the packet path, testable with a
 * fake clock.
 */

/** A token bucket: `take` succeeds while tokens remain; tokens come back at `perSecond`, up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
