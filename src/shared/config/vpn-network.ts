/**
 * Keys that name VPN IPs must name them inside our own VPN network, which only the certificate tells (so this runs
 * once the PKI is loaded: at start, at reload and in `-test`). Go refuses such a config with "... is not in our
 * subnet, invalid"; so do we, naming the key path.
 */
import { formatCidr, netContains, parseIPv4, type IPv4Net } from '../util/ipv4';
import type { ConfigIssue } from './errors';
import type { NebulaConfig } from './types';

export function vpnNetworkIssues(cfg: NebulaConfig, vpnNet: IPv4Net): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const outside = (ip: string): boolean => {
    const n = parseIPv4(ip);
    return n === undefined || !netContains(vpnNet, n);
  };
  const net = formatCidr({ ip: (vpnNet.ip & vpnNet.mask) >>> 0, mask: vpnNet.mask });
  for (const ip of Object.keys(cfg.static_host_map)) {
    if (outside(ip)) issues.push({ path: `static_host_map.${ip}`, message: `static_host_map key is not in our subnet (${net}), invalid` });
  }
  cfg.lighthouse.hosts.forEach((ip, i) => {
    if (outside(ip)) issues.push({ path: `lighthouse.hosts[${i}]`, message: `lighthouse host ${ip} is not in our subnet (${net}), invalid` });
  });
  return issues;
}
