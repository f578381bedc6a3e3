/**
 * Where an IPv6 packet from the inside goes (Go 1.11's getOrHandshakeConsiderRouting for an IPv6 destination): a
 * VPN address inside one of our IPv6 VPN networks goes to the host whose certificate holds it; anything else to the
 * gateway of the longest matching IPv6 unsafe route. Gateways and hosts are named by their IPv4 VPN IP, the key of
 * every tunnel (vpn6-index.ts).
 */
import type { RoutineSetup } from '../shared/ipc/messages';
import { net6Contains, parseCidr6, type IPv6Net, type IPv6Words } from '../shared/util/ipv6';
import type { Vpn6Index } from './vpn6-index';

/** Nothing routes the destination (no VPN network, no unsafe route holds it). */
export const NO_ROUTE6 = -1;
/** Inside our IPv6 VPN network, but no certificate seen here holds the address. */
export const UNKNOWN_HOST6 = -2;

export class Ipv6Routes {
  /** Our IPv6 VPN networks, host bits = our addresses. */
  private readonly networks: IPv6Net[];
  private readonly routes: Array<{ net: IPv6Net; via: number }>;

  constructor(setup: Pick<RoutineSetup, 'vpnNetworks6' | 'unsafeRoutes6'>) {
    this.networks = setup.vpnNetworks6.map((t) => parseCidr6(t)).filter((n): n is IPv6Net => n !== undefined);
    this.routes = [];
    for (const r of setup.unsafeRoutes6) {
      const net = parseCidr6(r.route);
      if (net !== undefined) this.routes.push({ net, via: r.via >>> 0 });
    }
    // Longest prefix first, so the first match is the one to take.
    this.routes.sort((a, b) => b.net.bits - a.net.bits);
  }

  /** Whether the overlay has any IPv6 at all (no IPv6 network and no IPv6 route: IPv6 packets are dropped). */
  get enabled(): boolean {
    return this.networks.length > 0 || this.routes.length > 0;
  }

  /** Is d[0..4) one of our own IPv6 VPN addresses? */
  isOwn(d: Uint32Array): boolean {
    const nets = this.networks;
    for (let i = 0; i < nets.length; i++) {
      const w: IPv6Words = nets[i]!.words;
      if (w[0] === d[0] && w[1] === d[1] && w[2] === d[2] && w[3] === d[3]) return true;
    }
    return false;
  }

  /** The IPv4 VPN IP of the host that carries traffic for d[0..4), or NO_ROUTE6 / UNKNOWN_HOST6. */
  routeFor(d: Uint32Array, index: Vpn6Index): number {
    const d0 = d[0]!;
    const d1 = d[1]!;
    const d2 = d[2]!;
    const d3 = d[3]!;
    const nets = this.networks;
    for (let i = 0; i < nets.length; i++) {
      if (net6Contains(nets[i]!, d0, d1, d2, d3)) {
        const vpnIp = index.vpnIpFor(d);
        return vpnIp < 0 ? UNKNOWN_HOST6 : vpnIp;
      }
    }
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) if (net6Contains(routes[i]!.net, d0, d1, d2, d3)) return routes[i]!.via;
    return NO_ROUTE6;
  }
}
