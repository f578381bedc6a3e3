/**
 * IP prefixes as v2 certificates carry them: an IPv4 or IPv6 address that keeps its host bits plus a prefix length,
 * with the semantics of Go's net/netip.Prefix (what nebula 1.10+ uses): binary form address || bits, ordering
 * (IPv4 before IPv6, then address, then bits), containment, and the String() text ("10.1.2.3/16", "fd00::1/64",
 * "::ffff:1.2.3.4/120").
 */

export interface IpPrefix {
  /** 4 bytes (IPv4) or 16 bytes (IPv6); host bits are kept. */
  readonly addr: Buffer;
  readonly bits: number;
}

export const isV4 = (p: IpPrefix): boolean => p.addr.length === 4;
export const isV6 = (p: IpPrefix): boolean => p.addr.length === 16;

/** netip.Prefix.IsValid: a 4- or 16-byte address and 0 <= bits <= its bit length. */
export function prefixValid(p: IpPrefix): boolean {
  return (p.addr.length === 4 || p.addr.length === 16) && Number.isInteger(p.bits) && p.bits >= 0 && p.bits <= p.addr.length * 8;
}

export const isUnspecified = (p: IpPrefix): boolean => p.addr.every((b) => b === 0);

const V4_IN_V6_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

/** An IPv6 address of the form ::ffff:a.b.c.d (netip.Addr.Is4In6). */
export const is4In6 = (p: IpPrefix): boolean => isV6(p) && p.addr.subarray(0, 12).equals(V4_IN_V6_PREFIX);

/** The binary form (netip.Prefix.MarshalBinary): address then one byte of prefix length. */
export function prefixToBinary(p: IpPrefix): Buffer {
  return Buffer.concat([p.addr, Buffer.from([p.bits])]);
}

/**
 * netip.Prefix.UnmarshalBinary for the lengths a certificate allows (1..17 bytes): 5 and 17 give an IPv4 or IPv6
 * prefix (possibly invalid when bits exceed the address length; `prefixValid` tells), 1 gives the invalid zero
 * prefix, anything else is undefined (a wire-format error).
 */
export function prefixFromBinary(b: Buffer): IpPrefix | undefined {
  if (b.length !== 1 && b.length !== 5 && b.length !== 17) return undefined;
  return { addr: Buffer.from(b.subarray(0, b.length - 1)), bits: b[b.length - 1]! };
}

function formatV4(a: Buffer): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

/** RFC 5952 text (Go's Addr.String): the first longest run of two or more zero groups becomes "::". */
function formatV6(a: Buffer): string {
  if (a.subarray(0, 12).equals(V4_IN_V6_PREFIX)) return `::ffff:${formatV4(a.subarray(12))}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(a.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatAddr(addr: Buffer): string {
  if (addr.length === 4) return formatV4(addr);
  if (addr.length === 16) return formatV6(addr);
  return 'invalid IP';
}

/** netip.Prefix.String(). */
export function formatPrefix(p: IpPrefix): string {
  return prefixValid(p) ? `${formatAddr(p.addr)}/${p.bits}` : 'invalid Prefix';
}

/** Go's comparePrefix (nebula cert/sign.go): by address family, then address, then prefix length. */
export function comparePrefix(a: IpPrefix, b: IpPrefix): number {
  if (a.addr.length !== b.addr.length) return a.addr.length - b.addr.length;
  return Buffer.compare(a.addr, b.addr) || a.bits - b.bits;
}

/** Same address family and `outer`'s first `outer.bits` bits equal `addr`'s (netip.Prefix.Contains). */
export function prefixContainsAddr(outer: IpPrefix, addr: Buffer): boolean {
  if (!prefixValid(outer) || outer.addr.length !== addr.length) return false;
  const full = outer.bits >> 3;
  if (!outer.addr.subarray(0, full).equals(addr.subarray(0, full))) return false;
  const rest = outer.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (outer.addr[full]! & mask) === (addr[full]! & mask);
}

/** nebula's CA constraint: `inner`'s address lies in `outer` and `inner` is at least as specific. */
export function prefixCovers(outer: IpPrefix, inner: IpPrefix): boolean {
  return prefixContainsAddr(outer, inner.addr) && outer.bits <= inner.bits;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing (netip.ParsePrefix: no zones, no IPv4 octets with leading zeros, bits without sign or leading zero)

function parseV4(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (const [i, part] of parts.entries()) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

function parseV6(text: string): Buffer | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (const [i, item] of items.entries()) {
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseV4(item);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) out.push(parseInt(item, 16));
      else return undefined;
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined; // an embedded IPv4 address ends the text
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

export function parseAddr(text: string): Buffer | undefined {
  return text.includes(':') ? parseV6(text) : parseV4(text);
}

/** Parses "addr/bits" (host bits kept). Returns undefined when malformed. */
export function parsePrefix(text: string): IpPrefix | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const addr = parseAddr(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (!addr || !/^(?:0|[1-9]\d{0,2})$/.test(bitsText)) return undefined;
  const p = { addr, bits: Number(bitsText) };
  return prefixValid(p) ? p : undefined;
}
