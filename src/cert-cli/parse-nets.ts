/**
 * The comma-separated -ips/-ip/-subnets/-groups values of nebula-cert, parsed like Go's net.ParseCIDR: an -ip keeps
 * its host bits (10.1.2.3/16 is the host's address and network), a subnet is reduced to its network address.
 */
import { parseCidr, type IPv4Net } from '../shared/util/ipv4';
import { HelpError } from './errors';

function isIPv6Cidr(text: string): boolean {
  return text.includes(':') && /\/\d+$/.test(text);
}

/** Parses one CIDR; `what` is "ip" or "subnet" (for Go's "invalid ip definition" wording). */
export function parseCidrFlag(text: string, what: 'ip' | 'subnet', keepHostBits: boolean): IPv4Net {
  const net = parseCidr(text);
  if (!net) {
    if (isIPv6Cidr(text)) throw new HelpError(`invalid ${what} definition: can only be ipv4, have ${text}`);
    throw new HelpError(`invalid ${what} definition: invalid CIDR address: ${text}`);
  }
  return keepHostBits ? net : { ip: (net.ip & net.mask) >>> 0, mask: net.mask };
}

export function parseCidrList(text: string, what: 'ip' | 'subnet', keepHostBits: boolean): IPv4Net[] {
  if (text === '') return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => parseCidrFlag(s, what, keepHostBits));
}

export function parseGroups(text: string): string[] {
  if (text === '') return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
