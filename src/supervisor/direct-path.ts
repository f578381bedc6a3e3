/**
 * Relayed tunnels keep looking for a direct path (issue 9: "relayed tunnels that switch to direct when a direct path
 * appears"): every PROBE_INTERVAL_MS, each relayed tunnel whose host has known direct addresses gets a fresh handshake
 * to those addresses only (never through a relay). If one completes, it replaces the relayed tunnel on both sides
 * (a newer handshake wins, nebula-spec §3.7); if the path is still blocked it times out and is tried again later.
 * A direct datagram from the peer also moves a relayed tunnel (roaming, tunnels.ts moveTo), as in Go.
 */
import type { HostInfo } from './hostmap';

export const PROBE_INTERVAL_MS = 5000;

export interface DirectPathEnv {
  tunnels(): Iterable<HostInfo>;
  hasDirectAddress(vpnIp: number): boolean;
  isPending(vpnIp: number): boolean;
  tryDirect(vpnIp: number): void;
}

export class DirectPathProber {
  private timer?: NodeJS.Timeout;

  constructor(private readonly env: DirectPathEnv) {}

  start(intervalMs = PROBE_INTERVAL_MS): void {
    this.timer = setInterval(() => this.probe(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round; returns the hosts probed. */
  probe(): number[] {
    const probed: number[] = [];
    for (const h of this.env.tunnels()) {
      if (!h.relay || this.env.isPending(h.vpnIp) || !this.env.hasDirectAddress(h.vpnIp)) continue;
      this.env.tryDirect(h.vpnIp);
      probed.push(h.vpnIp);
    }
    return probed;
  }
}
