/**
 * The answer to a packet the firewall refuses when `firewall.inbound_action` / `outbound_action` is `reject`
 * (Nebula 1.7+, iputil/packet.go CreateRejectPacket): a TCP RST for TCP, an ICMP "destination unreachable,
 * communication administratively prohibited" (type 3, code 13) for everything else. Byte for byte what Go builds:
 *
 * - IPv4 header: 20 bytes, no options, TOS 0, id 0, no flags, TTL 64, source and destination swapped.
 * - TCP RST (20 bytes, no options, window 0): ports swapped. If the refused segment carried ACK, the RST's seq is its
 *   ack number and the RST carries no ACK; otherwise seq is 0 and the RST ACKs seq + SYN + FIN + payload length,
 *   as netfilter's REJECT does (nf_reject_ipv4.c).
 * - ICMP: the original IP header (with its options) and the first 8 bytes after it, quoted. Never in answer to an
 *   ICMP error (types 3, 4, 5, 11, 12), so two nodes cannot bounce errors at each other.
 * - Nothing for a non-first fragment (it has no transport header to answer).
 *
 * IPv6 as Go 1.11.1 (ipv6CreateRejectPacket), after walking the extension headers as the firewall does
 * (findIPv6UpperProtocol): nothing for a truncated chain or a non-first fragment; a TCP RST (same rules as above,
 * the payload length counted from the TCP header to the end of the packet) for TCP; otherwise an ICMPv6
 * "destination unreachable, communication administratively prohibited" (type 1, code 1) quoting the original packet
 * from its first byte, at most 1000 bytes of it, never in answer to an ICMPv6 error (types 1 to 4). The IPv6 header
 * is 40 bytes: traffic class and flow label 0, hop limit 64, addresses swapped; checksums over the IPv6 pseudo header.
 *
 * Writes into a caller-owned buffer and allocates nothing: it runs on the packet path.
 */
import { internetChecksum, onesSum } from '../util/checksum';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../util/tcp-constants';
import { findIPv6UpperProtocol, type IPv6Walk } from './packet';

const IPV4_HEADER_LEN = 20;
const TCP_HEADER_LEN = 20;
const ICMP_HEADER_LEN = 8;
/** ICMP types that are errors themselves: destination unreachable, source quench, redirect, time exceeded, parameter problem. */
const ICMP_ERROR_TYPES = [3, 4, 5, 11, 12];
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_CODE_ADMIN_PROHIBITED = 13;
export const REJECT_TTL = 64;

const IPV6_HEADER_LEN = 40;
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_CODE_ADMIN_PROHIBITED = 1;
/** How much of a refused IPv6 packet its ICMPv6 answer quotes (Go: stays under the tunnel MTU). */
export const ICMPV6_QUOTE_LIMIT = 1000;

/** Largest reject built: an ICMPv6 answer (IPv6 header, ICMPv6 header, 1000 quoted bytes); Go's MaxRejectPacketSize. */
export const MAX_REJECT_PACKET_LEN = IPV6_HEADER_LEN + ICMP_HEADER_LEN + ICMPV6_QUOTE_LIMIT;

/** Scratch for the extension header walk (the data path is single-threaded per worker). */
const walk6: IPv6Walk = { proto: 0, offset: 0, fragment: false };

/**
 * Builds the reject for the IPv4 or IPv6 packet in `packet[0..len)` into `out` and returns its length, or 0 when
 * nothing is to be sent (another version, truncated, a non-first fragment, an ICMP error, or `out` too small).
 */
export function buildRejectPacket(packet: Uint8Array, len: number, out: Uint8Array): number {
  if (len > packet.length) len = packet.length;
  if (len >= 1 && packet[0]! >> 4 === 6) return buildRejectPacket6(packet, len, out);
  if (len < IPV4_HEADER_LEN || packet[0]! >> 4 !== 4) return 0;
  const ihl = (packet[0]! & 0x0f) << 2;
  if (ihl < IPV4_HEADER_LEN || len < ihl) return 0;
  if ((packet[6]! & 0x1f) !== 0 || packet[7] !== 0) return 0;
  return packet[9] === IPPROTO_TCP ? buildTcpRst(packet, len, ihl, out) : buildIcmpUnreachable(packet, len, ihl, out);
}

