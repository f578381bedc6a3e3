/**
 * IPv6 helpers. An address is four big-endian uint32 words, so the hot path compares and masks numbers and never
 * allocates. Text forms follow Go's net/netip (ParseAddr / Addr.String / ParsePrefix), which is what nebula prints
 * and accepts in its config.
 */

/** An IPv6 address as four big-endian uint32 words (w[0] = bytes 0..3), each >>> 0. */
export type IPv6Words = readonly [number, number, number, number];
/** A network: `words` as written (host bits kept, like IPv4Net keeps the cert IP), `bits` the prefix length 0..128. */
export interface IPv6Net { readonly words: IPv6Words; readonly bits: number }

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
// As netip's parseIPv4: decimal octets, no leading zeros, at most 255.
const DOTTED_OCTET = /^(0|[1-9][0-9]{0,2})$/;

function parseDottedQuad(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!DOTTED_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

/** Parses the 16-bit groups of one side of '::' (empty text = no groups). A dotted quad may end the last side. */
function parseGroups(text: string, allowDotted: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (allowDotted && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseDottedQuad(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else if (HEX_GROUP.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function wordsFromGroups(groups: readonly number[]): IPv6Words {
  const w = (i: number): number => ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  return [w(0), w(1), w(2), w(3)];
}

/** RFC 4291 text forms incl. '::' and a trailing dotted quad; no zone, no brackets (as netip.ParseAddr, v6 only). */
export function parseIPv6(text: string): IPv6Words | undefined {
  if (!text.includes(':')) return undefined;
  const ellipsis = text.indexOf('::');
  if (ellipsis < 0) {
    const groups = parseGroups(text, true);
    return groups?.length === 8 ? wordsFromGroups(groups) : undefined;
  }
  if (text.indexOf('::', ellipsis + 1) >= 0) return undefined;
  const head = parseGroups(text.slice(0, ellipsis), false);
  const tail = parseGroups(text.slice(ellipsis + 2), true);
  // netip: "the :: must expand to at least one field of zeros".
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  const zeros = new Array<number>(8 - head.length - tail.length).fill(0);
  return wordsFromGroups([...head, ...zeros, ...tail]);
}

/** As Go's netip.Addr.String() prints (RFC 5952): lowercase, longest run (>= 2) of zero groups as '::' (first on a
 * tie), and an IPv4-mapped address (::ffff:a.b.c.d) with its dotted quad. */
export function formatIPv6(w: IPv6Words | Uint32Array): string {
  const w0 = w[0]! >>> 0, w1 = w[1]! >>> 0, w2 = w[2]! >>> 0, w3 = w[3]! >>> 0;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) {
    return `::ffff:${w3 >>> 24}.${(w3 >>> 16) & 0xff}.${(w3 >>> 8) & 0xff}.${w3 & 0xff}`;
  }
  const groups = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let zeroStart = -1;
  let zeroEnd = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i >= 2 && j - i > zeroEnd - zeroStart) {
      zeroStart = i;
      zeroEnd = j;
    }
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === zeroStart) {
      out += '::';
      i = zeroEnd - 1;
      continue;
    }
    if (i > 0 && i !== zeroEnd) out += ':';
    out += groups[i]!.toString(16);
  }
  return out;
}

/** 'addr/bits' as netip.ParsePrefix (v6 only): decimal bits 0..128 without sign or leading zeros. */
export function parseCidr6(text: string): IPv6Net | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const words = parseIPv6(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (words === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > 128) return undefined;
  return { words, bits };
}

export function formatCidr6(n: IPv6Net): string {
  return `${formatIPv6(n.words)}/${n.bits}`;
}

/** The mask of word `index` (0..3) for a prefix of `bits`. */
function wordMask(bits: number, index: number): number {
  const inWord = bits - index * 32;
  if (inWord <= 0) return 0;
  if (inWord >= 32) return 0xffffffff;
  return (0xffffffff << (32 - inWord)) >>> 0;
}

/** Allocation-free: is the address w0..w3 inside `net`? */
export function net6Contains(net: IPv6Net, w0: number, w1: number, w2: number, w3: number): boolean {
  const bits = net.bits;
  const n = net.words;
  return (
    (((w0 ^ n[0]) & wordMask(bits, 0)) === 0) &&
    (((w1 ^ n[1]) & wordMask(bits, 1)) === 0) &&
    (((w2 ^ n[2]) & wordMask(bits, 2)) === 0) &&
    (((w3 ^ n[3]) & wordMask(bits, 3)) === 0)
  );
}

/** Reads 16 bytes at buf[off] into out[0..4) as uint32 words (allocation-free). */
export function readIPv6Words(buf: Uint8Array, off: number, out: Uint32Array): void {
  for (let i = 0; i < 4; i++) {
    const o = off + 4 * i;
    out[i] = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
  }
}
