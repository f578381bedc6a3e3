/**
 * Handshakes we initiated and are waiting on (Go nebula's pending host map), by peer VPN IP and by our local index.
 * Removing one stops its retry timer and gives its index back to the host map.
 */
import type { NoiseIXHandshake } from '../shared/noise';
import type { Endpoint } from '../shared/util/endpoint';

export interface Pending {
  vpnIp: number;
  localIndex: number;
  noise: NoiseIXHandshake;
  /** The stage-1 datagram, resent unchanged on every attempt. */
  packet: Buffer;
  attempts: number;
  startedAt: bigint;
  timer?: NodeJS.Timeout;
  /** The address of the tunnel being re-keyed (tried besides the static ones). */
  knownAddress?: Endpoint;
  /** A stage 1 has gone to at least one address (a lighthouse answer no longer hurries this handshake). */
  sent?: boolean;
  /** Only direct addresses (a relayed tunnel looking for a direct path), never through a relay. */
  directOnly?: boolean;
}

export class PendingHandshakes {
  private readonly byVpn = new Map<number, Pending>();
  private readonly byIndex = new Map<number, Pending>();

  constructor(private readonly releaseIndex: (index: number) => void) {}

  get size(): number {
    return this.byVpn.size;
  }

  get indexCount(): number {
    return this.byIndex.size;
  }

  forVpnIp(vpnIp: number): Pending | undefined {
    return this.byVpn.get(vpnIp);
  }

  forIndex(localIndex: number): Pending | undefined {
    return this.byIndex.get(localIndex);
  }

  /** True while `p` is still the pending handshake for its index (a timer may fire after it was dropped). */
  isCurrent(p: Pending): boolean {
    return this.byIndex.get(p.localIndex) === p;
  }

  add(p: Pending): void {
    this.byVpn.set(p.vpnIp, p);
    this.byIndex.set(p.localIndex, p);
  }

  remove(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (this.byIndex.get(p.localIndex) === p) this.byIndex.delete(p.localIndex);
    if (this.byVpn.get(p.vpnIp) === p) this.byVpn.delete(p.vpnIp);
    this.releaseIndex(p.localIndex);
  }

  all(): Pending[] {
    return [...this.byIndex.values()];
  }
}