function buildIcmpUnreachable(packet: Uint8Array, len: number, ihl: number, out: Uint8Array): number {
  if (packet[9] === IPPROTO_ICMP && len > ihl && ICMP_ERROR_TYPES.includes(packet[ihl]!)) return 0;
  const quoted = Math.min(len, ihl + 8);
  const outLen = IPV4_HEADER_LEN + ICMP_HEADER_LEN + quoted;
  if (outLen > out.length) return 0;
  writeIPv4Header(packet, out, outLen, IPPROTO_ICMP);
  const icmp = IPV4_HEADER_LEN;
  out[icmp] = ICMP_DEST_UNREACHABLE;
  out[icmp + 1] = ICMP_CODE_ADMIN_PROHIBITED;
  out.fill(0, icmp + 2, icmp + ICMP_HEADER_LEN); // checksum, then the unused word
  out.set(packet.subarray(0, quoted), icmp + ICMP_HEADER_LEN);
  writeU16(out, icmp + 2, internetChecksum(out, icmp, outLen, 0));
  return outLen;
}

function buildTcpRst(packet: Uint8Array, len: number, ihl: number, out: Uint8Array): number {
  const outLen = IPV4_HEADER_LEN + TCP_HEADER_LEN;
  if (len < ihl + TCP_HEADER_LEN || outLen > out.length) return 0;
  writeIPv4Header(packet, out, outLen, IPPROTO_TCP);
  writeTcpRst(packet, len, ihl, out, IPV4_HEADER_LEN);
  writeU16(out, IPV4_HEADER_LEN + 16, internetChecksum(out, IPV4_HEADER_LEN, outLen, pseudoHeaderSum(out, IPPROTO_TCP, TCP_HEADER_LEN)));
  return outLen;
}

/** The RST answering the TCP segment at packet[ihl..len) (netfilter's seq / ack rules), at out[tcp..), checksum 0. */
function writeTcpRst(packet: Uint8Array, len: number, ihl: number, out: Uint8Array, tcp: number): void {
  const flagsIn = packet[ihl + 13]!;
  let seq = 0;
  let ack = 0;
  let flags = TCP_RST;
  if ((flagsIn & TCP_ACK) !== 0) {
    seq = readU32(packet, ihl + 8);
  } else {
    const payload = len - ihl - ((packet[ihl + 12]! >> 4) << 2);
    // Go does this in uint32: a data offset beyond the packet wraps, as it does there.
    ack = (readU32(packet, ihl + 4) + ((flagsIn & TCP_SYN) >> 1) + (flagsIn & TCP_FIN) + payload) >>> 0;
    flags |= TCP_ACK;
  }
  out[tcp] = packet[ihl + 2]!;
  out[tcp + 1] = packet[ihl + 3]!;
  out[tcp + 2] = packet[ihl]!;
  out[tcp + 3] = packet[ihl + 1]!;
  writeU32(out, tcp + 4, seq);
  writeU32(out, tcp + 8, ack);
  out[tcp + 12] = (TCP_HEADER_LEN >> 2) << 4;
  out[tcp + 13] = flags;
  out.fill(0, tcp + 14, tcp + TCP_HEADER_LEN); // window, checksum, urgent pointer
}

