/**
 * The 5-tuple (+ fragment flag) the firewall and conntrack look at, oriented from this node's point of view, and a
 * parser that fills a caller-owned object so the per-packet path allocates nothing (nebula-spec §7.3).
 *
 * IPv6 is parsed as Go nebula 1.11.1 does (outside.go parseV6 and iputil.IPv6FindUpperProtocol): the extension
 * header chain is walked (hop-by-hop, routing, destination options, fragment, AH; anything else is the upper layer),
 * a truncated chain is invalid, a non-first fragment has no ports, ICMPv6 has no local port and its echo identifier
 * as the remote port (conntrack only; rules never filter on it).
 */
import { PROTO_ICMP } from './rule';

export interface FirewallPacket {
  /** IP version of the packet: 6 means local6/remote6 hold the addresses. */
  version: 4 | 6;
  /** IP protocol number (IPv4 byte 9; IPv6: the upper-layer protocol after the extension headers). */
  proto: number;
  /** Our side of the flow, as a uint32 (big-endian reading of the address); for IPv6 the last word of local6. */
  localIp: number;
  /** The peer's side of the flow; for IPv6 the last word of remote6. */
  remoteIp: number;
  localPort: number;
  remotePort: number;
  /** True for non-first fragments (fragment offset ≠ 0): they have no L4 header, ports are 0. */
  fragment: boolean;
  /** IPv6 only (not read for IPv4): our address as four big-endian uint32 words. */
  readonly local6: Uint32Array;
  /** IPv6 only: the peer's address as four big-endian uint32 words. */
  readonly remote6: Uint32Array;
}

export function newFirewallPacket(): FirewallPacket {
  return {
    version: 4,
    proto: 0,
    localIp: 0,
    remoteIp: 0,
    localPort: 0,
    remotePort: 0,
    fragment: false,
    local6: new Uint32Array(4),
    remote6: new Uint32Array(4),
  };
}

const IPV4_HEADER_LEN = 20;
const IPV6_HEADER_LEN = 40;
/** Bytes of L4 header needed for the two ports. */
const MIN_L4_LEN = 4;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;

/**
 * Parses the IPv4 header of `buf[0..len)` into `out`. Inbound packets (decrypted from a peer): remote = source,
 * local = destination; outbound (read from the tun): the reverse, so both directions of a flow give the same tuple.
 * Returns false (leaving `out` partly written) for non-IPv4, short packets and a bad IHL.
 */
export function parseIPv4Packet(buf: Uint8Array, len: number, incoming: boolean, out: FirewallPacket): boolean {
  if (len > buf.length) len = buf.length;
  if (len < IPV4_HEADER_LEN) return false;
  const b0 = buf[0]!;
  if (b0 >> 4 !== 4) return false;
  const ihl = (b0 & 0x0f) << 2;
  if (ihl < IPV4_HEADER_LEN) return false;

  const fragment = (((buf[6]! << 8) | buf[7]!) & 0x1fff) !== 0;
  const proto = buf[9]!;
  const noPorts = fragment || proto === PROTO_ICMP;
  if (len < (noPorts ? ihl : ihl + MIN_L4_LEN)) return false;

  const src = ((buf[12]! << 24) | (buf[13]! << 16) | (buf[14]! << 8) | buf[15]!) >>> 0;
  const dst = ((buf[16]! << 24) | (buf[17]! << 16) | (buf[18]! << 8) | buf[19]!) >>> 0;
  const srcPort = noPorts ? 0 : (buf[ihl]! << 8) | buf[ihl + 1]!;
  const dstPort = noPorts ? 0 : (buf[ihl + 2]! << 8) | buf[ihl + 3]!;

  out.version = 4;
  out.proto = proto;
  out.fragment = fragment;
  if (incoming) {
    out.remoteIp = src;
    out.localIp = dst;
    out.remotePort = srcPort;
    out.localPort = dstPort;
  } else {
    out.remoteIp = dst;
    out.localIp = src;
    out.remotePort = dstPort;
    out.localPort = srcPort;
  }
  return true;
}

/** IPv4 or IPv6 by the version nibble (Go's newPacket); false for anything else or anything invalid. */
export function parseIPPacket(buf: Uint8Array, len: number, incoming: boolean, out: FirewallPacket): boolean {
  if (len > buf.length) len = buf.length;
  if (len < 1) return false;
  const version = buf[0]! >> 4;
  if (version === 4) return parseIPv4Packet(buf, len, incoming, out);
  if (version === 6) return parseIPv6Packet(buf, len, incoming, out);
  return false;
}

