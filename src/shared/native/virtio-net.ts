/**
 * The tun offload interface of Linux (<linux/if_tun.h>, <linux/virtio_net.h>): a tun opened with IFF_VNET_HDR puts
 * a 10-byte `struct virtio_net_hdr` in front of every packet read and expects one in front of every packet written;
 * TUNSETOFFLOAD then lets the kernel hand over TCP/UDP super-packets (up to 64 KB, one header, `gso_size` bytes of
 * payload per segment) and packets whose transport checksum is only partly computed (platform-notes §9).
 *
 * This module holds the constants both sides share: the supervisor opens the device with them (tun.ts), a routine
 * asks its queue fd whether it carries the header (`fdHasVnetHeader`) and splits what it reads (routine/tso.ts).
 */
import koffi from './koffi';
import { ioctlNoThrow, lastErrno } from './libc';

// ioctl with an integer third argument (TUNSETOFFLOAD reads its flags from the argument itself, not a pointer).
const c_ioctl_int = koffi.load(null).func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (fd: number, req: number, arg: number) => number;

/** ioctl(fd, request, value) for requests taking an integer: 0, or -errno. */
export function ioctlInt(fd: number, request: number, value: number): number {
  return c_ioctl_int(fd, request, value) < 0 ? -lastErrno() : 0;
}

export const IFF_VNET_HDR = 0x4000;
export const TUNGETIFF = 0x800454d2;
export const TUNSETOFFLOAD = 0x400454d0;

// TUNSETOFFLOAD flags: what the kernel may hand us unfinished.
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

/** sizeof(struct virtio_net_hdr): flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset (u16, LE). */
export const VNET_HDR_LEN = 10;
export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN_FIELD = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;

/** flags: the transport checksum from csum_start on is still to be computed (CHECKSUM_PARTIAL). */
export const VNET_F_NEEDS_CSUM = 1;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
/** A TCP super-packet with CWR set; only sent when TUN_F_TSO_ECN was offered, which we never do. */
export const GSO_ECN = 0x80;

/**
 * The most segments one super-packet may hold: the supervisor sets the device's gso_max_segs to it, so the kernel
 * segments anything larger itself before it reaches the queue. A routine reads the tun while its batch has room for
 * this many segments, so a super-packet never has to wait half-split for the next wake-up (the data path reads 64
 * packets per batch: two full super-packets, or 33 plain packets, fit).
 */
export const TUN_GSO_MAX_SEGS = 32;

/** Largest read from an offloading queue: the header plus a 64 KB super-packet. */
export const VNET_READ_BYTES = VNET_HDR_LEN + 65535;

/**
 * TUNGETIFF on a queue fd: true when it was opened with IFF_VNET_HDR (so every read and write carries the header).
 * Any other fd (the userspace inside's socket: ENOTTY) answers false.
 */
export function fdHasVnetHeader(fd: number): boolean {
  const req = Buffer.alloc(40);
  if (ioctlNoThrow(fd, TUNGETIFF, req) < 0) return false;
  return (req.readUInt16LE(16) & IFF_VNET_HDR) !== 0;
}
