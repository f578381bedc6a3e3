/**
 * The real edges over file descriptors: the routine's tun queue (or userspace seqpacket) and its UDP socket, both
 * non-blocking, one syscall per packet for now (koffi read/write/recvfrom/sendto, no libuv threadpool). A batch
 * edge (recvmmsg/sendmmsg) replaces these without touching the data path.
 */
import { readFd, writeFd } from '../shared/native/libc';
import { recvFrom, sendTo } from '../shared/native/udp';
import type { DatagramBatch, InsideQueue, PacketBatch, UnderlaySocket } from './edges';

export class FdInsideQueue implements InsideQueue {
  constructor(readonly fd: number) {}

  readBatch(batch: PacketBatch): number {
    let n = 0;
    while (n < batch.capacity) {
      const buf = batch.bufs[n]!;
      const len = readFd(this.fd, buf, buf.length);
      if (len <= 0) break;
      batch.lens[n++] = len;
    }
    return n;
  }

  writeBatch(batch: PacketBatch, count: number): number {
    let written = 0;
    for (let i = 0; i < count; i++) {
      const r = writeFd(this.fd, batch.bufs[i]!, batch.lens[i]!);
      if (r > 0) written++;
      else batch.lens[i] = r < 0 ? r : -1;
    }
    return written;
  }
}

export class FdUnderlaySocket implements UnderlaySocket {
  constructor(readonly fd: number) {}

  recvBatch(batch: DatagramBatch): number {
    let n = 0;
    while (n < batch.capacity) {
      const len = recvFrom(this.fd, batch.bufs[n]!, batch.addrs[n]!);
      if (len < 0) break;
      batch.lens[n++] = len;
    }
    return n;
  }

  sendBatch(batch: DatagramBatch, count: number): number {
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const r = sendTo(this.fd, batch.bufs[i]!, batch.lens[i]!, batch.addrs[i]!);
      if (r >= 0) sent++;
      else batch.lens[i] = r;
    }
    return sent;
  }
}
