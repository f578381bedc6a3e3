/**
 * Relays (nebula-spec §5.8; Go 1.6.1's relay_manager.go and the relay part of handshake_manager.go). A relay is a
 * pair of indexes that lets A and B, who cannot reach each other, talk through R, a host both have tunnels to:
 *
 *   A: terminal relay on its tunnel to R (peer B)      R: forwarding relay on its tunnel to A (peer B)
 *   B: terminal relay on its tunnel to R (peer A)         forwarding relay on its tunnel to B (peer A)
 *
 * Set up by CreateRelayRequest / CreateRelayResponse (NebulaControl, type 6 on the tunnels to R):
 * - A, handshaking with B and told by the lighthouse that B can be reached through R (`relay.relays` of B), asks R
 *   on every handshake attempt (`relay.use_relays`, not on a relay itself); once established, the attempt's stage 1
 *   goes to B through R as a relay frame.
 * - R (`relay.am_relay`, reloadable) asks B on A's behalf (handshaking with B first when it has no tunnel) and
 *   answers A when B answered; B accepts any relay request that names it as the target (as 1.6.1 does).
 * The routines carry the frames (relay-frames.ts): this module gives them the established indexes (`routes()`) and
 * sends the few frames the supervisor itself sends (handshakes through a relay). Relays go with the tunnel they ride.
 *
 * Each NebulaControl names the two ends in the fields of the certificate version of the tunnel it travels (control.ts:
 * v1 RelayFromIp / RelayToIp as 1.6.1, v2 RelayFromAddr / RelayToAddr as 1.10+), written when that tunnel is known.
 * Go 1.10+ writes a relay's forwarded request and response in the version of the message that caused it; writing
 * for the tunnel instead agrees with it whenever the two tunnels share a version, and keeps a 1.6.1 peer readable
 * when they do not. Received messages of either generation are read as Go reads them (relayEndpoints).
 *
 * A Go 1.11 peer may name an end by any address of its certificate: it asks for a relay to the address it was
 * handshaking with, the IPv6 VPN address of a dual-stack host when it pinged that. Such an address is mapped to the
 * host's VPN IP (`vpnIpOf`: our own addresses and those of the hosts we have tunnels to, vpn-addr-book.ts); the
 * relay is keyed by VPN IPs as any other, and what is sent on about it names the target as the initiator did (R asks
 * B for it and answers A with it; B echoes it), as Go passes RelayToAddr along. A request whose target maps to no
 * host we know is logged and not relayed; as a relay we handshake with that address (first contact), as Go does.
 */
import { randomInt } from 'node:crypto';
import type { NebulaConfig } from '../shared/config';
import type { RelayRoute, ViaRelay } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import { ProtobufError } from '../shared/protobuf';
import type { CertVersion } from '../shared/pki/certificate';
import { ControlType, controlFor, decodeControl, encodeControl, relayEndpoints, type NebulaControl, type RelayControl } from '../shared/protocol/control';
import { formatAddr, type VpnAddr } from '../shared/protocol/vpn-addr';
import { formatIPv4 } from '../shared/util/ipv4';
import type { HostInfo } from './hostmap';
import type { MetaPayload } from './meta-sender';

export interface Relay {
  localIndex: number;
  /** The index the host at the other end of our tunnel knows this relay by (0 until it answered). */
  remoteIndex: number;
  kind: 'terminal' | 'forwarding';
  state: 'requested' | 'established';
  /** The host whose tunnel carries this relay's frames. */
  hostVpnIp: number;
  /** Who the frames are for: the far end (terminal), or the host on R's other side (forwarding). */
  peerVpnIp: number;
  /** R's side towards the origin: how the origin named the target, when not by its VPN IP (echoed in R's answer). */
  peerAddr?: VpnAddr;
}

