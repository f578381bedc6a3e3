/**
 * `struct sockaddr_in` as a raw 16-byte Buffer: family u16 (host order, LE here) at 0, port u16 big-endian at 2,
 * IPv4 address at 4 (network order), 8 bytes of zero padding. IPs are uint32 numbers read big-endian, as in
 * `src/shared/util/ipv4.ts`. The readers and the writer touch the Buffer in place so the packet loops can reuse
 * one Buffer per socket without allocating.
 */
import { AF_INET } from './libc';
import { parseIPv4 } from '../util/ipv4';

export const SOCKADDR_IN_SIZE = 16;

export function allocSockaddrIn(): Buffer {
  return Buffer.alloc(SOCKADDR_IN_SIZE);
}

/** Fills `sa` with AF_INET, `ip` (uint32) and `port`. */
export function fillSockaddrIn(sa: Buffer, ip: number, port: number): void {
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  sa.writeUInt32BE(ip >>> 0, 4);
  sa.writeUInt32LE(0, 8);
  sa.writeUInt32LE(0, 12);
}

/** A new sockaddr_in for a dotted-quad host; throws on anything that is not an IPv4 address. */
export function sockaddrIn(host: string, port: number): Buffer {
  const ip = parseIPv4(host);
  if (ip === undefined) throw new Error(`not an IPv4 address: ${JSON.stringify(host)}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${port}`);
  const sa = allocSockaddrIn();
  fillSockaddrIn(sa, ip, port);
  return sa;
}

export function sockaddrFamily(sa: Buffer): number {
  return sa.readUInt16LE(0);
}

export function sockaddrPort(sa: Buffer): number {
  return sa.readUInt16BE(2);
}

/** The IPv4 address as a uint32 (only meaningful when the family is AF_INET). */
export function sockaddrIPv4(sa: Buffer): number {
  return sa.readUInt32BE(4);
}
