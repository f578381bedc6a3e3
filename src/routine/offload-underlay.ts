/**
 * The underlay edge with the socket's UDP offloads (udp-offload.ts), used when the routine's tun carries offloads
 * (`tun.offloads`: the inside queue is a VnetInsideQueue). The tun then hands the data path bursts of up to 32
 * MTU-sized packets of one flow; without offloads on the socket, each is a syscall's share and a buffer of its own
 * in both kernels. With them, one buffer carries a run of datagrams: fewer syscalls and half the receive-buffer
 * memory per datagram (it does not by itself stop a default 208 KiB buffer overflowing: docs/performance.md
 * "Change 4").
 *
 * - Receive (UDP_GRO): one recvmmsg fills a few 64 KiB slots, each possibly many coalesced datagrams of one sender;
 *   gro-split.ts copies them one per entry into the data path's batch. What does not fit waits (`pending`), and the
 *   data path asks again before it polls.
 * - Send (UDP_SEGMENT): runs of same-endpoint, same-size datagrams in a send batch (gso-plan.ts) leave as one GSO
 *   message each, straight from the batch's Buffers (one iovec per datagram: nothing copied); the rest as before.
 *
 * Fallbacks, each warned once and counted (`routine.outside.offload_fallbacks`): GRO refused by setsockopt (receive
 * as before); GSO unknown to the kernel (send as before); a GSO send refused with EIO (no checksum offload on the
 * way out: GSO off for good) or EINVAL (a segment bigger than the path allows: only smaller segments are grouped
 * from then on); the refused datagrams are sent again one by one at once, so nothing is lost to a fallback.
 * Everything on the packet path is preallocated; nothing is allocated per packet.
 */
import { EAGAIN, errnoName } from '../shared/native/libc';
import { ENOSYS, MSG_DONTWAIT, kernelMmsg, mmsgSupported, type MmsgCalls } from '../shared/native/mmsg';
import { GroReceiveVector, GsoSendVector } from '../shared/native/mmsg-offload';
import { GSO_MAX_BYTES, probeUdpGso, setUdpGro } from '../shared/native/udp-offload';
import { C } from '../shared/state/counters';
import type { DatagramBatch, UnderlaySocket } from './edges';
import { FdUnderlaySocket } from './fd-edges';
import { GroSplitter } from './gro-split';
import { GsoPlan } from './gso-plan';

/**
 * 64 KiB slots per receive: 512 KiB for the routine (the receive batch it fills stays 64 entries of 9 KB). Up to 8
 * coalesced buffers (a sender's 32-segment bursts) per syscall; a peer that sends no GSO (Go nebula) gets 8
 * datagrams per recvmmsg instead of 64.
 */
export const GRO_SLOTS = 8;

const EIO = 5;
const EINVAL = 22;
const ENOBUFS = 105;

/** Where the edge counts and warns (this routine's counter row; a log line to the supervisor). */
export interface OffloadSink {
  add(index: number, n: number): void;
  warn(msg: string, fields: Record<string, unknown>): void;
}

export interface OffloadUnderlayOptions {
  /** UDP_GRO is on for the socket (offloadUnderlayFor turns it on): receive coalesced buffers and split them. */
  gro: boolean;
  /** The kernel knows UDP_SEGMENT: send runs of datagrams as GSO messages. */
  gso: boolean;
  /** GRO slots per receive (GRO_SLOTS). */
  slots?: number;
  /** The syscalls (a test substitutes its own to make the kernel refuse). */
  calls?: MmsgCalls;
}

/**
 * The routine's underlay edge when its tun has offloads: turns UDP_GRO on and probes UDP_SEGMENT on `fd`, warning
 * (and counting) what the kernel refuses; a plain FdUnderlaySocket when it refuses both or has no recvmmsg.
 */
export function offloadUnderlayFor(fd: number, sink: OffloadSink): UnderlaySocket {
  if (!mmsgSupported) return new FdUnderlaySocket(fd);
  const groResult = setUdpGro(fd, true);
  const gsoResult = probeUdpGso(fd);
  for (const [option, r] of [['UDP_GRO', groResult], ['UDP_SEGMENT', gsoResult]] as const) {
    if (r === 0) continue;
    sink.add(C['routine.outside.offload_fallbacks'], 1);
    sink.warn('underlay offload refused by the kernel; carrying on without it', { option, error: errnoName(-r) });
  }
  if (groResult !== 0 && gsoResult !== 0) return new FdUnderlaySocket(fd);
  return new OffloadUnderlaySocket(fd, sink, { gro: groResult === 0, gso: gsoResult === 0 });
}

export class OffloadUnderlaySocket implements UnderlaySocket {
  private readonly plain: FdUnderlaySocket;
  private readonly calls: MmsgCalls;
  private gro: boolean;
  private gso: boolean;
  /** Largest datagram grouped into a GSO message (lowered when the kernel refuses a segment size with EINVAL). */
  private gsoMaxSegment = GSO_MAX_BYTES;
  private warnedGso = false;
  private readonly slots: GroReceiveVector | null;
  private readonly splitter: GroSplitter;
  /** One send vector and plan per batch object (the data path sends from one: its outbox). */
  private readonly senders = new WeakMap<DatagramBatch, { vec: GsoSendVector; plan: GsoPlan }>();
  private lastBatch: DatagramBatch | null = null;
  private lastSender: { vec: GsoSendVector; plan: GsoPlan } | null = null;