export interface RelayManagerEnv {
  log: Logger;
  vpnIp: number;
  config(): NebulaConfig;
  /** relay.use_relays and not relay.am_relay, as read at start (Go reads it once). */
  useRelays: boolean;
  /** The relay VPN IPs a host asked to be reached through (its lighthouse passed them on). */
  relaysFor(vpnIp: number): number[];
  /** The VPN IP of the host an Addr of a v2 message names (vpn-addr-book.ts), or undefined for none we know. */
  vpnIpOf(a: VpnAddr): number | undefined;
  tunnelTo(vpnIp: number): HostInfo | undefined;
  startHandshake(vpnIp: number): void;
  /** First contact with a host known only by an IPv6 VPN address (handshake-manager.ts startTo6). */
  startHandshake6?(a: VpnAddr): void;
  /** A NebulaControl message to `vpnIp` over its tunnel (handshaking first when there is none). */
  sendControl(vpnIp: number, payload: MetaPayload): void;
  /** A complete datagram in a relay frame on `h` to relay index `remoteIndex`; false when nothing was sent. */
  sendFrame(h: HostInfo, remoteIndex: number, datagram: Buffer): boolean;
  /** The routines' copy of the established relays (sent whole at every change). */
  publish(routes: RelayRoute[]): void;
  /** At most this many relays (each costs an index and a routing entry). */
  capacity: number;
}

const key = (host: number, peer: number): string => `${host}:${peer}`;

export class RelayManager {
  private readonly byIndex = new Map<number, Relay>();
  private readonly byHostPeer = new Map<string, Relay>();

  constructor(private readonly env: RelayManagerEnv) {}

  /** Every relay, for nebula-ctl print-relays. */
  all(): IterableIterator<Relay> {
    return this.byIndex.values();
  }

  /** How many relays (each holds one local index): Go's hostmap.main.relayIndexes gauge. */
  get size(): number {
    return this.byIndex.size;
  }

  /** The established indexes, as the routines route frames. */
  routes(): RelayRoute[] {
    const out: RelayRoute[] = [];
    for (const r of this.byIndex.values()) {
      if (r.state !== 'established') continue;
      if (r.kind === 'terminal') {
        out.push({ localIndex: r.localIndex, fromVpnIp: r.hostVpnIp, kind: 'terminal', remoteIndex: r.remoteIndex });
        continue;
      }
      const other = this.byHostPeer.get(key(r.peerVpnIp, r.hostVpnIp));
      if (other?.state !== 'established') continue;
      out.push({ localIndex: r.localIndex, fromVpnIp: r.hostVpnIp, kind: 'forwarding', remoteIndex: r.remoteIndex, targetVpnIp: r.peerVpnIp, targetRemoteIndex: other.remoteIndex });
    }
    return out;
  }

  /** One handshake attempt to `target`: through every relay it named, asking for the relay where there is none. */
  forHandshake(target: number, stage1: Buffer): void {
    const env = this.env;
    if (!env.useRelays) return;
    for (const relayIp of env.relaysFor(target)) {
      if (relayIp === target || relayIp === env.vpnIp) continue;
      const h = env.tunnelTo(relayIp);
      // Only over a direct tunnel to the relay (Go: relayHostInfo.remote == nil counts as none; a no-op handshake then).
      if (!h || h.relay) {
        env.log.info('Establish tunnel to relay target.', { relay: formatIPv4(relayIp), vpnIp: formatIPv4(target) });
        env.startHandshake(relayIp);
        continue;
      }
      const existing = this.byHostPeer.get(key(relayIp, target));
      if (existing?.state === 'established') {
        env.log.info('Send handshake via relay', { relay: formatIPv4(relayIp), vpnIp: formatIPv4(target) });
        env.sendFrame(h, existing.remoteIndex, stage1);
        continue;
      }
      const r = existing ?? this.add({ kind: 'terminal', state: 'requested', hostVpnIp: relayIp, peerVpnIp: target, remoteIndex: 0 });
      if (!r) continue;
      env.log.info(existing ? 'Re-send CreateRelay request' : 'Attempt to relay through hosts', { relay: formatIPv4(relayIp), vpnIp: formatIPv4(target) });
      this.send(relayIp, { type: ControlType.CreateRelayRequest, initiatorRelayIndex: r.localIndex, responderRelayIndex: 0, fromVpnIp: env.vpnIp, toVpnIp: target });
    }
  }

  /** A handshake (or its answer) that came through a relay goes back the same way. */
  sendVia(via: ViaRelay, datagram: Buffer): void {
    const h = this.env.tunnelTo(via.relayVpnIp);
    if (h) this.env.sendFrame(h, via.remoteIndex, datagram);
  }

