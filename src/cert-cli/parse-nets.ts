/**
 * The comma-separated -networks/-unsafe-networks/-groups values of nebula-cert 1.11 (and their 1.6.1 spellings
 * -ip/-ips/-subnets, read into the same lists). Networks are parsed like Go's netip.ParsePrefix: IPv4 or IPv6, and
 * the address keeps its host bits ("10.1.2.3/16" is a host's address and its network).
 */
import { isV4, parsePrefix, type IpPrefix } from '../shared/pki';
import { maskFromPrefix, type IPv4Net } from '../shared/util/ipv4';
import { HelpError } from './errors';

/**
 * Parses one flag's list; `flag` is "networks" or "unsafe-networks" (Go's "invalid -networks definition: ..."
 * wording). Items are trimmed of spaces and empty items skipped, as Go does.
 */
export function parseNetworkList(text: string, flag: 'networks' | 'unsafe-networks'): IpPrefix[] {
  if (text === '') return [];
  const out: IpPrefix[] = [];
  for (const raw of text.split(',')) {
    const item = raw.replace(/^ +| +$/g, '');
    if (item === '') continue;
    const prefix = parsePrefix(item);
    if (!prefix) throw new HelpError(`invalid -${flag} definition: ${item}`);
    out.push(prefix);
  }
  return out;
}

/** A 1.11 flag value, or its deprecated 1.6.1 alias when the new flag is empty (ca.go/sign.go "pull up"). */
export function withAlias(value: string, alias: string): string {
  return value === '' ? alias : value;
}

export function parseGroups(text: string): string[] {
  if (text === '') return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** An IPv4 prefix as v1 certificates store it: the address (host bits kept) and its mask. */
export function prefixToV4Net(p: IpPrefix): IPv4Net {
  if (!isV4(p)) throw new Error('internal: v1 certificates hold IPv4 networks only');
  return { ip: p.addr.readUInt32BE(0), mask: maskFromPrefix(p.bits) };
}
