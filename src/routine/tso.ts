/**
 * Splitting what an offloading tun queue hands over (virtio-net header + packet, native/virtio-net.ts) into the
 * MTU-sized IP packets the data path seals one by one, as the kernel's own GSO would on a real NIC (and as
 * wireguard-go's tun/offload_linux.go does):
 *
 * - gso_type TCPV4 / TCPV6 / UDP_L4: the payload after the transport header is cut into `gso_size` chunks; each
 *   segment gets the IP and transport headers again, with the IPv4 total length, id (+1 per segment) and header
 *   checksum, or the IPv6 payload length; TCP sequence numbers advanced by the bytes before it, FIN and PSH only on
 *   the last segment and CWR only on the first (as tcp_gso_segment); the UDP length; and its own transport checksum
 *   over the pseudo-header. The kernel's own hdr_len is not trusted (it can be a whole packet on the forwarding
 *   path): the transport header length comes from the packet.
 * - gso_type NONE with NEEDS_CSUM: one packet whose transport checksum the kernel left partial (the pseudo-header
 *   sum sits in the checksum field): it is completed over csum_start.. as skb_checksum_help does (0 is sent as 0xffff).
 * - anything else (unknown gso_type, ECN, fields pointing past the packet, gso_size 0, more segments than allowed,
 *   a segment larger than the output buffers) is refused with a negative reason; the caller drops and counts it.
 *
 * `prepare` validates and remembers the layout without touching the input, `writeSegment(i)` builds segment i into
 * an output buffer: nothing is allocated per packet, and the input stays valid until the caller reads again.
 */
import {
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  VNET_CSUM_OFFSET,
  VNET_CSUM_START,
  VNET_FLAGS,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_SIZE,
  VNET_GSO_TYPE,
  VNET_HDR_LEN,
  VNET_HDR_LEN_FIELD,
} from '../shared/native/virtio-net';
import { checksumOf, onesSum, onesSumWide } from '../shared/util/checksum';
import { IPPROTO_TCP, IPPROTO_UDP, TCP_CSUM_OFFSET, TCP_CWR, TCP_FIN, TCP_FLAGS_AT, TCP_PSH, UDP_CSUM_OFFSET } from '../shared/util/tcp-constants';

// Why `prepare` refused a read (all negative; the edge counts every one as a malformed drop).
/** Shorter than the header, or an empty packet. */
export const REFUSED_SHORT = -1;
/** A gso_type we did not offer to take (UFO, ECN, unknown). */
export const REFUSED_GSO_TYPE = -2;
/** csum_start / csum_offset / hdr_len point outside the packet, or at the wrong place for the protocol. */
export const REFUSED_OFFSETS = -3;
/** The IP version does not match gso_type, or the IP header is cut short. */
export const REFUSED_IP_HEADER = -4;
/** A TCP data offset outside 20..60. */
export const REFUSED_TCP_HEADER = -5;
/** gso_size 0 with a GSO type, or no payload to segment. */
export const REFUSED_GSO_SIZE = -6;
/** More segments than the caller can take at once. */
export const REFUSED_TOO_MANY_SEGMENTS = -7;
/** A packet (or one segment) longer than the caller's output buffers. */
export const REFUSED_TOO_BIG = -8;

export class SuperPacketSplitter {
  private src: Buffer = Buffer.alloc(0);
  /** 32-bit view of src's whole ArrayBuffer, for onesSumWide (made again only when the caller's buffer changes). */
  private srcWords: Uint32Array = new Uint32Array(0);
  /** Where the IP packet starts in `src` (after the virtio header) and its length. */
  private readonly base = VNET_HDR_LEN;
  private len = 0;
  private gso = false;
  private needsCsum = false;
  private isV6 = false;
  private isTcp = false;
  private csumStart = 0;
  private csumAt = 0;
  /** IP + transport header bytes repeated in front of every segment. */
  private hdrLen = 0;
  private gsoSize = 0;
  private segments = 0;
  private firstSeq = 0;
  private firstId = 0;
  /** Sum of the pseudo-header's addresses and protocol, the same for every segment. */
  private pseudoSum = 0;

