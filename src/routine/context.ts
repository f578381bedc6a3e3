/**
 * What both packet directions of one routine share: its setup, the tunnels it knows, the firewall gate, its row of
 * counters, the two outboxes and the link to the supervisor. Built once by the Datapath from its dependencies.
 */
import { newFirewallPacket, parseIPPacket, type FirewallPacket } from '../shared/firewall';
import type { RoutineSetup, RoutineToSupervisor } from '../shared/ipc/messages';
import { sockaddrIPv4 } from '../shared/native/sockaddr';
import { HEADER_LEN, TYPE_RECV_ERROR, writeHeader } from '../shared/protocol/header';
import { COUNTER_COUNT, C } from '../shared/state/counters';
import type { TunnelSlots } from '../shared/state/tunnel-slots';
import { sendOnTunnel } from '../shared/tunnel/send';
import { ALLOW, type FirewallGate } from './firewall-gate';
import { NO_COUNTER, type InsideOutbox, type UnderlayOutbox } from './outboxes';
import { TokenBucket } from './token-bucket';
import type { RoutineTunnel, TunnelRegistry } from './tunnel-registry';

/** The supervisor, as the data path sees it: a place to post messages (IPC in production, an array in tests). */
export interface SupervisorLink {
  post(msg: RoutineToSupervisor): void;
}

/** This routine's row of the shared counters: plain stores, read by the supervisor at scrape time. */
export class RoutineCounters {
  private readonly base: number;

  constructor(
    private readonly view: Float64Array,
    routine: number,
  ) {
    this.base = routine * COUNTER_COUNT;
  }

  inc(index: number): void {
    this.view[this.base + index]++;
  }

  add(index: number, n: number): void {
    this.view[this.base + index] += n;
  }

  get(index: number): number {
    return this.view[this.base + index]!;
  }
}

/** What `firewallCheck` found. */
export type FirewallOutcome = typeof FW_PASS | typeof FW_MALFORMED | typeof FW_REFUSED;
export const FW_PASS = 0;
export const FW_MALFORMED = 1;
export const FW_REFUSED = 2;

export class DatapathContext {
  readonly routine: number;
  readonly vpnIp: number;
  readonly vpnMask: number;
  readonly vpnNet: number;
  /** Scratch for the parsed 5-tuple: one per routine, reused for every packet. */
  readonly pkt: FirewallPacket = newFirewallPacket();
  /** listen.send_recv_error: from the setup, then as a reload changes it. */
  sendRecvErrorPolicy: RoutineSetup['sendRecvError'];
  private readonly recvErrorBudget: TokenBucket;

  constructor(
    readonly setup: RoutineSetup,
    readonly slots: TunnelSlots,
    readonly tunnels: TunnelRegistry,
    readonly gate: FirewallGate,
    readonly counters: RoutineCounters,
    readonly outbox: UnderlayOutbox,
    readonly insideOut: InsideOutbox,
    private readonly supervisor: SupervisorLink,
    readonly clock: () => number,
  ) {
    this.routine = setup.routine;
    this.vpnIp = setup.vpnIp >>> 0;
    this.vpnMask = setup.vpnMask >>> 0;
    this.vpnNet = (this.vpnIp & this.vpnMask) >>> 0;
    this.sendRecvErrorPolicy = setup.sendRecvError;
    this.recvErrorBudget = new TokenBucket(RECV_ERROR_BURST, RECV_ERROR_PER_SECOND, clock());
  }

  post(msg: RoutineToSupervisor): void {
    this.supervisor.post(msg);
  }

  log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
    this.supervisor.post({ type: 'log', level, msg, fields });
  }

  /**
   * Parses `buf[0..len)` into ctx.pkt and runs the firewall for it in one direction: FW_PASS, or FW_MALFORMED /
   * FW_REFUSED, counted under the reason. Only a refused packet may be answered with a reject (Go does not answer
   * what it cannot parse).
   */
  firewallCheck(t: RoutineTunnel, buf: Buffer, len: number, incoming: boolean): FirewallOutcome {
    if (!parseIPPacket(buf, len, incoming, this.pkt)) {
      this.counters.inc(C['routine.dropped.malformed']);
      return FW_MALFORMED;
    }
    const verdict = this.gate.check(this.pkt, incoming, t.firewallPeer);
    if (verdict === ALLOW) return FW_PASS;
    this.counters.inc(verdict);
    return FW_REFUSED;
  }

  /**
   * Seals and queues `src[0..len)` on `t`; `countAs` (a counter index) is bumped once the socket has taken it.
   * When the tunnel's counter space is spent, or a relayed tunnel has no relay tunnel, nothing is queued and that is
   * counted instead.
   */
  send(t: RoutineTunnel, type: number, subtype: number, src: Buffer, len: number, countAs: number): void {
    this.outbox.nextCountAs = countAs;
    if (sendOnTunnel(this.slots, t, type, subtype, src, 0, len, this.outbox)) return;
    this.outbox.nextCountAs = NO_COUNTER;
    // A relayed tunnel whose relay tunnel is gone (being re-made) cannot send either; that is not a spent counter.
    const relayDown = t.via !== undefined && t.via.relayTunnel() === undefined;
    this.counters.inc(relayDown ? C['routine.dropped.relay_down'] : C['routine.dropped.counter_spent']);
  }

  /**
   * Tells the sender of a datagram for `localIndex` that we have no such tunnel (nebula-spec §6.1), as configured,
   * at most RECV_ERROR_BURST at once and RECV_ERROR_PER_SECOND on average per routine: recvErrors answer
   * unauthenticated input, so a flood must not turn us into a reflector.
   */
  sendRecvError(localIndex: number, to: Buffer): void {
    const policy = this.sendRecvErrorPolicy;
    if (policy === 'never') return;
    if (policy === 'private' && !isPrivate(sockaddrIPv4(to))) return;
    if (!this.recvErrorBudget.take(this.clock())) {
      this.counters.inc(C['routine.dropped.recv_error_limited']);
      return;
    }
    this.outbox.nextCountAs = C['messages.tx.recv_error'];
    writeHeader(this.outbox.buffer(), 0, TYPE_RECV_ERROR, 0, localIndex, 0, 0);
    this.outbox.commit(HEADER_LEN, to);
  }
}

/** recvErrors a routine may send in a burst, and per second on average. */
export const RECV_ERROR_BURST = 50;
export const RECV_ERROR_PER_SECOND = 50;

function isPrivate(ip: number): boolean {
  return ip >>> 24 === 10 || (ip & 0xfff00000) >>> 0 === 0xac100000 || (ip & 0xffff0000) >>> 0 === 0xc0a80000;
}
