/**
 * Noise IX handshakes (nebula-spec §3): the initiator with `handshakes.try_interval` linear backoff and
 * `handshakes.retries` attempts to every known address, and the responder with certificate validation bound to
 * the Noise static key, cached stage-2 replies for retransmitted stage 1s, and the race rules of §3.7.
 * Packets waiting for a tunnel are parked in the routines, which flush them when the tunnel is installed.
 */
import { createInitiator } from '../shared/noise';
import { formatIPv4 } from '../shared/util/ipv4';
import { formatEndpoint, type Endpoint } from '../shared/util/endpoint';
import { PendingHandshakes, type Pending } from './pending-handshakes';
import type { MetaPacket } from '../shared/ipc/messages';
import type { HostInfo } from './hostmap';
import type { HandshakeEnv } from './handshake-env';
import { buildStage1, DENIED, receivedMessage, type HandshakePath } from './handshake-messages';
import { pendingName, readStage2 } from './handshake-stage2';
import type { VpnAddr } from '../shared/protocol/vpn-addr';
import { respondToStage1, type Responder } from './handshake-responder';
import { Histogram } from './histogram';

export type { HandshakeEnv } from './handshake-env';

const addr = formatEndpoint;

/**
 * First contacts by IPv6 VPN address pending at once: an IPv6 network is too large to let traffic to every address
 * in it start a handshake (an IPv4 network bounds itself), so beyond this they are refused and counted.
 */
export const MAX_FIRST_CONTACTS = 256;

export class HandshakeManager {
  private readonly pending: PendingHandshakes;
  /**
   * Go's `handshakes` histogram: how long each handshake we initiated took (ns, first stage 1 sent to stage 2
   * accepted), recorded once its tunnel is installed.
   */
  readonly durations = new Histogram();

  private readonly responder: Responder;
  /** Pending handshakes already resent early to a peer that lost a race to them (once each: no reflection). */
  private readonly resentAfterRace = new WeakSet<Pending>();