/**
 * Where the upper layer starts, as iputil.IPv6FindUpperProtocol (v1.11.1) walks the chain: the result is written to
 * `walk` (proto, offset, fragment). Returns false when the chain is truncated (or a header's length runs past the
 * packet). Only RFC 8200's extension headers are walked; everything else (ESP, no-next-header, mobility, SCTP...) is
 * terminal, so an unknown protocol is never mistaken for a transport header. A non-first fragment stops the walk:
 * its protocol is the fragment header's next header and there is no transport header.
 */
export interface IPv6Walk {
  proto: number;
  offset: number;
  fragment: boolean;
}

export function findIPv6UpperProtocol(buf: Uint8Array, len: number, walk: IPv6Walk): boolean {
  if (len < IPV6_HEADER_LEN) return false;
  let next = buf[6]!;
  let offset = IPV6_HEADER_LEN;
  // Every step moves at least 8 bytes forward and stops at the end of the packet, so the loop is bounded by len / 8.
  for (;;) {
    switch (next) {
      case 0: // hop-by-hop options
      case 43: // routing
      case 60: // destination options
        if (len < offset + 2) return false;
        next = buf[offset]!;
        offset += (buf[offset + 1]! + 1) << 3;
        break;
      case 44: // fragment
        if (len < offset + 8) return false;
        if (buf[offset + 2] !== 0 || (buf[offset + 3]! & 0xf8) !== 0) {
          walk.proto = buf[offset]!;
          walk.offset = offset;
          walk.fragment = true;
          return true;
        }
        next = buf[offset]!;
        offset += 8;
        break;
      case 51: // authentication header: its length is in 4-byte units, minus 2
        if (len < offset + 2) return false;
        next = buf[offset]!;
        offset += (buf[offset + 1]! + 2) << 2;
        break;
      default:
        if (offset > len) return false;
        walk.proto = next;
        walk.offset = offset;
        walk.fragment = false;
        return true;
    }
  }
}

/** One walk result reused by every parse (the data path is single-threaded per worker). */
const walk6: IPv6Walk = { proto: 0, offset: 0, fragment: false };

function readWord(buf: Uint8Array, o: number): number {
  return ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
}

/** outside.go parseV6 (v1.11.1). */
function parseIPv6Packet(buf: Uint8Array, len: number, incoming: boolean, out: FirewallPacket): boolean {
  if (len < IPV6_HEADER_LEN) return false;
  if (!findIPv6UpperProtocol(buf, len, walk6)) return false;
  const proto = walk6.proto;
  const off = walk6.offset;
  let srcPort = 0;
  let dstPort = 0;
  if (!walk6.fragment) {
    if (proto === PROTO_ICMPV6) {
      // Type, code and checksum at least; echo also carries the identifier Go tracks as the remote port.
      if (len < off + 4) return false;
      const type = buf[off]!;
      if (type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) {
        if (len < off + 6) return false;
        // Orientation does not matter for ICMPv6: the identifier is the remote port both ways (set below).
        srcPort = dstPort = (buf[off + 4]! << 8) | buf[off + 5]!;
      }
    } else if (proto === PROTO_TCP || proto === PROTO_UDP) {
      if (len < off + MIN_L4_LEN) return false;
      srcPort = (buf[off]! << 8) | buf[off + 1]!;
      dstPort = (buf[off + 2]! << 8) | buf[off + 3]!;
    }
  }
  // Source address at 8, destination at 24; inbound the source is the remote side, outbound ours.
  const remoteAt = incoming ? 8 : 24;
  const localAt = incoming ? 24 : 8;
  const remote = out.remote6;
  const local = out.local6;
  for (let i = 0; i < 4; i++) {
    remote[i] = readWord(buf, remoteAt + 4 * i);
    local[i] = readWord(buf, localAt + 4 * i);
  }
  out.version = 6;
  out.proto = proto;
  out.fragment = walk6.fragment;
  out.remoteIp = remote[3]!;
  out.localIp = local[3]!;
  if (proto === PROTO_ICMPV6 && !walk6.fragment) {
    out.remotePort = srcPort;
    out.localPort = 0;
  } else if (incoming) {
    out.remotePort = srcPort;
    out.localPort = dstPort;
  } else {
    out.remotePort = dstPort;
    out.localPort = srcPort;
  }
  return true;
}
