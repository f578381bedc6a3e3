/**
 * Tunnel liveness (nebula-spec §6.4). Routines set a tunnel's "out" mark on every send and its "in" mark on every
 * authenticated packet, in shared memory; this reads and clears them. Traffic went out and nothing came back for
 * `connection_alive_interval` -> send a test request; still nothing `pending_deletion_interval` later -> the tunnel
 * is dead and removed (no closeTunnel), and the next packet to that host starts a new handshake. Each of those
 * judgements first asks `closedInvalid` (pki.disconnect_invalid, invalid-certs.ts), as Go 1.6.1 does.
 */
import type { HostInfo, HostMap } from './hostmap';

interface Watch {
  checkAt?: number;
  deleteAt?: number;
}

export interface ConnectionManagerEnv {
  hostmap: HostMap;
  aliveIntervalMs: number;
  pendingDeletionMs: number;
  sendTest(h: HostInfo): void;
  dead(h: HostInfo): void;
  /**
   * pki.disconnect_invalid (invalid-certs.ts): asked whenever a tunnel's liveness is judged, before the traffic
   * marks, as Go does; true when it closed the tunnel (nothing more to do for it).
   */
  closedInvalid?(h: HostInfo, now: number): boolean;
}

const TICK_MS = 500;

export class ConnectionManager {
  private readonly watches = new WeakMap<HostInfo, Watch>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly env: ConnectionManagerEnv) {}

  start(): void {
    this.timer = setInterval(() => this.tick(Date.now()), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  tick(now: number): void {
    const { hostmap } = this.env;
    for (const h of [...hostmap.hosts()]) {
      let w = this.watches.get(h);
      if (!w) {
        w = {};
        this.watches.set(h, w);
      }
      if (w.deleteAt !== undefined) {
        const rx = hostmap.rxMark(h);
        if (!rx && now < w.deleteAt) continue;
        w.deleteAt = undefined;
        if (this.env.closedInvalid?.(h, now)) continue;
        if (rx) hostmap.clearMarks(h);
        else this.env.dead(h);
        continue;
      }
      if (w.checkAt === undefined) {
        if (hostmap.txMark(h)) w.checkAt = now + this.env.aliveIntervalMs;
        continue;
      }
      if (now < w.checkAt) continue;
      w.checkAt = undefined;
      if (this.env.closedInvalid?.(h, now)) continue;
      if (hostmap.rxMark(h)) {
        hostmap.clearMarks(h);
      } else {
        this.env.sendTest(h);
        w.deleteAt = now + this.env.pendingDeletionMs;
      }
    }
  }
}
