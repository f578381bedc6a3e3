/**
 * Which host a VPN address names, for the lighthouse and relay messages that name hosts by address. Go 1.10+ keys
 * its host map and its lighthouse address map by every address a host's certificate holds, so a Go peer may name a
 * dual-stack host by its IPv6 VPN address (a HostQuery for fd42::2 when it pings fd42::2, a CreateRelayRequest whose
 * RelayToAddr is that address). nebula-ts keys every host by its IPv4 VPN IP (the first IPv4 network of its
 * certificate); this book maps the other addresses to that key:
 * - our own certificate's addresses to our VPN IP;
 * - each address in the certificate of a host we have a tunnel to, to that host's VPN IP. A tunnel's certificate
 *   replaces the host's previous addresses, and they go with its last tunnel, as Go's DeleteVpnAddrs drops a gone
 *   host's addresses from its address map.
 * So the book holds at most the networks of the certificates in the host map (bounded by tunnels.max and by the
 * handshake's size), and never names a host we cannot reach. An IPv4 address it does not hold is taken as the key of
 * the host it names, as before; an IPv6 address it does not hold names nobody (`undefined`: callers refuse it).
 */
import type { IpPrefix } from '../shared/pki/v2/prefix';
import { prefixContainsAddr } from '../shared/pki/v2/prefix';
import { addrKey, addrOfBytes, ipv4OfAddr, type VpnAddr } from '../shared/protocol/vpn-addr';

/** What the lighthouse and the relay manager ask of the book. */
export interface VpnAddrLookup {
  /** The VPN IP (IPv4 key) of the host `a` names, or undefined for an IPv6 address of no host we know. */
  vpnIpOf(a: VpnAddr): number | undefined;
  /** The networks of the certificate of `vpnIp` (ours, or a tunnelled host's), in the certificate's order. */
  networksOf(vpnIp: number): readonly IpPrefix[] | undefined;
}

export interface OwnAddresses {
  vpnIp: number;
  /** Our certificate's networks as they are now (read at each lookup: a reload may bring a new certificate). */
  networks(): readonly IpPrefix[];
}

export class VpnAddrBook implements VpnAddrLookup {
  private readonly networksByHost = new Map<number, readonly IpPrefix[]>();
  private readonly hostByAddr = new Map<bigint, number>();

  constructor(private readonly own: OwnAddresses) {}

  /** A tunnel to `vpnIp` was installed with a certificate holding `networks`: they name that host from now on. */
  tunnelUp(vpnIp: number, networks: readonly IpPrefix[]): void {
    this.forget(vpnIp);
    this.networksByHost.set(vpnIp, networks);
    for (const n of networks) {
      const key = keyOf(n);
      if (key !== undefined) this.hostByAddr.set(key, vpnIp);
    }
  }

  /** The last tunnel to `vpnIp` is gone: its addresses name nobody any more. */
  tunnelGone(vpnIp: number): void {
    this.forget(vpnIp);
  }

  vpnIpOf(a: VpnAddr): number | undefined {
    const key = addrKey(a);
    for (const n of this.own.networks()) if (keyOf(n) === key) return this.own.vpnIp;
    return this.hostByAddr.get(key) ?? ipv4OfAddr(a);
  }

  networksOf(vpnIp: number): readonly IpPrefix[] | undefined {
    return vpnIp === this.own.vpnIp ? this.own.networks() : this.networksByHost.get(vpnIp);
  }

  /** Addresses held (tests, and to show the bound). */
  get size(): number {
    return this.hostByAddr.size;
  }

  private forget(vpnIp: number): void {
    const before = this.networksByHost.get(vpnIp);
    if (!before) return;
    this.networksByHost.delete(vpnIp);
    for (const n of before) {
      const key = keyOf(n);
      // Another host's newer certificate may have taken the address: that mapping stays.
      if (key !== undefined && this.hostByAddr.get(key) === vpnIp) this.hostByAddr.delete(key);
    }
  }
}

/** The key of a network's address; undefined for an address of neither length (a verified certificate has none). */
function keyOf(n: IpPrefix): bigint | undefined {
  return n.addr.length === 4 || n.addr.length === 16 ? addrKey(addrOfBytes(n.addr)) : undefined;
}

/**
 * Go's findNetworkUnion: the first of `addrs` (a host's own addresses, in its certificate's order) that lies in one
 * of `networks` (another host's certificate's, tried in order), as the lighthouse picks which address of the querier
 * to name in the punch notification it sends the queried host.
 */
export function findNetworkUnion(networks: readonly IpPrefix[], addrs: readonly Buffer[]): Buffer | undefined {
  for (const n of networks) for (const a of addrs) if (prefixContainsAddr(n, a)) return a;
  return undefined;
}
