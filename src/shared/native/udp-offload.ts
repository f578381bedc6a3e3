/**
 * UDP offloads of the Linux socket layer (udp(7), <linux/udp.h>), for the underlay socket:
 * - UDP_GRO (receive): the kernel may hand several datagrams of one flow over as one buffer; each such buffer comes
 *   with a control message (level IPPROTO_UDP, type UDP_GRO, an int) giving the segment size: the buffer is
 *   datagrams of exactly that size, the last one possibly shorter.
 * - UDP_SEGMENT (send, "GSO"): one sendmsg carrying a control message (level IPPROTO_UDP, type UDP_SEGMENT, a u16)
 *   leaves as datagrams of that size cut from the message's bytes, the last one possibly shorter. At most
 *   GSO_MAX_SEGMENTS of them and GSO_MAX_BYTES in all, every one to the message's single address.
 * Both exist since Linux 4.18 (GSO) and 5.0 (GRO); platform-notes §9 measured them taken here (6.18).
 *
 * Control messages are laid out as in <sys/socket.h> on LP64: `struct cmsghdr { size_t cmsg_len; int cmsg_level;
 * int cmsg_type; }` (16 bytes), then the data, each message padded to 8 bytes (CMSG_ALIGN).
 */
import { getsockoptInt, NativeError, setsockoptInt } from './libc';

export const IPPROTO_UDP = 17;
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;

/** sizeof(struct cmsghdr) on LP64; the data starts right after it. */
export const CMSG_HEADER_BYTES = 16;
/** CMSG_SPACE(sizeof(u16)): one UDP_SEGMENT control message. */
export const SEGMENT_CMSG_SPACE = 24;
/** CMSG_LEN(sizeof(u16)): the kernel refuses a UDP_SEGMENT cmsg of any other length (EINVAL). */
const SEGMENT_CMSG_LEN = CMSG_HEADER_BYTES + 2;
/**
 * Control room per received message. One UDP_GRO message needs CMSG_SPACE(sizeof(int)) = 24 bytes; the rest is room
 * for a control message we did not ask for, so that the one we need is never cut off (MSG_CTRUNC).
 */
export const GRO_CONTROL_BYTES = 64;

/** The kernel's cap on datagrams per GSO send (UDP_MAX_SEGMENTS: 64 before Linux 6.9, 128 since). */
export const GSO_MAX_SEGMENTS = 64;
/** Payload bytes one IPv4 UDP send can carry: 65535 - 20 (IP header) - 8 (UDP header). */
export const GSO_MAX_BYTES = 65507;
/** The largest buffer a GRO receive can hand over: one IPv4 packet's payload, rounded up. */
export const GRO_MAX_BYTES = 65536;

/** Turns receive coalescing on (1) or off (0): 0, or -errno when the kernel refuses (before Linux 5.0: ENOPROTOOPT). */
export function setUdpGro(fd: number, on: boolean): number {
  return trySetsockopt(fd, UDP_GRO, on ? 1 : 0);
}

/** Whether receive coalescing is on for this socket (false also when the kernel does not know the option). */
export function udpGroEnabled(fd: number): boolean {
  try {
    return getsockoptInt(fd, IPPROTO_UDP, UDP_GRO) !== 0;
  } catch {
    return false;
  }
}

/**
 * 0 when the kernel knows UDP_SEGMENT on this socket, else -errno. It only reads the socket's default segment size
 * (as wireguard-go probes it), so the socket's own sends are left alone; sends ask for GSO per call by cmsg.
 */
export function probeUdpGso(fd: number): number {
  try {
    getsockoptInt(fd, IPPROTO_UDP, UDP_SEGMENT);
    return 0;
  } catch (err) {
    if (err instanceof NativeError) return -err.errno;
    throw err;
  }
}

function trySetsockopt(fd: number, option: number, value: number): number {
  try {
    setsockoptInt(fd, IPPROTO_UDP, option, value);
    return 0;
  } catch (err) {
    if (err instanceof NativeError) return -err.errno;
    throw err;
  }
}

/** Writes one UDP_SEGMENT control message asking for `segmentSize`-byte datagrams at `off` (SEGMENT_CMSG_SPACE bytes). */
export function writeSegmentCmsg(control: Buffer, off: number, segmentSize: number): void {
  // cmsg_len is a size_t: low half, then a zero high half.
  control.writeUInt32LE(SEGMENT_CMSG_LEN, off);
  control.writeUInt32LE(0, off + 4);
  control.writeInt32LE(IPPROTO_UDP, off + 8);
  control.writeInt32LE(UDP_SEGMENT, off + 12);
  control.writeUInt16LE(segmentSize, off + 16);
  control.writeUInt16LE(0, off + 18);
  control.writeUInt32LE(0, off + 20);
}

/**
 * The segment size of a received buffer: the value of its UDP_GRO control message among the `length` bytes of
 * control data at `off`, or 0 when there is none (the buffer is one datagram). A malformed chain ends the walk.
 */
export function groSegmentSize(control: Buffer, off: number, length: number): number {
  const end = off + Math.min(length, control.length - off);
  let at = off;
  while (at + CMSG_HEADER_BYTES <= end) {
    const cmsgLen = control.readUInt32LE(at);
    // A length that is not even a header, or a high half set (> 4 GiB), cannot be real: stop rather than loop.
    if (cmsgLen < CMSG_HEADER_BYTES || control.readUInt32LE(at + 4) !== 0 || at + cmsgLen > end) return 0;
    if (control.readInt32LE(at + 8) === IPPROTO_UDP && control.readInt32LE(at + 12) === UDP_GRO && cmsgLen >= CMSG_HEADER_BYTES + 4) {
      const size = control.readInt32LE(at + CMSG_HEADER_BYTES);
      return size > 0 ? size : 0;
    }
    at += (cmsgLen + 7) & ~7;
  }
  return 0;
}
