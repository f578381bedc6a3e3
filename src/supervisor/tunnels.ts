/**
 * Tunnel lifecycle on the supervisor's side: a completed handshake becomes a tunnel (a slot in the shared region,
 * an entry in the host map, a `tunnelUp` to every routine), follows its peer when it roams, and is removed on
 * closeTunnel, recvError, liveness failure or shutdown. The few packets the supervisor itself sends on a tunnel (test
 * requests, closeTunnel) go through sendOnTunnel like the routines' do, so they share the counter and its limit.
 */
import { formatAddr, formatPrefix, isV6 } from '../shared/pki/v2/prefix';
import { createPacketCipher } from '../shared/crypto';
import type { PeerIdentity, SupervisorToRoutine, TunnelInstall } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import { allocSockaddrIn, fillSockaddrIn } from '../shared/native/sockaddr';
import { SUBTYPE_TEST_REQUEST, TYPE_CLOSE_TUNNEL, TYPE_TEST } from '../shared/protocol/header';
import type { TunnelSlots } from '../shared/state/tunnel-slots';
import { sendOnTunnel, sendRelayFrame, type DatagramOutbox } from '../shared/tunnel/send';
import { formatIPv4 } from '../shared/util/ipv4';
import { testHooks } from '../shared/test-hooks';
import { formatEndpoint } from '../shared/util/endpoint';
import type { SupervisorCounters } from './counters';
import type { HostInfo, HostMap, NewTunnel } from './hostmap';
import type { LiveConfig } from './live-config';
import { disconnectIfInvalid } from './invalid-certs';
import type { CAPool } from '../shared/pki';
import type { RemoteAllowList } from '../shared/allow-list';

export interface TunnelsEnv {
  log: Logger;
  counters: SupervisorCounters;
  hostmap: HostMap;
  slots: TunnelSlots;
  /** Where the supervisor's own tunnel packets are sealed and sent. */
  outbox: DatagramOutbox;
  /** The cipher and CA pool in force when a tunnel is installed. */
  live: LiveConfig;
  /** Tells every routine. */
  broadcast(msg: SupervisorToRoutine): void;
  /** lighthouse.remote_allow_list / remote_allow_ranges as they are now: a tunnel never roams to a denied address. */
  remoteAllowList?: () => RemoteAllowList;
  /** Told of every tunnel installed, removed or moved (lighthouse, meta sender, DNS). */
  events?: TunnelEvents;
}

export interface TunnelEvents {
  up(h: HostInfo): void;
  /** `h` is gone; `replaced` when a newer tunnel to the same host took its place. */
  down(h: HostInfo, replaced: boolean): void;
  roamed(h: HostInfo): void;
}

/** Go's RoamingSuppressSeconds: roaming straight back to the previous address within this is ignored. */
export const ROAM_SUPPRESS_MS = 2000;

const NO_PAYLOAD = Buffer.alloc(0);
/** A full host map is logged at most this often (every refusal is counted): a retrying peer must not flood the log. */
const FULL_LOG_INTERVAL_MS = 10_000;

export class Tunnels {
  private lastFullLog = -Infinity;
  private refusedSinceLog = 0;

  constructor(private readonly env: TunnelsEnv) {}

  /**
   * Installs a completed handshake as the tunnel to its host, replacing any older one. Undefined, with the tunnel
   * refused and logged, when every slot of the host map is taken.
   */
  install(base: NewTunnel): HostInfo | undefined {
    const { hostmap, log } = this.env;
    const now = Date.now();
    // Test hook: a host's first tunnel may start its send counter near the re-key threshold (never a re-key's).
    const counterStart = testHooks.sendCounterStart > 0 && hostmap.get(base.vpnIp) === undefined ? testHooks.sendCounterStart : undefined;
    const slot = hostmap.allocateSlot(now, counterStart);
    if (slot === undefined) {
      this.env.counters.inc('hostmap.refused');
      this.refusedSinceLog++;
      if (now - this.lastFullLog >= FULL_LOG_INTERVAL_MS) {
        log.error('Host map is full, refusing tunnel', { vpnIp: formatIPv4(base.vpnIp), 'tunnels.max': hostmap.capacity, refused: this.refusedSinceLog });
        this.lastFullLog = now;
        this.refusedSinceLog = 0;
      }
      return undefined;
    }
    const encrypt = createPacketCipher(this.env.live.config.cipher, base.sendKey);
    const remoteSockaddr = allocSockaddrIn();
    fillSockaddrIn(remoteSockaddr, base.remoteIp, base.remotePort);
    const h: HostInfo = { ...base, slot, encrypt, remoteSockaddr, recvErrors: 0, createdAt: now };
    const relay = base.relay;
    if (relay) h.via = { remoteIndex: relay.remoteIndex, relayTunnel: () => hostmap.get(relay.relayVpnIp) };
    const previous = hostmap.add(h);
    this.env.broadcast({ type: 'tunnelUp', tunnel: this.tunnelInstall(h) });
    if (previous) {
      log.info('Taking new handshake', { vpnIp: formatIPv4(h.vpnIp), oldIndex: previous.localIndex, newIndex: h.localIndex });
      this.remove(previous);
    }
    this.env.events?.up(h);
    return h;
  }