  /** True when the last `prepare` accepted a super-packet (gso_type other than NONE). */
  get isSuperPacket(): boolean {
    return this.gso;
  }

  /**
   * Validates the virtio header at src[0..10) and the packet after it (up to `total`); returns how many packets
   * `writeSegment` will produce (1 for a gso_type NONE packet), or a negative REFUSED_* reason.
   * `maxSegments`: the most the caller can take; `maxPacketBytes`: the size of its output buffers.
   */
  prepare(src: Buffer, total: number, maxSegments: number, maxPacketBytes: number): number {
    this.segments = 0;
    this.gso = false;
    if (total <= VNET_HDR_LEN) return REFUSED_SHORT;
    const len = total - VNET_HDR_LEN;
    const flags = src[VNET_FLAGS]!;
    const gsoType = src[VNET_GSO_TYPE]!;
    const csumStart = src.readUInt16LE(VNET_CSUM_START);
    const csumOffset = src.readUInt16LE(VNET_CSUM_OFFSET);
    if (src !== this.src) {
      this.src = src;
      this.srcWords = new Uint32Array(src.buffer, 0, src.buffer.byteLength >>> 2);
    }
    this.len = len;
    this.needsCsum = (flags & VNET_F_NEEDS_CSUM) !== 0;
    this.csumStart = csumStart;
    this.csumAt = csumStart + csumOffset;

    if (gsoType === GSO_NONE) {
      if (len > maxPacketBytes) return REFUSED_TOO_BIG;
      if (this.needsCsum && this.csumAt + 2 > len) return REFUSED_OFFSETS;
      if (maxSegments < 1) return REFUSED_TOO_MANY_SEGMENTS;
      this.segments = 1;
      return 1;
    }
    if (gsoType !== GSO_TCPV4 && gsoType !== GSO_TCPV6 && gsoType !== GSO_UDP_L4) return REFUSED_GSO_TYPE;
    // The kernel always asks for the checksum of a GSO packet; without csum_start we could not find its header.
    if (!this.needsCsum) return REFUSED_OFFSETS;
    const refusedIp = this.parseIp(gsoType);
    if (refusedIp !== 0) return refusedIp;
    const refusedL4 = this.parseTransport(gsoType, csumOffset);
    if (refusedL4 !== 0) return refusedL4;
    if (src.readUInt16LE(VNET_HDR_LEN_FIELD) > len) return REFUSED_OFFSETS;
    const gsoSize = src.readUInt16LE(VNET_GSO_SIZE);
    const payload = len - this.hdrLen;
    if (gsoSize === 0 || payload <= 0) return REFUSED_GSO_SIZE;
    const segments = Math.ceil(payload / gsoSize);
    if (segments > maxSegments) return REFUSED_TOO_MANY_SEGMENTS;
    if (this.hdrLen + Math.min(gsoSize, payload) > maxPacketBytes) return REFUSED_TOO_BIG;
    this.gsoSize = gsoSize;
    this.segments = segments;
    this.gso = true;
    return segments;
  }

