/**
 * The 5-tuple (+ fragment flag) the firewall and conntrack look at, oriented from this node's point of view, and a
 * parser that fills a caller-owned object so the per-packet path allocates nothing (nebula-spec §7.3).
 */
import { PROTO_ICMP } from './rule';

export interface FirewallPacket {
  /** IP protocol number (byte 9 of the IPv4 header). */
  proto: number;
  /** Our side of the flow, as a uint32 (big-endian reading of the address). */
  localIp: number;
  /** The peer's side of the flow. */
  remoteIp: number;
  localPort: number;
  remotePort: number;
  /** True for non-first fragments (fragment offset ≠ 0): they have no L4 header, ports are 0. */
  fragment: boolean;
}

export function newFirewallPacket(): FirewallPacket {
  return { proto: 0, localIp: 0, remoteIp: 0, localPort: 0, remotePort: 0, fragment: false };
}

const IPV4_HEADER_LEN = 20;
/** Bytes of L4 header needed for the two ports. */
const MIN_L4_LEN = 4;

/**
 * Parses the IPv4 header of `buf[0..len)` into `out`. Inbound packets (decrypted from a peer): remote = source,
 * local = destination; outbound (read from the tun): the reverse, so both directions of a flow give the same tuple.
 * Returns false (leaving `out` partly written) for non-IPv4, short packets and a bad IHL.
 */
export function parseIPv4Packet(buf: Uint8Array, len: number, incoming: boolean, out: FirewallPacket): boolean {
  if (len > buf.length) len = buf.length;
  if (len < IPV4_HEADER_LEN) return false;
  const b0 = buf[0];
  if (b0 >> 4 !== 4) return false;
  const ihl = (b0 & 0x0f) << 2;
  if (ihl < IPV4_HEADER_LEN) return false;

  const fragment = (((buf[6] << 8) | buf[7]) & 0x1fff) !== 0;
  const proto = buf[9];
  const noPorts = fragment || proto === PROTO_ICMP;
  if (len < (noPorts ? ihl : ihl + MIN_L4_LEN)) return false;

  const src = ((buf[12] << 24) | (buf[13] << 16) | (buf[14] << 8) | buf[15]) >>> 0;
  const dst = ((buf[16] << 24) | (buf[17] << 16) | (buf[18] << 8) | buf[19]) >>> 0;
  const srcPort = noPorts ? 0 : (buf[ihl] << 8) | buf[ihl + 1];
  const dstPort = noPorts ? 0 : (buf[ihl + 2] << 8) | buf[ihl + 3];

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