  /** A NebulaControl payload (type 6) from the tunnel to `from`. */
  onControl(from: number, payload: Buffer): void {
    let wire: NebulaControl;
    try {
      wire = decodeControl(payload);
    } catch (err) {
      if (!(err instanceof ProtobufError)) throw err;
      this.env.log.debug('Failed to unmarshal control message', { vpnIp: formatIPv4(from), error: err.message });
      return;
    }
    if (wire.type !== ControlType.CreateRelayRequest && wire.type !== ControlType.CreateRelayResponse) return;
    const read = relayEndpoints(wire, (a) => this.env.vpnIpOf(a));
    if (!read.ok) {
      this.env.log.debug(read.reason, { vpnIp: formatIPv4(from), type: wire.type });
      this.handshakeUnknownTarget(from, wire);
      return;
    }
    const m = read.control;
    const named = (ip: number, a: VpnAddr | undefined): string => (a ? `${formatAddr(a)} (${formatIPv4(ip)})` : formatIPv4(ip));
    const fields = { relayFrom: named(m.fromVpnIp, m.fromAddr), relayTarget: named(m.toVpnIp, m.toAddr), initiatorIdx: m.initiatorRelayIndex, hostInfo: formatIPv4(from) };
    if (m.type === ControlType.CreateRelayRequest) {
      this.env.log.info('handleCreateRelayRequest', fields);
      this.onRequest(from, m);
    } else if (m.type === ControlType.CreateRelayResponse) {
      this.env.log.info('handleCreateRelayResponse', { ...fields, responderIdx: m.responderRelayIndex });
      this.onResponse(from, m);
    }
  }

  /**
   * A relay request from its origin for a target named by an IPv6 VPN address of no host we know: as a relay we
   * handshake with that address (Go: f.Handshake(target)), so the origin's next request finds the tunnel.
   */
  private handshakeUnknownTarget(from: number, wire: NebulaControl): void {
    const env = this.env;
    if (wire.type !== ControlType.CreateRelayRequest || !env.config().relay.am_relay) return;
    if (!wire.relayFromAddr || !wire.relayToAddr || env.vpnIpOf(wire.relayFromAddr) !== from) return;
    if (env.vpnIpOf(wire.relayToAddr) === undefined) env.startHandshake6?.(wire.relayToAddr);
  }

  /** The tunnel to `vpnIp` is gone: so is every relay riding it, and every relay forwarding to it. */
  tunnelGone(vpnIp: number): void {
    let changed = false;
    for (const r of [...this.byIndex.values()]) {
      if (r.hostVpnIp === vpnIp || (r.kind === 'forwarding' && r.peerVpnIp === vpnIp)) {
        this.remove(r);
        changed = true;
      }
    }
    if (changed) this.publish();
  }

  private onRequest(from: number, m: RelayControl): void {
    const env = this.env;
    const origin = m.fromVpnIp;
    const target = m.toVpnIp;
    if (target === env.vpnIp) {
      // We are B: a terminal relay on the tunnel to R, established at once; a new initiator index replaces a stale one.
      let r = this.byHostPeer.get(key(from, origin));
      if (r && r.remoteIndex !== m.initiatorRelayIndex) {
        this.remove(r);
        r = undefined;
      }
      r ??= this.add({ kind: 'terminal', state: 'established', hostVpnIp: from, peerVpnIp: origin, remoteIndex: m.initiatorRelayIndex });
      if (!r) return;
      this.publish();
      // Go answers with both ends as the request named them.
      const response: RelayControl = { type: ControlType.CreateRelayResponse, responderRelayIndex: r.localIndex, initiatorRelayIndex: r.remoteIndex, fromVpnIp: origin, toVpnIp: target };
      this.send(from, withAddrs(response, m.fromAddr, m.toAddr));
      return;
    }
    if (!env.config().relay.am_relay) return;
    if (origin !== from) return; // a relay request is only made by its origin (Go trusts it; we check it)
    const targetTunnel = env.tunnelTo(target);
    if (!targetTunnel) {
      env.startHandshake(target); // the origin asks again on its next attempt
      return;
    }
    if (targetTunnel.relay) return; // only relay to peers we reach directly (Go: peer.remote == nil); one hop only
    // The B side: ask B, unless that is already established.
    let toTarget = this.byHostPeer.get(key(target, from));
    toTarget ??= this.add({ kind: 'forwarding', state: 'requested', hostVpnIp: target, peerVpnIp: from, remoteIndex: 0 });
    if (!toTarget) return;
    if (toTarget.state === 'requested') {
      // Go names the origin by its first address and the target as the origin named it.
      const request: RelayControl = { type: ControlType.CreateRelayRequest, initiatorRelayIndex: toTarget.localIndex, responderRelayIndex: 0, fromVpnIp: from, toVpnIp: target };
      this.send(target, withAddrs(request, undefined, m.toAddr));
    }
    // The A side, remembering A's index.
    let toOrigin = this.byHostPeer.get(key(from, target));
    if (toOrigin && toOrigin.remoteIndex !== m.initiatorRelayIndex) {
      this.remove(toOrigin);
      toOrigin = undefined;
    }
    toOrigin ??= this.add({ kind: 'forwarding', state: toTarget.state, hostVpnIp: from, peerVpnIp: target, remoteIndex: m.initiatorRelayIndex });
    if (!toOrigin) return;
    if (m.toAddr) toOrigin.peerAddr = m.toAddr;
    else delete toOrigin.peerAddr;
    if (toOrigin.state === 'established') {
      this.publish();
      const response: RelayControl = { type: ControlType.CreateRelayResponse, responderRelayIndex: toOrigin.localIndex, initiatorRelayIndex: toOrigin.remoteIndex, fromVpnIp: from, toVpnIp: target };
      this.send(from, withAddrs(response, undefined, toOrigin.peerAddr));
    }
  }