  /** Removes a tunnel without telling the peer. */
  remove(h: HostInfo): void {
    if (this.env.hostmap.byLocalIndex(h.localIndex) !== h) return;
    this.env.hostmap.remove(h, Date.now());
    this.env.broadcast({ type: 'tunnelDown', localIndex: h.localIndex });
    this.env.events?.down(h, this.env.hostmap.get(h.vpnIp) !== undefined);
  }

  /** Removes a tunnel if it is still installed; with `sendClose` the peer is told first (graceful shutdown). */
  teardown(h: HostInfo, sendClose: boolean): void {
    if (this.env.hostmap.byLocalIndex(h.localIndex) !== h) return;
    // Counted only when it went out (nothing is sent on a tunnel whose counter space is spent), as the routines count.
    if (sendClose && this.send(h, TYPE_CLOSE_TUNNEL, 0)) this.env.counters.inc('messages.tx.close_tunnel');
    this.remove(h);
  }

  /** Shutdown: tells every peer and removes every tunnel. */
  closeAll(): void {
    for (const h of [...this.env.hostmap.hosts()]) this.teardown(h, true);
  }

  /** The connection manager heard nothing back (nebula-spec §6.4): the tunnel goes, the peer is not told. */
  dead(h: HostInfo): void {
    this.env.log.info('Tunnel status', { vpnIp: formatIPv4(h.vpnIp), tunnelCheck: { state: 'dead', method: 'active' } });
    this.teardown(h, false);
  }

  /**
   * A routine authenticated a packet of tunnel `localIndex` from a new underlay address: follow it, unless the
   * remote allow list denies that address (Go's handleHostRoaming).
   *
   * The routine that saw the packet has already moved ITS copy of the remote (outside-to-inside.ts sets it before
   * posting `roamed`), so its replies were going to the new address by the time we hear of it. On a denial the host
   * map keeps the old remote and every routine gets a `remoteChanged` back to it (with the relay, for a relayed
   * tunnel), which restores that routine's copy. Each further packet from the denied address repeats this round
   * trip; the data itself was authenticated, so it is still delivered, as in Go (only the tunnel's remote is refused).
   */
  roamed(localIndex: number, remoteIp: number, remotePort: number, now = Date.now()): void {
    const h = this.env.hostmap.byLocalIndex(localIndex);
    if (!h || (h.remoteIp === remoteIp && h.remotePort === remotePort)) return;
    const fields = { vpnIp: formatIPv4(h.vpnIp), certName: h.cert.details.name, newAddr: formatEndpoint({ ip: remoteIp, port: remotePort }) };
    const back = h.lastRoam !== undefined && h.lastRoam.from.ip === remoteIp && h.lastRoam.from.port === remotePort;
    if (back && now - h.lastRoam!.at < ROAM_SUPPRESS_MS) {
      this.env.log.debug('Suppressing roam back to previous remote', fields);
      this.restoreRemote(h);
      return;
    }
    if (this.env.remoteAllowList && !this.env.remoteAllowList().allow(h.vpnIp, remoteIp)) {
      this.env.log.debug('lighthouse.remote_allow_list denied roaming', fields);
      this.restoreRemote(h);
      return;
    }
    h.lastRoam = { at: now, from: { ip: h.remoteIp, port: h.remotePort } };
    this.env.log.info('Host roamed to new udp ip/port.', {
      vpnIp: formatIPv4(h.vpnIp),
      udpAddr: formatEndpoint({ ip: h.remoteIp, port: h.remotePort }),
      newAddr: formatEndpoint({ ip: remoteIp, port: remotePort }),
    });
    this.moveTo(h, remoteIp, remotePort);
    this.env.events?.roamed(h);
  }

