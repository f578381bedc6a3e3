/**
 * Go's ReQueryEvery (hostmap.go TryPromoteBest): every 5000 packets sent to a host, its lighthouses are asked again
 * where it is, so a node learns a peer's new addresses while talking to it. Go counts in the send path; nebula-ts
 * keeps the send path free of it and reads each tunnel's shared send counter every REQUERY_CHECK_MS instead: a query
 * goes out when the counter crossed a multiple of REQUERY_EVERY since the last look.
 */
import type { HostInfo } from './hostmap';

export const REQUERY_EVERY = 5000;
export const REQUERY_CHECK_MS = 5000;

export interface RequeryEnv {
  tunnels(): Iterable<HostInfo>;
  sendCounter(h: HostInfo): number;
  query(vpnIp: number): void;
}

export class Requery {
  private readonly seen = new WeakMap<HostInfo, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly env: RequeryEnv) {}

  start(): void {
    this.timer = setInterval(() => this.check(), REQUERY_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look; returns the hosts queried. */
  check(): number[] {
    const queried: number[] = [];
    for (const h of this.env.tunnels()) {
      const step = Math.floor(this.env.sendCounter(h) / REQUERY_EVERY);
      const last = this.seen.get(h) ?? 0;
      this.seen.set(h, step);
      if (step > last) {
        this.env.query(h.vpnIp);
        queried.push(h.vpnIp);
      }
    }
    return queried;
  }
}
