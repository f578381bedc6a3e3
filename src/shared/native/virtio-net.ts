/**
 * The tun offload interface of Linux (<linux/if_tun.h>, <linux/virtio_net.h>): a tun opened with IFF_VNET_HDR puts
 * a 10-byte `struct virtio_net_hdr` in front of every packet read and expects one in front of every packet written;
 * TUNSETOFFLOAD then lets the kernel hand over TCP/UDP super-packets (up to 64 KB, one header, `gso_size` bytes of
 * payload per segment) and packets whose transport checksum is only partly computed (platform-notes §9).
 *
 * This module holds the constants both sides share and the offload setup: the supervisor opens the device with the
 * header (tun.ts) and then turns the offloads on (`enableOffloads`); a routine asks its queue fd whether it carries
 * the header (`fdHasVnetHeader`) and splits what it reads (routine/tso.ts).
 */
import { execFileSync } from 'node:child_process';
import koffi from './koffi';
import { NativeError, ioctlNoThrow, lastErrno } from './libc';
import type { TunDevice } from './tun';

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

/** TCP segmentation and checksum offload: what every offloading tun takes (Linux >= 2.6). */
export const TUN_OFFLOADS_TCP = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
/** UDP segmentation offload on top (Linux >= 6.2). */
export const TUN_OFFLOADS_UDP = TUN_F_USO4 | TUN_F_USO6;

/**
 * On a device opened with `vnetHeader`: TUNSETOFFLOAD with checksum + TSO4/TSO6 + USO4/USO6, or without USO when the
 * kernel refuses those, then the device's gso_max_segs (TUN_GSO_MAX_SEGS, what a routine's batch always has room
 * for). Returns the offload flags the kernel took. Throws (NativeError, or the `ip` failure) when it takes not even
 * the TCP set or refuses gso_max_segs: the caller then reopens the device without offloads.
 */
export function enableOffloads(dev: Pick<TunDevice, 'name' | 'fds'>): number {
  let taken = TUN_OFFLOADS_TCP | TUN_OFFLOADS_UDP;
  for (const fd of dev.fds) {
    // TUNSETOFFLOAD takes its flags as the ioctl's integer argument, not through a pointer.
    if (ioctlInt(fd, TUNSETOFFLOAD, taken) < 0) {
      taken = TUN_OFFLOADS_TCP;
      const r = ioctlInt(fd, TUNSETOFFLOAD, taken);
      if (r < 0) throw new NativeError('ioctl', -r, `TUNSETOFFLOAD ${dev.name}`);
    }
  }
  // Without this cap the kernel builds super-packets of up to 64 KB whatever the MSS; a routine could not take one
  // of, say, 120 small segments in one batch.
  execFileSync('ip', ['link', 'set', 'dev', dev.name, 'gso_max_segs', String(TUN_GSO_MAX_SEGS)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  return taken;
}

/**
 * TUNGETIFF on a queue fd: true when it was opened with IFF_VNET_HDR (so every read and write carries the header).
 * Any other fd (the userspace inside's socket: ENOTTY) answers false.
 */
export function fdHasVnetHeader(fd: number): boolean {
  const req = Buffer.alloc(40);
  if (ioctlNoThrow(fd, TUNGETIFF, req) < 0) return false;
  return (req.readUInt16LE(16) & IFF_VNET_HDR) !== 0;
}