  constructor(
    readonly fd: number,
    private readonly sink: OffloadSink,
    options: OffloadUnderlayOptions,
  ) {
    this.calls = options.calls ?? kernelMmsg;
    this.plain = new FdUnderlaySocket(fd, { calls: this.calls });
    this.gro = options.gro;
    this.gso = options.gso;
    const slots = options.slots ?? GRO_SLOTS;
    this.slots = options.gro ? new GroReceiveVector(slots) : null;
    this.splitter = new GroSplitter(slots);
  }

  /** Which offloads are in use now. */
  get offloads(): { gro: boolean; gso: boolean; gsoMaxSegment: number } {
    return { gro: this.gro, gso: this.gso, gsoMaxSegment: this.gso ? this.gsoMaxSegment : 0 };
  }

  /** Datagrams already received that the last batch had no room for: call recvBatch again before polling. */
  pending(): boolean {
    return this.splitter.pending;
  }

  /**
   * Hands out what the last receive left first; only a call that started with nothing left receives again (one
   * recvmmsg at most per call), so a flood cannot keep the data path here past one receive's worth.
   */
  recvBatch(batch: DatagramBatch): number {
    const slots = this.slots;
    if (!this.gro || slots === null) return this.plain.recvBatch(batch);
    const splitter = this.splitter;
    if (splitter.pending) return splitter.drainInto(batch, 0);
    slots.prepare();
    const r = this.calls.recvmmsg(this.fd, slots.vector, slots.capacity, MSG_DONTWAIT);
    if (r === -ENOSYS) {
      // No recvmmsg after all: the plain edge reads one datagram per call, which must not see coalesced buffers.
      this.gro = false;
      setUdpGro(this.fd, false);
      this.refused('UDP_GRO', -r);
      return this.plain.recvBatch(batch);
    }
    if (r <= 0) return 0;
    slots.received(r);
    const coalesced = splitter.load(slots, r);
    if (coalesced > 0) this.sink.add(C['routine.outside.rx_gro_buffers'], coalesced);
    return splitter.drainInto(batch, 0);
  }

  /**
   * Sends entries [0, count) as GSO messages (gso-plan.ts). sendmmsg stops at the first message it refuses; that
   * one is sent alone next, to mark its datagrams with the errno. A GSO message refused for the offload itself
   * (EIO, EINVAL) is planned again without it. EAGAIN / ENOBUFS drop and mark the rest, as the plain edge does.
   */
  sendBatch(batch: DatagramBatch, count: number): number {
    if (count <= 0) return 0;
    if (!this.gso) return this.plain.sendBatch(batch, count);
    const { vec, plan } = this.senderFor(batch);
    const lens = batch.lens;
    vec.prepare(batch.bufs, batch.addrs, lens, 0, count);
    let sent = 0;
    let from = 0;
    while (from < count) {
      const messages = plan.build(lens, batch.addrs, from, count, this.gso ? this.gsoMaxSegment : 0);
      for (let m = 0; m < messages; m++) vec.setMessage(m, plan.first[m]!, plan.count[m]!, plan.segment[m]!);
      from = count;
      let m = 0;
      while (m < messages) {
        const r = this.calls.sendmmsg(this.fd, vec.from(m), messages - m, 0);
        if (r > 0) {
          let gsoMessages = 0;
          for (let k = m; k < m + r; k++) {
            sent += plan.count[k]!;
            if (plan.segment[k]! > 0) gsoMessages++;
          }
          if (gsoMessages > 0) this.sink.add(C['routine.outside.tx_gso_messages'], gsoMessages);
          m += r;
          continue;
        }
        if (plan.segment[m]! > 0 && (r === -EIO || r === -EINVAL)) {
          this.gsoRefused(-r, plan.segment[m]!);
          from = plan.first[m]!; // plan the rest again, without this segment size
          break;
        }
        if (r === -EAGAIN || r === -ENOBUFS || r === -ENOSYS) {
          for (let i = plan.first[m]!; i < count; i++) lens[i] = r;
          return sent;
        }
        // 0 cannot happen for a count > 0; treat it as a refusal so the loop always advances.
        const end = plan.first[m]! + plan.count[m]!;
        for (let i = plan.first[m]!; i < end; i++) lens[i] = r < 0 ? r : -ENOBUFS;
        m++;
      }
    }
    return sent;
  }

  private senderFor(batch: DatagramBatch): { vec: GsoSendVector; plan: GsoPlan } {
    if (batch === this.lastBatch) return this.lastSender!;
    let s = this.senders.get(batch);
    if (s === undefined) {
      s = { vec: new GsoSendVector(batch.bufs, batch.addrs), plan: new GsoPlan(batch.capacity) };
      this.senders.set(batch, s);
    }
    this.lastBatch = batch;
    this.lastSender = s;
    return s;
  }

  /** EIO: the way out cannot checksum for us, GSO off for good. EINVAL: segments this big are not allowed here. */
  private gsoRefused(errno: number, segment: number): void {
    if (errno === EIO) this.gso = false;
    else this.gsoMaxSegment = Math.min(this.gsoMaxSegment, segment - 1);
    this.sink.add(C['routine.outside.offload_fallbacks'], 1);
    if (this.warnedGso) return;
    this.warnedGso = true;
    this.sink.warn('underlay GSO send refused by the kernel; sending those datagrams one by one', {
      error: errnoName(errno),
      segment,
      gso: errno === EIO ? 'off' : `segments up to ${segment - 1} bytes`,
    });
  }

  private refused(option: string, errno: number): void {
    this.sink.add(C['routine.outside.offload_fallbacks'], 1);
    this.sink.warn('underlay offload refused by the kernel; carrying on without it', { option, error: errnoName(errno) });
  }
}
