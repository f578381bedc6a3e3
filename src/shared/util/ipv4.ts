/** IPv4 helpers. A VPN IP is handled as a uint32 whose value is the address read big-endian. */

export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

export function maskFromPrefix(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function prefixFromMask(mask: number): number | undefined {
  let prefix = 0;
  let m = mask >>> 0;
  while (m & 0x80000000) {
    prefix++;
    m = (m << 1) >>> 0;
  }
  return m === 0 ? prefix : undefined;
}

export interface IPv4Net {
  /** Address as given (host bits kept, as in a cert's "10.1.2.3/16"). */
  ip: number;
  mask: number;
}

/** Parses "a.b.c.d/nn". Returns undefined when malformed. */
export function parseCidr(text: string): IPv4Net | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  return { ip, mask: maskFromPrefix(prefix) };
}

export function formatCidr(net: IPv4Net): string {
  return `${formatIPv4(net.ip)}/${prefixFromMask(net.mask) ?? formatIPv4(net.mask)}`;
}

export function netContains(net: IPv4Net, ip: number): boolean {
  return ((ip & net.mask) >>> 0) === ((net.ip & net.mask) >>> 0);
}