  private onResponse(from: number, m: RelayControl): void {
    const r = this.byIndex.get(m.initiatorRelayIndex);
    if (!r || r.hostVpnIp !== from) {
      this.env.log.info('relayManager EstablishRelay relayForByIdx not found', { hostInfo: formatIPv4(from), initiatorRelayIndex: m.initiatorRelayIndex });
      return;
    }
    r.remoteIndex = m.responderRelayIndex;
    r.state = 'established';
    if (r.kind === 'forwarding') {
      // We are R and B answered: the A side is established too; tell A.
      const toOrigin = this.byHostPeer.get(key(r.peerVpnIp, from));
      if (toOrigin) {
        toOrigin.state = 'established';
        const response: RelayControl = {
          type: ControlType.CreateRelayResponse,
          responderRelayIndex: toOrigin.localIndex,
          initiatorRelayIndex: toOrigin.remoteIndex,
          fromVpnIp: r.peerVpnIp,
          toVpnIp: from,
        };
        this.send(r.peerVpnIp, withAddrs(response, undefined, toOrigin.peerAddr));
      }
    }
    this.publish();
  }

  private add(fields: Omit<Relay, 'localIndex'>): Relay | undefined {
    if (this.byIndex.size >= this.env.capacity) {
      this.env.log.warn('Relay table is full, refusing a relay', { host: formatIPv4(fields.hostVpnIp), peer: formatIPv4(fields.peerVpnIp) });
      return undefined;
    }
    let localIndex = 0;
    do localIndex = randomInt(1, 0x100000000 - 1) >>> 0;
    while (this.byIndex.has(localIndex));
    const r: Relay = { localIndex, ...fields };
    this.byIndex.set(localIndex, r);
    this.byHostPeer.set(key(r.hostVpnIp, r.peerVpnIp), r);
    return r;
  }

  private remove(r: Relay): void {
    this.byIndex.delete(r.localIndex);
    if (this.byHostPeer.get(key(r.hostVpnIp, r.peerVpnIp)) === r) this.byHostPeer.delete(key(r.hostVpnIp, r.peerVpnIp));
  }

  private publish(): void {
    this.env.publish(this.routes());
  }

  /** Written for the certificate version of the tunnel it goes over (known once that tunnel is: meta-sender.ts). */
  private send(to: number, m: RelayControl): void {
    this.env.sendControl(to, (v: CertVersion) => encodeControl(controlFor(v, m)));
  }
}

/** `m` naming its ends by the addresses given (those a peer used), where there are any. */
function withAddrs(m: RelayControl, fromAddr: VpnAddr | undefined, toAddr: VpnAddr | undefined): RelayControl {
  return { ...m, ...(fromAddr ? { fromAddr } : {}), ...(toAddr ? { toAddr } : {}) };
}
