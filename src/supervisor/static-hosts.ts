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
import type { Endpoint } from '../shared/util/endpoint';

export class StaticHosts {
  private constructor(private readonly byVpnIp: Map<number, Endpoint[]>) {}

  static async resolve(map: NebulaConfig['static_host_map'], log: Logger): Promise<StaticHosts> {
    const byVpnIp = new Map<number, Endpoint[]>();
    for (const [vpn, addrs] of Object.entries(map)) {
      const vpnIp = parseIPv4(vpn);
      if (vpnIp === undefined) continue;
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
      byVpnIp.set(vpnIp, list);
    }
    return new StaticHosts(byVpnIp);
  }

  addressesFor(vpnIp: number): Endpoint[] {
    return this.byVpnIp.get(vpnIp) ?? [];
  }

  vpnIps(): IterableIterator<number> {
    return this.byVpnIp.keys();
  }
}
