/**
 * Handshakes we initiated and are waiting on (Go nebula's pending host map), by peer VPN IP and by our local index.
 * A handshake started by an IPv6 VPN address alone (first contact: we do not know the host's IPv4 VPN IP, the key of
 * every tunnel, until its certificate arrives) is kept by that address instead.
 * Removing one stops its retry timer and gives its index back to the host map.
 */
import type { NoiseIXHandshake } from '../shared/noise';
import { addrKey, type VpnAddr } from '../shared/protocol/vpn-addr';
import type { Endpoint } from '../shared/util/endpoint';

export interface Pending {
  /** The peer's IPv4 VPN IP; 0 while only `target6` names the peer. */
  vpnIp: number;
  /** First contact by IPv6 VPN address: the address the peer's certificate must hold. */
  target6?: VpnAddr;
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
  /** By IPv4 VPN IP (a number) or, for first contact by IPv6 address, by that address's key (a bigint). */
  private readonly byVpn = new Map<number | bigint, Pending>();
  private readonly byIndex = new Map<number, Pending>();
  private firstContacts = 0;

  constructor(private readonly releaseIndex: (index: number) => void) {}

  get size(): number {
    return this.byVpn.size;
  }

  /** How many are first contacts by IPv6 address (bounded by the handshake manager). */
  get firstContactCount(): number {
    return this.firstContacts;
  }

  get indexCount(): number {
    return this.byIndex.size;
  }

  forVpnIp(vpnIp: number): Pending | undefined {
    return this.byVpn.get(vpnIp);
  }

  forAddr6(a: VpnAddr): Pending | undefined {
    return this.byVpn.get(addrKey(a));
  }

  forIndex(localIndex: number): Pending | undefined {
    return this.byIndex.get(localIndex);
  }

  /** True while `p` is still the pending handshake for its index (a timer may fire after it was dropped). */
  isCurrent(p: Pending): boolean {
    return this.byIndex.get(p.localIndex) === p;
  }

  add(p: Pending): void {
    this.byVpn.set(keyOf(p), p);
    if (p.target6) this.firstContacts++;
    this.byIndex.set(p.localIndex, p);
  }

  remove(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (this.byIndex.get(p.localIndex) === p) this.byIndex.delete(p.localIndex);
    const key = keyOf(p);
    if (this.byVpn.get(key) === p) {
      this.byVpn.delete(key);
      if (p.target6) this.firstContacts--;
    }
    this.releaseIndex(p.localIndex);
  }

  all(): Pending[] {
    return [...this.byIndex.values()];
  }
}

function keyOf(p: Pending): number | bigint {
  return p.target6 ? addrKey(p.target6) : p.vpnIp;
}
