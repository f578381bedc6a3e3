/**
 * Keeps a routine's packet path hot for the next packet of a slow, regular flow (issue 13: ping RTT). After a few
 * milliseconds without packets the machine has run other work and the next packet's code and data are out of the
 * caches. Measured in one process (no scheduler, no IPI): one packet's inside -> outside step took 12 µs back to
 * back, 15-27 µs after 2-5 ms idle and 24-118 µs after 10-20 ms; outside -> inside 9 µs against 14-42 µs. A ping
 * every 10 ms pays that on each of its four hops (docs/performance.md "Change 8").
 *
 * So the routine predicts when the next packet is due (the longest of the last four gaps between wake-ups that
 * brought packets: a flow's period, not the short wait for a reply), and from KEEP_WARM_LEAD_MS before that until
 * half of it after, it sleeps at most KEEP_WARM_EVERY_MS. Each such wake-up passes one packet (in turn each way) between two
 * throwaway data paths built like the warm-up's (warm-up.ts: their own region, socketpairs and loopback sockets
 * connected to each other; the real tunnels, counters and conntrack see none of it), rotating ICMP, UDP and TCP.
 * That is at most 3-4 rounds per gap between packets, and none when a flow is idle for over KEEP_WARM_MAX_GAP_MS or
 * busy (poll returns before the timer). `tun.keep_warm: false` turns it off; a routine without an inside
 * (tun.disabled) never runs it.
 */
import type { RoutineSetup } from '../shared/ipc/messages';
import { close } from '../shared/native/libc';
import { drain, mallocTrim, remake, roundTrip, sidePair, type EdgeFactory, type Side } from './warm-up';
import { ipv4Packet, setFlow, warmUpAddresses } from './warm-up-packets';

/** Longest sleep inside a window. */
export const KEEP_WARM_EVERY_MS = 2;
/** A window opens this long before the next packet is due and closes half of it after. */
export const KEEP_WARM_LEAD_MS = 4;
/** Gaps longer than this are not predicted: the flow is idle. */
export const KEEP_WARM_MAX_GAP_MS = 1000;

const PROTOCOLS = [1, 17, 6] as const;
/** Round trips on one throwaway tunnel before it is re-made (its send counter must never run out: 2^32). */
const REMAKE_EVERY = 1_000_000;
const GAPS = 4;

export class KeepWarm {
  private readonly a: Side;
  private readonly b: Side;
  private readonly fds: number[] = [];
  private readonly out: Buffer[];
  private readonly back: Buffer[];
  private readonly scratch: Buffer;
  private readonly gaps = new Float64Array(GAPS).fill(Infinity);
  private gapIndex = 0;
  private lastWorkAt = -Infinity;
  private windowStart = Infinity;
  private windowEnd = -Infinity;
  /** Throwaway rounds so far, and the packets they delivered (one per round when the path works). */
  rounds = 0;
  delivered = 0;

  /** Throws when its sockets cannot be made (none is left open); the caller runs without. */
  constructor(setup: RoutineSetup, edges: EdgeFactory) {
    const ips = warmUpAddresses(setup.vpnIp, setup.vpnMask);
    try {
      ({ a: this.a, b: this.b } = sidePair(setup, edges, this.fds));
    } catch (err) {
      for (const fd of this.fds) close(fd);
      throw err;
    }
    this.remake();
    // One flow per protocol, as a slow real flow is (conntrack hits after its first packet).
    this.out = PROTOCOLS.map((p) => ipv4Packet(p, ips.a, ips.b, false, 0));
    this.back = PROTOCOLS.map((p) => ipv4Packet(p, ips.b, ips.a, true, 0));
    for (let k = 0; k < PROTOCOLS.length; k++) {
      setFlow(this.out[k]!, false, 1);
      setFlow(this.back[k]!, true, 1);
    }
    this.scratch = Buffer.alloc(Math.max(9001, setup.mtu));
    mallocTrim();
  }

  /** The loop's wake-up at `now` (ms, performance.now()) brought packets: when is the next one due? */
  worked(now: number): void {
    this.gaps[this.gapIndex] = now - this.lastWorkAt;
    this.gapIndex = (this.gapIndex + 1) % GAPS;
    this.lastWorkAt = now;
    let period = 0;
    for (let i = 0; i < GAPS; i++) period = Math.max(period, this.gaps[i]!);
    if (period > KEEP_WARM_MAX_GAP_MS) {
      this.windowStart = Infinity;
      this.windowEnd = -Infinity;
      return;
    }
    this.windowStart = now + period - KEEP_WARM_LEAD_MS;
    this.windowEnd = now + period + KEEP_WARM_LEAD_MS / 2;
  }

  /** How long the loop may sleep at `now`: until the window opens, then at most KEEP_WARM_EVERY_MS. */
  timeoutMs(now: number, otherwise: number): number {
    if (now >= this.windowEnd) return otherwise;
    if (now < this.windowStart) return Math.min(otherwise, Math.ceil(this.windowStart - now));
    return Math.min(otherwise, KEEP_WARM_EVERY_MS);
  }

  /** After a poll that found nothing, at `now`: one throwaway round trip if a window is open; true if it ran. */
  idle(now: number): boolean {
    if (now < this.windowStart - 0.5 || now >= this.windowEnd) return false;
    if (++this.rounds % REMAKE_EVERY === 0) this.remake();
    // One packet per round, in turn a request from A and a reply from B: each crosses a send path and a receive path,
    // and the six (protocol, direction) pairs come round every six rounds. Both ways every round cost 20-25 % more CPU
    // for no better round trip (docs/performance.md "Change 8").
    const k = this.rounds % PROTOCOLS.length;
    if (this.rounds % 2 === 0) roundTrip(this.a, this.b, this.out[k]!);
    else roundTrip(this.b, this.a, this.back[k]!);
    this.delivered += drain(this.a, this.scratch) + drain(this.b, this.scratch);
    return true;
  }

  close(): void {
    for (const s of [this.a, this.b]) if (s.tunnel) s.datapath.control({ type: 'tunnelDown', localIndex: s.tunnel.localIndex });
    for (const fd of this.fds) close(fd);
    this.fds.length = 0;
  }

  private remake(): void {
    const { toB, toA } = remake(this.a, this.b);
    this.a.datapath.control({ type: 'tunnelUp', tunnel: toB });
    this.b.datapath.control({ type: 'tunnelUp', tunnel: toA });
  }
}
