/**
 * Keys that name VPN IPs must name them inside our own VPN network, which only the certificate tells (so this runs
 * once the PKI is loaded: at start, at reload and in `-test`). Go refuses such a config with "... is not in our
 * subnet, invalid"; so do we, naming the key path.
 */
import { formatCidr, netContains, parseIPv4, type IPv4Net } from '../util/ipv4';
import { net6Contains, parseCidr6, parseIPv6 } from '../util/ipv6';
import type { ConfigIssue } from './errors';
import type { NebulaConfig } from './types';

/** `vpnNets6`: our certificate's IPv6 networks as CIDRs (a static_host_map key may name an IPv6 VPN address). */
export function vpnNetworkIssues(cfg: NebulaConfig, vpnNet: IPv4Net, vpnNets6: readonly string[] = []): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const nets6 = vpnNets6.map((c) => parseCidr6(c)).filter((n) => n !== undefined);
  const outside = (ip: string): boolean => {
    const w = parseIPv6(ip);
    if (w !== undefined) return !nets6.some((n) => net6Contains(n, w[0], w[1], w[2], w[3]));
    const n = parseIPv4(ip);
    return n === undefined || !netContains(vpnNet, n);
  };
  const net = formatCidr({ ip: (vpnNet.ip & vpnNet.mask) >>> 0, mask: vpnNet.mask });
  for (const ip of Object.keys(cfg.static_host_map)) {
    if (outside(ip)) {
      const ours = parseIPv6(ip) === undefined ? net : vpnNets6.join(', ') || 'no IPv6 network';
      issues.push({ path: `static_host_map.${ip}`, message: `static_host_map key is not in our subnet (${ours}), invalid` });
    }
  }
  cfg.lighthouse.hosts.forEach((ip, i) => {
    if (outside(ip)) issues.push({ path: `lighthouse.hosts[${i}]`, message: `lighthouse host ${ip} is not in our subnet (${net}), invalid` });
  });
  return issues;
}
