/**
 * Nebula 1.10+'s `Addr { Hi=1 uint64, Lo=2 uint64 }` (nebula.proto): a VPN address of either family as its 16 bytes,
 * the first 8 big-endian in Hi, the last 8 in Lo. It carries the VPN addresses of lighthouse and relay messages on
 * tunnels made with v2 certificates (NebulaMetaDetails.VpnAddr / RelayVpnAddrs, NebulaControl.RelayToAddr /
 * RelayFromAddr); v1 tunnels keep the old uint32 fields so 1.6.1 peers understand them.
 *
 * Go writes an IPv4 address as its IPv4-mapped form (netip.Addr.As16: ::ffff:a.b.c.d, so Hi 0 and Lo
 * 0x0000ffff_aabbccdd) and reads every Addr back through Unmap, so that form, and only that one, is an IPv4 address.
 * Any other address is an IPv6 VPN address: nebula-ts keys hosts by their IPv4 VPN IP, so callers map it to the host
 * whose certificate holds it (supervisor/vpn-addr-book.ts) or refuse it.
 */
import { ProtobufError, ProtoReader, ProtoWriter, WIRE_VARINT, type ProtoField } from '../protobuf';
import { formatIPv4 } from '../util/ipv4';
import { formatIPv6, parseIPv6 } from '../util/ipv6';

export interface VpnAddr {
  hi: bigint;
  lo: bigint;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** An IPv4 address (uint32) as Go writes it in an Addr: ::ffff:a.b.c.d. */
export function addrOfIPv4(ip: number): VpnAddr {
  return { hi: 0n, lo: MAPPED_PREFIX | BigInt(ip >>> 0) };
}

/** The IPv4 address an Addr holds (its IPv4-mapped form, what Go's Unmap turns back into IPv4), else undefined. */
export function ipv4OfAddr(a: VpnAddr): number | undefined {
  if (a.hi !== 0n || a.lo >> 32n !== 0xffffn) return undefined;
  return Number(a.lo & 0xffffffffn);
}

/** An address of 4 bytes (IPv4) or 16 (IPv6), as Go's netAddrToProtoAddr writes it (As16: IPv4 mapped). */
export function addrOfBytes(b: Uint8Array): VpnAddr {
  if (b.length === 4) return addrOfIPv4(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
  if (b.length !== 16) throw new RangeError(`an address is 4 or 16 bytes, not ${b.length}`);
  const view = Buffer.from(b.buffer, b.byteOffset, 16);
  return { hi: view.readBigUInt64BE(0), lo: view.readBigUInt64BE(8) };
}

/** An IPv6 address in text ('fd42::3') as an Addr; undefined for anything else (IPv4 included). */
export function parseAddr6(text: string): VpnAddr | undefined {
  const w = parseIPv6(text);
  if (w === undefined) return undefined;
  return { hi: (BigInt(w[0]) << 32n) | BigInt(w[1]), lo: (BigInt(w[2]) << 32n) | BigInt(w[3]) };
}

/** An IPv6 Addr as Go prints a netip.Addr (compressed: fd42::3); formatAddr keeps the eight groups of the logs. */
export function formatAddr6(a: VpnAddr): string {
  const m = 0xffffffffn;
  return formatIPv6([Number(a.hi >> 32n), Number(a.hi & m), Number(a.lo >> 32n), Number(a.lo & m)]);
}

/** One number per address (a Map key): equal for equal addresses. */
export function addrKey(a: VpnAddr): bigint {
  return (BigInt.asUintN(64, a.hi) << 64n) | BigInt.asUintN(64, a.lo);
}

/** For logs: dotted IPv4 for a mapped address, else the eight IPv6 groups. */
export function formatAddr(a: VpnAddr): string {
  const v4 = ipv4OfAddr(a);
  if (v4 !== undefined) return formatIPv4(v4);
  const groups: string[] = [];
  for (const half of [a.hi, a.lo]) {
    for (let shift = 48n; shift >= 0n; shift -= 16n) groups.push(((half >> shift) & 0xffffn).toString(16));
  }
  return groups.join(':');
}

/** A uint64 varint field (Addr.Hi / Lo, V6AddrPort.Hi / Lo). */
export function asUint64(f: ProtoField): bigint {
  if (f.wire !== WIRE_VARINT) throw new ProtobufError(`field ${f.field}: expected varint`);
  return f.int;
}

/** The Addr message's bytes: zero halves left out (proto3), so ::0 is the empty message. */
export function encodeAddr(a: VpnAddr): Buffer {
  return new ProtoWriter().uint(1, BigInt.asUintN(64, a.hi)).uint(2, BigInt.asUintN(64, a.lo)).finish();
}

/** An Addr message; given `into` (an earlier occurrence of the same field), merged into it as a proto merge does. */
export function decodeAddr(buf: Buffer, into: VpnAddr = { hi: 0n, lo: 0n }): VpnAddr {
  const out: VpnAddr = { hi: into.hi, lo: into.lo };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    if (f.field === 1) out.hi = asUint64(f);
    else if (f.field === 2) out.lo = asUint64(f);
  }
  return out;
}
