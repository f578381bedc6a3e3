/**
 * `static_host_map`: the underlay addresses configured for VPN IPs, with DNS names resolved once at start (IPv4;
 * a name that does not resolve is warned about and skipped). The handshake manager tries these addresses, and the
 * node handshakes every static host at start so a lighthouse-less mesh comes up by itself (nebula-spec §5.5).
 */
import { promises as dns } from 'node:dns';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { parseHostPort } from '../shared/util/host-port';
import { parseIPv4 } from '../shared/util/ipv4';
import { addrKey, parseAddr6, type VpnAddr } from '../shared/protocol/vpn-addr';
import type { Endpoint } from '../shared/util/endpoint';

export class StaticHosts {
  private constructor(
    private readonly byVpnIp: Map<number, Endpoint[]>,
    /** Keys that are IPv6 VPN addresses (by addrKey): used for first contact by that address. */
    private readonly byAddr6: Map<bigint, Endpoint[]> = new Map(),
  ) {}

  static async resolve(map: NebulaConfig['static_host_map'], log: Logger): Promise<StaticHosts> {
    const byVpnIp = new Map<number, Endpoint[]>();
    const byAddr6 = new Map<bigint, Endpoint[]>();
    for (const [vpn, addrs] of Object.entries(map)) {
      const vpnIp = parseIPv4(vpn);
      const addr6 = vpnIp === undefined ? parseAddr6(vpn) : undefined;
      if (vpnIp === undefined && addr6 === undefined) continue;
      const list: Endpoint[] = [];
      for (const a of addrs) {
        const hostPort = parseHostPort(a);
        if (!hostPort) continue;
        const { host, port } = hostPort;
        let ip = parseIPv4(host);
        if (ip === undefined) {
          try {
            ip = parseIPv4((await dns.lookup(host, { family: 4 })).address);
          } catch (err) {
            log.warn('Failed to resolve static_host_map entry', { vpnIp: vpn, host, error: String(err) });
          }
        }
        if (ip !== undefined && !list.some((e) => e.ip === ip && e.port === port)) list.push({ ip, port });
      }
      if (vpnIp !== undefined) byVpnIp.set(vpnIp, list);
      else byAddr6.set(addrKey(addr6!), list);
    }
    return new StaticHosts(byVpnIp, byAddr6);
  }

  /** The addresses configured for an IPv6 VPN address key. */
  addressesFor6(a: VpnAddr): Endpoint[] {
    return this.byAddr6.get(addrKey(a)) ?? [];
  }

  addressesFor(vpnIp: number): Endpoint[] {
    return this.byVpnIp.get(vpnIp) ?? [];
  }

  vpnIps(): IterableIterator<number> {
    return this.byVpnIp.keys();
  }
}