  /** Builds packet `i` (0 <= i < prepare's result) at out[0..) and returns its length. */
  writeSegment(i: number, out: Buffer): number {
    if (i < 0 || i >= this.segments) throw new RangeError(`segment ${i} of ${this.segments}`);
    const src = this.src;
    const base = this.base;
    if (!this.gso) {
      src.copy(out, 0, base, base + this.len);
      if (this.needsCsum) {
        // The field holds the pseudo-header sum: it is part of the sum, then replaced by the result.
        const sum = onesSumWide(src, this.srcWords, base + this.csumStart, base + this.len, 0);
        out.writeUInt16BE(checksumOf(sum) || 0xffff, this.csumAt);
      }
      return this.len;
    }
    const hdrLen = this.hdrLen;
    const dataStart = hdrLen + i * this.gsoSize;
    const dataEnd = Math.min(dataStart + this.gsoSize, this.len);
    const total = hdrLen + (dataEnd - dataStart);
    src.copy(out, 0, base, base + hdrLen);
    src.copy(out, hdrLen, base + dataStart, base + dataEnd);

    const l4 = this.csumStart;
    if (this.isV6) {
      out.writeUInt16BE(total - 40, 4);
    } else {
      out.writeUInt16BE(total, 2);
      out.writeUInt16BE((this.firstId + i) & 0xffff, 4);
      out[10] = 0;
      out[11] = 0;
      out.writeUInt16BE(checksumOf(onesSum(out, 0, l4, 0)), 10);
    }
    const l4Len = total - l4;
    if (this.isTcp) {
      out.writeUInt32BE((this.firstSeq + i * this.gsoSize) >>> 0, l4 + 4);
      let tcpFlags = out[l4 + TCP_FLAGS_AT]!;
      if (dataEnd !== this.len) tcpFlags &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) tcpFlags &= ~TCP_CWR;
      out[l4 + TCP_FLAGS_AT] = tcpFlags;
    } else {
      out.writeUInt16BE(l4Len, l4 + 4);
    }
    out[this.csumAt] = 0;
    out[this.csumAt + 1] = 0;
    // The transport header as rewritten here, then the payload summed where it lies in the read (word-aligned
    // there; the header length is even, so the payload starts on the checksum's 16-bit grid).
    const headerSum = onesSum(out, l4, hdrLen, this.pseudoSum + l4Len);
    const csum = checksumOf(onesSumWide(src, this.srcWords, base + dataStart, base + dataEnd, headerSum));
    // UDP says "no checksum" with 0, so a computed 0 goes out as 0xffff (the same value in ones' complement).
    out.writeUInt16BE(csum === 0 && !this.isTcp ? 0xffff : csum, this.csumAt);
    return total;
  }

  /** IP version against gso_type, the IP header against csum_start; sets isV6, firstId and the pseudo-header sum. */
  private parseIp(gsoType: number): number {
    const src = this.src;
    const base = this.base;
    const version = src[base]! >> 4;
    if (version === 4 && gsoType !== GSO_TCPV6) {
      const ihl = (src[base]! & 0x0f) * 4;
      if (ihl < 20 || this.len < ihl) return REFUSED_IP_HEADER;
      // IPv4 has no extension headers: the transport header starts right after the IP header and its options.
      if (this.csumStart !== ihl) return REFUSED_OFFSETS;
      this.isV6 = false;
      this.firstId = src.readUInt16BE(base + 4);
      this.pseudoSum = onesSum(src, base + 12, base + 20, 0);
    } else if (version === 6 && gsoType !== GSO_TCPV4) {
      if (this.len < 40) return REFUSED_IP_HEADER;
      // Extension headers may sit between the fixed header and csum_start; the payload length covers them.
      if (this.csumStart < 40) return REFUSED_OFFSETS;
      this.isV6 = true;
      this.pseudoSum = onesSum(src, base + 8, base + 40, 0);
    } else {
      return REFUSED_IP_HEADER;
    }
    return 0;
  }

  /** The transport header at csum_start: its length (hdrLen), first sequence number, protocol. */
  private parseTransport(gsoType: number, csumOffset: number): number {
    const src = this.src;
    const l4 = this.csumStart;
    if (gsoType === GSO_UDP_L4) {
      if (csumOffset !== UDP_CSUM_OFFSET || l4 + 8 > this.len) return REFUSED_OFFSETS;
      this.isTcp = false;
      this.hdrLen = l4 + 8;
      this.pseudoSum += IPPROTO_UDP;
      return 0;
    }
    if (csumOffset !== TCP_CSUM_OFFSET || l4 + 20 > this.len) return REFUSED_OFFSETS;
    const tcpLen = (src[this.base + l4 + 12]! >> 4) * 4;
    if (tcpLen < 20) return REFUSED_TCP_HEADER;
    if (l4 + tcpLen > this.len) return REFUSED_OFFSETS;
    this.isTcp = true;
    this.hdrLen = l4 + tcpLen;
    this.firstSeq = src.readUInt32BE(this.base + l4 + 4);
    this.pseudoSum += IPPROTO_TCP;
    return 0;
  }
}