  constructor(private readonly env: HandshakeEnv) {
    this.pending = new PendingHandshakes((index) => env.hostmap.releaseIndex(index));
    this.responder = {
      env,
      pendingFor: (ip) => this.pending.forVpnIp(ip),
      drop: (p) => this.drop(p),
      wonRace: (p, from) => this.resendAfterRace(p, from),
    };
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Pending handshakes by local index (Go's `hostmap.pending.indexes`). */
  get pendingIndexCount(): number {
    return this.pending.indexCount;
  }

  isPending(vpnIp: number): boolean {
    return this.pending.forVpnIp(vpnIp) !== undefined;
  }

  /**
   * Starts a handshake to `vpnIp` unless a tunnel or a pending handshake already exists; `address` (nebula-ctl
   * create-tunnel -address) is tried besides the known ones.
   */
  start(vpnIp: number, address?: Endpoint): void {
    if (this.env.hostmap.get(vpnIp)) return;
    this.initiate(vpnIp, address);
  }

  /**
   * First contact with a host known only by an IPv6 VPN address of its certificate (an IPv6 packet from the inside
   * to a host never tunnelled to): a handshake to the addresses known for that address, whose responder must hold it
   * and is then keyed by its certificate's IPv4 VPN IP. The caller maps addresses it knows to their host first.
   */
  startTo6(a: VpnAddr): void {
    if (this.pending.forAddr6(a)) return;
    if (this.pending.firstContactCount >= MAX_FIRST_CONTACTS) {
      this.env.counters.inc('handshake_manager.first_contact_refused');
      return;
    }
    this.initiate(0, undefined, false, a);
  }

  /** A lighthouse answered about IPv6 VPN address `a` (as `trigger`). */
  trigger6(a: VpnAddr): void {
    const p = this.pending.forAddr6(a);
    if (p && !p.sent && p.attempts < this.env.retries) this.sendStage1(p);
  }

  /** The handshakes we are waiting on (nebula-ctl list-pending-hostmap). */
  pendingHandshakes(): readonly Readonly<Pending>[] {
    return this.pending.all();
  }

  /** The underlay addresses known for IPv6 VPN address `a` (a first contact's). */
  knownAddresses6(a: VpnAddr): Endpoint[] {
    return this.env.addressesFor6?.(a) ?? [];
  }

  /** The underlay addresses known for `vpnIp`: what a handshake to it tries (nebula-ctl list-hostmap). */
  knownAddresses(vpnIp: number): Endpoint[] {
    return this.env.addressesFor(vpnIp);
  }

  /**
   * Re-key: a fresh handshake to the host of an existing tunnel, sent to its current address too. When it completes
   * the new tunnel replaces the old one (install), as a newer handshake does on the peer (Go 1.6.1 takes it too).
   */
  rekey(h: HostInfo): void {
    this.initiate(h.vpnIp, h.relay ? undefined : { ip: h.remoteIp, port: h.remotePort });
  }

  /** A relayed tunnel looks for a direct path: a fresh handshake to the host's direct addresses only. */
  tryDirect(vpnIp: number): void {
    this.initiate(vpnIp, undefined, true);
  }

  private initiate(vpnIp: number, knownAddress?: Endpoint, directOnly = false, target6?: VpnAddr): void {
    const env = this.env;
    if (!target6 && (vpnIp === env.vpnIp || this.pending.forVpnIp(vpnIp))) return;
    const localIndex = env.hostmap.allocateIndex();
    const pki = env.pki();
    const noise = createInitiator({ cipher: env.cipher, staticPrivate: pki.privateKey, curve: pki.cert.curve });
    // A CertState reads as its initiating version's certificate.
    const packet = buildStage1(noise, pki.cert, localIndex);
    const p: Pending = { vpnIp, target6, localIndex, noise, packet, attempts: 0, startedAt: process.hrtime.bigint(), knownAddress, directOnly };
    this.pending.add(p);
    env.counters.inc('handshake_manager.initiated');
    // A static host is tried at once (nebula-spec §3.6); later attempts back off linearly.
    this.attempt(p);
  }

  /**
   * A lighthouse answered about `vpnIp` (Go's handshakeTrigger): a pending handshake that has not reached any address
   * yet is sent to the addresses now known at once, without waiting for its timer (which keeps running). Once a
   * stage 1 went out, answers do not hurry it further (Go: "a lighthouse could cause us to aggressively send").
   */
  trigger(vpnIp: number): void {
    const p = this.pending.forVpnIp(vpnIp);
    if (p && !p.sent && p.attempts < this.env.retries) this.sendStage1(p);
  }

  private attempt(p: Pending): void {
    const env = this.env;
    if (!this.pending.isCurrent(p)) return;
    if (p.attempts >= env.retries) {
      env.log.info('Handshake timed out', {
        vpnIp: pendingName(p),
        initiatorIndex: p.localIndex,
        remoteIndex: 0,
        durationNs: Number(process.hrtime.bigint() - p.startedAt),
        handshake: { stage: 1, style: 'ix_psk0' },
      });
      env.counters.inc('handshake_manager.timed_out');
      this.drop(p);
      return;
    }
    this.sendStage1(p);
    p.timer = setTimeout(() => this.attempt(p), p.attempts * env.tryIntervalMs);
    p.timer.unref();
  }

  /** One attempt: stage 1 to every address known now; a lighthouse query when that is one address or none. */
  private sendStage1(p: Pending): void {
    const env = this.env;
    p.attempts++;
    const target6 = p.target6;
    const addrs = target6 ? [...(env.addressesFor6?.(target6) ?? [])] : [...env.addressesFor(p.vpnIp)];
    const known = p.knownAddress;
    if (known && !addrs.some((a) => a.ip === known.ip && a.port === known.port)) addrs.push(known);
    if (addrs.length <= 1) {
      if (target6) env.queryLighthouse6?.(target6);
      else env.queryLighthouse?.(p.vpnIp);
    }
    // Relays are named per host (IPv4 key): a host known only by an IPv6 address is tried directly.
    if (!p.directOnly && !target6) env.relayHandshake?.(p.vpnIp, p.packet);
    for (const a of addrs) {
      env.sendUdp(p.packet, a);
      env.counters.inc('messages.tx.handshake_ixpsk0');
    }
    if (addrs.length > 0) {
      p.sent = true;
      env.log.info('Handshake message sent', {
        vpnIp: pendingName(p),
        udpAddrs: addrs.map(addr),
        initiatorIndex: p.localIndex,
        handshake: { stage: 1, style: 'ix_psk0' },
      });
    } else {
      env.log.debug('No known address for host, waiting', { vpnIp: pendingName(p) });
    }
  }

  /**
   * The peer initiated while our handshake to it was pending, and ours wins (§3.7): it drops its own and waits for
   * ours. It is up and reachable at `from` now, so our stage 1 goes there at once instead of at the next retry, which
   * the linear backoff may put hundreds of ms away (two nodes that handshake their static hosts at start race like
   * this whenever the second starts while the first is still retrying). Not an attempt: the timer keeps its pace.
   */
  private resendAfterRace(p: Pending, from: HandshakePath): void {
    if (this.resentAfterRace.has(p) || !this.pending.isCurrent(p)) return;
    this.resentAfterRace.add(p);
    this.env.sendUdp(p.packet, from);
    this.env.counters.inc('messages.tx.handshake_ixpsk0');
    this.env.log.debug('Handshake message sent', { vpnIp: pendingName(p), udpAddr: addr(from), initiatorIndex: p.localIndex, raceWon: true, handshake: { stage: 1, style: 'ix_psk0' } });
  }

  private drop(p: Pending): void {
    this.pending.remove(p);
  }

  /** A recvError for a pending handshake's index discards it (nebula-spec §6.1). */
  dropPendingByIndex(index: number): void {
    const p = this.pending.forIndex(index);
    if (p) this.drop(p);
  }

  stop(): void {
    for (const p of this.pending.all()) this.drop(p);
  }

  /** A type-0 datagram handed up by a routine. */
  onPacket(m: MetaPacket): void {
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (m.subtype !== 0) return;
    const from: HandshakePath = { ip: m.fromIp, port: m.fromPort, via: m.via };
    // Go's HandleIncomingHandshake: a first look before the peer's VPN IP is known (remote_allow_list only).
    if (!from.via && this.env.remoteAllowList && !this.env.remoteAllowList().allowUnknownVpnIp(from.ip)) {
      this.env.log.debug(DENIED, { udpAddr: addr(from) });
      return;
    }
    if (m.counter === 1) respondToStage1(this.responder, data, from);
    else if (m.counter === 2) this.complete(data, m.localIndex, from);
  }

  private complete(data: Buffer, localIndex: number, from: HandshakePath): void {
    const env = this.env;
    const p = this.pending.forIndex(localIndex);
    if (!p) {
      const done = env.hostmap.byLocalIndex(localIndex);
      if (done) env.log.debug('Handshake is already complete', { vpnIp: formatIPv4(done.vpnIp), udpAddr: addr(from) });
      return;
    }
    // Go's ixHandshakeStage2: a reply from a denied address is ignored and the handshake stays pending (retries).
    // (First contact by IPv6 address has no IPv4 key yet: the allow list is asked about the unknown host.)
    const allowed = !from.via && env.remoteAllowList ? (p.target6 ? env.remoteAllowList().allowUnknownVpnIp(from.ip) : env.remoteAllowList().allow(p.vpnIp, from.ip)) : true;
    if (!allowed) {
      env.log.debug(DENIED, { vpnIp: pendingName(p), udpAddr: addr(from) });
      return;
    }
    const outcome = readStage2(env, p, data, from);
    if (outcome.kind === 'wait') return;
    const duration = Number(process.hrtime.bigint() - p.startedAt);
    this.drop(p);
    if (outcome.kind === 'fail') return;
    if (!env.install(outcome.tunnel)) return; // refused (and logged) by install: the host map is full
    this.durations.update(duration);
    env.log.info(receivedMessage(outcome.inCommon), { ...outcome.fields, durationNs: duration, sentCachedPackets: 0 });
  }
}
