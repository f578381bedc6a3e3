/**
 * GRO-style coalescing for writes to an offloading tun: consecutive packets of a batch that are in-order segments of
 * one TCP flow are written as one super-packet (virtio-net header with gso_type TCPV4/TCPV6, NEEDS_CSUM), so the
 * kernel takes one write and runs its TCP receive path once instead of once per segment, as its own GRO would on a
 * NIC (and as wireguard-go's tun/offload_linux.go does, there with a flow table; here only neighbours in the batch,
 * which is how a bulk flow arrives).
 *
 * A packet joins the segment before it only when nothing would be lost by merging, following the kernel's
 * tcp_gro_receive: same addresses, ports, IPv4 TOS/TTL/DF or IPv6 traffic class/flow/hop limit, same ACK number and
 * TCP options, only ACK set (PSH allowed on the last one), sequence number right after the bytes so far, and every
 * segment but the last exactly as long as the first. Because the kernel will not verify the checksums of a packet
 * it is told to checksum itself, every packet merged has its IPv4 header and TCP checksums verified here first; one
 * that fails is written on its own, untouched, for the kernel to judge (and drop).
 *
 * Everything is built in one caller-owned buffer; nothing is allocated per packet.
 */
import {
  GSO_TCPV4,
  GSO_TCPV6,
  VNET_CSUM_OFFSET,
  VNET_CSUM_START,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_SIZE,
  VNET_GSO_TYPE,
  VNET_HDR_LEN,
  VNET_HDR_LEN_FIELD,
} from '../shared/native/virtio-net';
import type { PacketBatch } from './edges';
import { foldSum, onesSum, onesSumWide } from '../shared/util/checksum';
import { IPPROTO_TCP, TCP_ACK, TCP_PSH } from '../shared/util/tcp-constants';

const MAX_IP_PACKET = 65535;

/** Bytes [start, end) equal in both (end - start a multiple of 4: addresses, TCP options). No native call. */
function sameWords(a: Buffer, b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i += 4) if (a.readUInt32BE(i) !== b.readUInt32BE(i)) return false;
  return true;
}

export class TcpCoalescer {
  private readonly words: Uint32Array;
  /** Bytes to write from `out` for the last `build`. */
  outLen = 0;

  // The group being built: layout of its first packet and what must match in the next.
  private v6 = false;
  private l4 = 0;
  private hdrLen = 0;
  private gsoSize = 0;
  private nextSeq = 0;
  private addrSum = 0;
  private segmentsFull = true;

  constructor(
    /** The write buffer: a virtio-net header and up to 64 KB of packet. */
    private readonly out: Buffer,
  ) {
    this.words = new Uint32Array(out.buffer, 0, out.buffer.byteLength >>> 2);
  }

  /**
   * Puts in `out[0, outLen)` the write for batch packets [i, count): either packet i alone behind an all-zero
   * header, or packet i and the segments after it that merge with it. Returns how many packets it holds (>= 1).
   */
  build(batch: PacketBatch, i: number, count: number): number {
    const first = batch.bufs[i]!;
    const firstLen = batch.lens[i]!;
    const out = this.out;
    out.fill(0, 0, VNET_HDR_LEN);
    first.copy(out, VNET_HDR_LEN, 0, firstLen);
    this.outLen = VNET_HDR_LEN + firstLen;
    if (i + 1 >= count || !this.startGroup(first, firstLen)) return 1;
    if (!this.mergeable(first, batch.bufs[i + 1]!, batch.lens[i + 1]!)) return 1;
    // Packet i goes out with a checksum the kernel computes: it must be right now.
    if (!this.verifyFirst(first, firstLen)) return 1;
    let n = 1;
    while (i + n < count) {
      const pkt = batch.bufs[i + n]!;
      const len = batch.lens[i + n]!;
      if (!this.mergeable(first, pkt, len) || !this.append(pkt, len)) break;
      n++;
      if ((pkt[this.l4 + 13]! & TCP_PSH) !== 0 || !this.segmentsFull) break;
    }
    if (n > 1) this.finish(batch.bufs[i + n - 1]!);
    return n;
  }

  /** Is `pkt` a TCP segment we may merge at all? Sets the group's layout from it. */
  private startGroup(pkt: Buffer, len: number): boolean {
    const version = pkt[0]! >> 4;
    let l4: number;
    if (version === 4) {
      // No IP options, not a fragment, the length field exactly the packet.
      if (len < 40 || pkt[0] !== 0x45 || pkt[9] !== IPPROTO_TCP) return false;
      if ((pkt.readUInt16BE(6) & 0x3fff) !== 0 || pkt.readUInt16BE(2) !== len) return false;
      l4 = 20;
    } else if (version === 6) {
      // No extension headers.
      if (len < 60 || pkt[6] !== IPPROTO_TCP || pkt.readUInt16BE(4) + 40 !== len) return false;
      l4 = 40;
    } else {
      return false;
    }
    const tcpLen = (pkt[l4 + 12]! >> 4) * 4;
    if (tcpLen < 20 || l4 + tcpLen >= len || (pkt[l4 + 13]! & ~TCP_PSH) !== TCP_ACK) return false;
    this.v6 = version === 6;
    this.l4 = l4;
    this.hdrLen = l4 + tcpLen;
    this.gsoSize = len - this.hdrLen;
    this.nextSeq = (pkt.readUInt32BE(l4 + 4) + this.gsoSize) >>> 0;
    this.addrSum = this.v6 ? onesSum(pkt, 8, 40, 0) : onesSum(pkt, 12, 20, 0);
    this.segmentsFull = (pkt[l4 + 13]! & TCP_PSH) === 0;
    return this.segmentsFull;
  }