/** iputil ipv6CreateRejectPacket (v1.11.1). */
function buildRejectPacket6(packet: Uint8Array, len: number, out: Uint8Array): number {
  if (len < IPV6_HEADER_LEN) return 0;
  if (!findIPv6UpperProtocol(packet, len, walk6) || walk6.fragment) return 0;
  const offset = walk6.offset;
  if (walk6.proto === IPPROTO_TCP) {
    const outLen = IPV6_HEADER_LEN + TCP_HEADER_LEN;
    if (len < offset + TCP_HEADER_LEN || outLen > out.length) return 0;
    writeIPv6Header(packet, out, TCP_HEADER_LEN, IPPROTO_TCP);
    writeTcpRst(packet, len, offset, out, IPV6_HEADER_LEN);
    writeU16(out, IPV6_HEADER_LEN + 16, internetChecksum(out, IPV6_HEADER_LEN, outLen, pseudoHeaderSum6(out, IPPROTO_TCP, TCP_HEADER_LEN)));
    return outLen;
  }
  // No answer to an ICMPv6 error (types 1-4: unreachable, too big, time exceeded, parameter problem).
  if (walk6.proto === IPPROTO_ICMPV6 && len > offset) {
    const type = packet[offset]!;
    if (type >= 1 && type <= 4) return 0;
  }
  const quoted = Math.min(len, ICMPV6_QUOTE_LIMIT);
  const payloadLen = ICMP_HEADER_LEN + quoted;
  const outLen = IPV6_HEADER_LEN + payloadLen;
  if (outLen > out.length) return 0;
  writeIPv6Header(packet, out, payloadLen, IPPROTO_ICMPV6);
  const icmp = IPV6_HEADER_LEN;
  out[icmp] = ICMPV6_DEST_UNREACHABLE;
  out[icmp + 1] = ICMPV6_CODE_ADMIN_PROHIBITED;
  out.fill(0, icmp + 2, icmp + ICMP_HEADER_LEN); // checksum, then the unused word
  out.set(packet.subarray(0, quoted), icmp + ICMP_HEADER_LEN);
  writeU16(out, icmp + 2, internetChecksum(out, icmp, outLen, pseudoHeaderSum6(out, IPPROTO_ICMPV6, payloadLen)));
  return outLen;
}

/** A 40-byte IPv6 header answering `packet`: addresses swapped, no traffic class or flow label, hop limit 64. */
function writeIPv6Header(packet: Uint8Array, out: Uint8Array, payloadLen: number, nextHeader: number): void {
  out[0] = 0x60;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  writeU16(out, 4, payloadLen);
  out[6] = nextHeader;
  out[7] = REJECT_TTL;
  for (let i = 0; i < 16; i++) {
    out[8 + i] = packet[24 + i]!;
    out[24 + i] = packet[8 + i]!;
  }
}

/** The unfolded sum of the IPv6 pseudo header (source, destination, upper-layer length, next header) of `out`. */
function pseudoHeaderSum6(out: Uint8Array, proto: number, length: number): number {
  // The length field is 32 bits; added whole it folds to the sum of its two 16-bit words (2^16 = 1 mod 2^16 - 1).
  return onesSum(out, 8, 40, proto + length);
}

/** A 20-byte header answering `packet`: addresses swapped, everything else fixed, checksum filled in. */
function writeIPv4Header(packet: Uint8Array, out: Uint8Array, totalLen: number, proto: number): void {
  out[0] = 0x45;
  out[1] = 0;
  writeU16(out, 2, totalLen);
  out.fill(0, 4, 8); // id, flags, fragment offset
  out[8] = REJECT_TTL;
  out[9] = proto;
  out[10] = 0;
  out[11] = 0;
  for (let i = 0; i < 4; i++) {
    out[12 + i] = packet[16 + i]!;
    out[16 + i] = packet[12 + i]!;
  }
  writeU16(out, 10, internetChecksum(out, 0, IPV4_HEADER_LEN, 0));
}

/** The unfolded sum of the TCP/UDP pseudo header (source, destination, protocol, length) of the header in `out`. */
function pseudoHeaderSum(out: Uint8Array, proto: number, length: number): number {
  return onesSum(out, 12, 20, proto + length);
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
