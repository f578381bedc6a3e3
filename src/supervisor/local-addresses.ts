/**
 * The local addresses a client reports to its lighthouses (Go's localIps with `lighthouse.local_allow_list`): every
 * interface whose name the list allows (`interfaces:` regexes, anchored as Go anchors them; when none matches, the
 * inverse of the first rule), every address on it that is not loopback or link-local and that the CIDR rules allow.
 * IPv4 only: the nebula-ts underlay socket is IPv4, so an IPv6 address would send peers where we do not listen.
 * Read in the supervisor's own network namespace, at each update (addresses change; Go reads them each time too).
 */
import { networkInterfaces } from 'node:os';
import { AllowList } from '../shared/allow-list';
import type { LighthouseConfig } from '../shared/config/types';
import { netContains, parseIPv4 } from '../shared/util/ipv4';

const LINK_LOCAL = { ip: 0xa9fe0000, mask: 0xffff0000 };
const LOOPBACK = { ip: 0x7f000000, mask: 0xff000000 };

export function interfaceAllowed(rules: Readonly<Record<string, boolean>>, name: string): boolean {
  const entries = Object.entries(rules);
  if (entries.length === 0) return true;
  for (const [re, allow] of entries) if (new RegExp(`^${re}$`).test(name)) return allow;
  return !entries[0]![1];
}

export function localAddresses(list: LighthouseConfig['local_allow_list']): number[] {
  const cidrs = new AllowList(list.cidrs, 'lighthouse.local_allow_list');
  const out: number[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!interfaceAllowed(list.interfaces, name)) continue;
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4') continue;
      const ip = parseIPv4(a.address);
      if (ip === undefined || netContains(LOOPBACK, ip) || netContains(LINK_LOCAL, ip) || !cidrs.allowIPv4(ip)) continue;
      if (!out.includes(ip)) out.push(ip);
    }
  }
  return out;
}
