/**
 * Meta packets the supervisor sends to a VPN IP (Go's SendMessageToVpnIp): lighthouse messages and punch-back test
 * requests. With a tunnel installed the packet is sealed and sent at once; without one a handshake is started and the
 * packet waits for the tunnel (Go caches it on the pending host). The waiting room is bounded: MAX_PER_HOST packets
 * per host, MAX_AGE_MS old at most, and as many hosts as the host map holds tunnels; what does not fit or expires is
 * counted as `hostinfo.cached_packets.dropped`, what is sent from it as `hostinfo.cached_packets.sent` (Go's names).
 *
 * A payload may depend on the tunnel it goes over: lighthouse and relay messages name VPN addresses in the fields of
 * the tunnel's certificate version (v1: 1.6.1's uint32 fields, v2: 1.10+'s Addr fields). Such a payload is given as
 * a function of that version and built when the tunnel is known, so a message that waited for a handshake is
 * written for the tunnel that handshake made (Go builds it before, in its initiating version).
 */
import type { CertVersion } from '../shared/pki/certificate';
import type { SupervisorCounters } from './counters';
import type { HostInfo } from './hostmap';

/** A meta packet's plaintext, or how to write it for a tunnel of a given certificate version. */
/**
 * A payload, or how to write it for the tunnel's certificate version; `undefined` when the message cannot be said in
 * that version (an IPv6 VPN address on a v1 tunnel, as Go's "Can't query lighthouse for v6 address using a v1
 * protocol"): then nothing is sent and nothing counted.
 */
export type MetaPayload = Buffer | ((version: CertVersion) => Buffer | undefined);

/**
 * The certificate version a tunnel's messages are written for: the peer's certificate's. The handshake normally makes
 * it ours too; where it does not, the peer's is the safe choice: a v2 certificate means a 1.10+ peer (which reads
 * both generations), a v1 certificate may be 1.6.1's (which reads only the old fields).
 */
export function tunnelVersion(h: HostInfo): CertVersion {
  return h.cert.version;
}

function resolve(payload: MetaPayload, h: HostInfo): Buffer | undefined {
  return typeof payload === 'function' ? payload(tunnelVersion(h)) : payload;
}

export const MAX_PER_HOST = 16;
/** Longer than a whole handshake with the default retries (Go keeps them as long as the pending host lives). */
export const MAX_AGE_MS = 30_000;

interface Waiting {
  since: number;
  packets: Array<{ type: number; subtype: number; payload: MetaPayload; counter: string }>;
}

export interface MetaSenderEnv {
  counters: SupervisorCounters;
  maxHosts: number;
  tunnelTo(vpnIp: number): HostInfo | undefined;
  startHandshake(vpnIp: number): void;
  /** Seals and sends on `h`; false when nothing was sent (the tunnel's counter space is spent). */
  sendOn(h: HostInfo, type: number, subtype: number, payload: Buffer): boolean;
  now?(): number;
}

export class MetaSender {
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly env: MetaSenderEnv) {}

  /** Sends (or queues until the tunnel is up) one meta packet; `counter` is counted when it goes out. */
  send(vpnIp: number, type: number, subtype: number, payload: MetaPayload, counter: string): void {
    const h = this.env.tunnelTo(vpnIp);
    if (h) {
      const buf = resolve(payload, h);
      if (buf !== undefined && this.env.sendOn(h, type, subtype, buf)) this.env.counters.inc(counter);
      return;
    }
    const now = this.now();
    let w = this.waiting.get(vpnIp);
    if (w && now - w.since > MAX_AGE_MS) {
      this.dropAll(vpnIp, w);
      w = undefined;
    }
    if (!w) {
      if (this.waiting.size >= this.env.maxHosts) this.dropOldest();
      w = { since: now, packets: [] };
      this.waiting.set(vpnIp, w);
    }
    if (w.packets.length >= MAX_PER_HOST) {
      this.env.counters.inc('hostinfo.cached_packets.dropped');
    } else {
      w.packets.push({ type, subtype, payload, counter });
    }
    this.env.startHandshake(vpnIp);
  }

  /** A tunnel to `h.vpnIp` is installed: what waited for it goes now, in order (unless it waited too long). */
  tunnelUp(h: HostInfo): void {
    const w = this.waiting.get(h.vpnIp);
    if (!w) return;
    // A tunnel that came up long after the packets' handshake gave up (Go dropped them with the pending host).
    if (this.now() - w.since > MAX_AGE_MS) return this.dropAll(h.vpnIp, w);
    this.waiting.delete(h.vpnIp);
    for (const p of w.packets) {
      const buf = resolve(p.payload, h);
      if (buf === undefined) continue; // not expressible on this tunnel's version: never a packet
      if (this.env.sendOn(h, p.type, p.subtype, buf)) {
        this.env.counters.inc(p.counter);
        this.env.counters.inc('hostinfo.cached_packets.sent');
      } else {
        this.env.counters.inc('hostinfo.cached_packets.dropped');
      }
    }
  }

  /** Packets waiting (nebula-ctl, tests). */
  get waitingCount(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.packets.length;
    return n;
  }

  private dropOldest(): void {
    const first = this.waiting.entries().next().value;
    if (first) this.dropAll(first[0], first[1]);
  }

  private dropAll(vpnIp: number, w: Waiting): void {
    this.waiting.delete(vpnIp);
    this.env.counters.inc('hostinfo.cached_packets.dropped', w.packets.length);
  }

  private now(): number {
    return this.env.now?.() ?? Date.now();
  }
}