  /**
   * Puts every routine's copy of the tunnel back on the remote the host map holds: a `remoteChanged`, naming the relay
   * when the tunnel is relayed (the routine that roamed dropped it). Not a `tunnelUp`: that would rebuild the tunnel
   * in every routine (ciphers, and the VPN IP's route even when a newer tunnel to the host holds it) for a packet.
   */
  private restoreRemote(h: HostInfo): void {
    this.env.broadcast({ type: 'remoteChanged', localIndex: h.localIndex, remoteIp: h.remoteIp, remotePort: h.remotePort, ...(h.relay ? { via: { ...h.relay } } : {}) });
  }

  /** Points the tunnel (ours and every routine's copy) at a new remote. */
  moveTo(h: HostInfo, remoteIp: number, remotePort: number): void {
    if (h.relay) this.env.log.info('Relayed tunnel moved to a direct path', { vpnIp: formatIPv4(h.vpnIp), relay: formatIPv4(h.relay.relayVpnIp) });
    h.relay = undefined;
    h.via = undefined;
    h.remoteIp = remoteIp;
    h.remotePort = remotePort;
    fillSockaddrIn(h.remoteSockaddr, remoteIp, remotePort);
    this.env.broadcast({ type: 'remoteChanged', localIndex: h.localIndex, remoteIp, remotePort });
  }

  /** Closes (closeTunnel sent) every tunnel whose peer cert no longer verifies against `caPool()`. Returns how many. */
  closeInvalid(log: Logger, caPool: () => CAPool): number {
    const env = { enabled: true, log, caPool, close: (h: HostInfo) => this.teardown(h, true) };
    const now = Date.now();
    let closed = 0;
    for (const h of [...this.env.hostmap.hosts()]) if (disconnectIfInvalid(env, h, now)) closed++;
    return closed;
  }

  sendTest(h: HostInfo): void {
    if (this.send(h, TYPE_TEST, SUBTYPE_TEST_REQUEST)) this.env.counters.inc('messages.tx.test_request');
  }

  /** The IPC form of a tunnel, for tunnelUp and for a (re)spawned routine's setup. */
  tunnelInstall(h: HostInfo): TunnelInstall {
    return {
      slot: h.slot,
      localIndex: h.localIndex,
      remoteIndex: h.remoteIndex,
      vpnIp: h.vpnIp,
      sendKey: h.sendKey,
      recvKey: h.recvKey,
      remoteIp: h.remoteIp,
      remotePort: h.remotePort,
      peer: this.peerIdentity(h),
      ...(h.relay ? { via: { ...h.relay } } : {}),
    };
  }

  private peerIdentity(h: HostInfo): PeerIdentity {
    const d = h.cert.details;
    return {
      name: d.name,
      groups: [...d.groups],
      issuer: d.issuer,
      caName: this.env.live.caPool.cas.get(d.issuer)?.details.name ?? '',
      ips: d.ips.map((n) => n.ip >>> 0),
      subnets: d.subnets.map((n) => ({ ip: n.ip, mask: n.mask })),
      // Host bits of each IPv6 network are the peer's address (as the IPv4 `ips` are).
      ips6: h.cert.networks.filter(isV6).map((n) => formatAddr(n.addr)),
      subnets6: h.cert.unsafeNetworks.filter(isV6).map(formatPrefix),
    };
  }

  /** A complete datagram in a relay frame on `h` (the tunnel to the relay host) to relay index `remoteIndex`. */
  sendFrame(h: HostInfo, remoteIndex: number, datagram: Buffer): boolean {
    return sendRelayFrame(this.env.slots, h, remoteIndex, datagram, 0, datagram.length, this.env.outbox);
  }

  /** A packet on `h` (empty payload by default); false when its counter space is spent (nothing is sent then). */
  send(h: HostInfo, type: number, subtype: number, payload: Buffer = NO_PAYLOAD): boolean {
    return sendOnTunnel(this.env.slots, h, type, subtype, payload, 0, payload.length, this.env.outbox);
  }
}