  /** Could `pkt` follow the group's bytes so far (headers alike, in sequence, not longer than the first)? */
  private mergeable(first: Buffer, pkt: Buffer, len: number): boolean {
    const l4 = this.l4;
    const hdrLen = this.hdrLen;
    const payload = len - hdrLen;
    if (payload <= 0 || payload > this.gsoSize || this.outLen + payload > this.out.length) return false;
    if (this.v6) {
      if (pkt.readUInt16BE(4) + 40 !== len || this.outLen - VNET_HDR_LEN - 40 + payload > MAX_IP_PACKET) return false;
      // version, traffic class, flow label; next header and hop limit; addresses
      if (pkt.readUInt32BE(0) !== first.readUInt32BE(0) || pkt.readUInt16BE(6) !== first.readUInt16BE(6)) return false;
      if (!sameWords(pkt, first, 8, 40)) return false;
    } else {
      if (pkt[0] !== 0x45 || pkt.readUInt16BE(2) !== len || this.outLen - VNET_HDR_LEN + payload > MAX_IP_PACKET) return false;
      // TOS; flags and fragment offset (DF only); TTL and protocol; addresses
      if (pkt[1] !== first[1] || pkt.readUInt16BE(6) !== first.readUInt16BE(6)) return false;
      if (pkt.readUInt16BE(8) !== first.readUInt16BE(8) || !sameWords(pkt, first, 12, 20)) return false;
    }
    // ports; then the ACK number, data offset and flags (PSH aside), and the options, all as in the first
    if (pkt.readUInt32BE(l4) !== first.readUInt32BE(l4) || pkt.readUInt32BE(l4 + 4) !== this.nextSeq) return false;
    if (pkt.readUInt32BE(l4 + 8) !== first.readUInt32BE(l4 + 8) || pkt[l4 + 12] !== first[l4 + 12]) return false;
    if ((pkt[l4 + 13]! & ~TCP_PSH) !== TCP_ACK) return false;
    return sameWords(pkt, first, l4 + 20, hdrLen);
  }

  /** Packet i's IPv4 header and TCP checksums, over its copy in `out`. */
  private verifyFirst(pkt: Buffer, len: number): boolean {
    const base = VNET_HDR_LEN;
    if (!this.v6 && foldSum(onesSum(pkt, 0, 20, 0)) !== 0xffff) return false;
    const l4Len = len - this.l4;
    const sum = onesSumWide(this.out, this.words, base + this.l4, base + len, this.addrSum + IPPROTO_TCP + l4Len);
    return foldSum(sum) === 0xffff;
  }

  /** Copies pkt's payload behind the group and keeps it if its checksums verify. */
  private append(pkt: Buffer, len: number): boolean {
    const at = this.outLen;
    const hdrLen = this.hdrLen;
    const payload = len - hdrLen;
    pkt.copy(this.out, at, hdrLen, len);
    if (!this.v6 && foldSum(onesSum(pkt, 0, 20, 0)) !== 0xffff) return false;
    const headerSum = onesSum(pkt, this.l4, hdrLen, this.addrSum + IPPROTO_TCP + (len - this.l4));
    if (foldSum(onesSumWide(this.out, this.words, at, at + payload, headerSum)) !== 0xffff) return false;
    this.outLen = at + payload;
    this.nextSeq = (this.nextSeq + payload) >>> 0;
    this.segmentsFull = payload === this.gsoSize;
    return true;
  }

  /** The virtio-net header and the merged packet's lengths, flags and checksums (partial, for the kernel). */
  private finish(last: Buffer): void {
    const out = this.out;
    const base = VNET_HDR_LEN;
    const l4 = this.l4;
    const ipLen = this.outLen - base;
    out[0] = VNET_F_NEEDS_CSUM;
    out[VNET_GSO_TYPE] = this.v6 ? GSO_TCPV6 : GSO_TCPV4;
    out.writeUInt16LE(this.hdrLen, VNET_HDR_LEN_FIELD);
    out.writeUInt16LE(this.gsoSize, VNET_GSO_SIZE);
    out.writeUInt16LE(l4, VNET_CSUM_START);
    out.writeUInt16LE(16, VNET_CSUM_OFFSET);
    if (this.v6) {
      out.writeUInt16BE(ipLen - 40, base + 4);
    } else {
      out.writeUInt16BE(ipLen, base + 2);
      out[base + 10] = 0;
      out[base + 11] = 0;
      out.writeUInt16BE(~foldSum(onesSum(out, base, base + 20, 0)) & 0xffff, base + 10);
    }
    // PSH of the last segment marks the end of what the sender pushed.
    out[base + l4 + 13] = out[base + l4 + 13]! | (last[l4 + 13]! & TCP_PSH);
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, folded but not complemented.
    out.writeUInt16BE(foldSum(this.addrSum + IPPROTO_TCP + (ipLen - l4)), base + l4 + 16);
  }
}
