/**
 * The supervisor: owns config, PKI, the inside device, the UDP sockets, the shared region, the host map and
 * handshakes, and the routine processes (DESIGN.md). Everything long-lived is created here before any routine is
 * forked and kept for the supervisor's whole life.
 */
import { promises as dns } from 'node:dns';
import { createPacketCipher, type PacketCipher } from '../shared/crypto';
import { loadConfig, logConfigWarnings, sectionChanged, diffRequiresRestart, type NebulaConfig } from '../shared/config';
import { describeRules, bumpRulesVersion } from '../shared/firewall';
import { loadHostPki, type CAPool, type HostPki } from '../shared/pki';
import { HEADER_LEN, TYPE_CLOSE_TUNNEL, TYPE_TEST, SUBTYPE_TEST_REQUEST, writeHeader } from '../shared/protocol/header';
import { TYPE_HANDSHAKE, TYPE_LIGHTHOUSE, TYPE_RECV_ERROR } from '../shared/protocol/header';
import { close as closeFd } from '../shared/native/libc';
import { createUdpSocket, localPort, sendTo } from '../shared/native/udp';
import { createRegion, type Region } from '../shared/shm/region';
import { computeLayout, stampHeader, viewsOver, type RegionViews, type RegionCapacities } from '../shared/state/layout';
import { ConntrackTable, conntrackNow, releaseConntrackOwner } from '../shared/state/conntrack';
import type { MetricsSource } from './metrics';
import { formatCidr, formatIPv4, parseIPv4, parseCidr } from '../shared/util/ipv4';
import type { Logger, LogLevel } from '../shared/log';
import type { FirewallUpdate, MetaPacket, PeerIdentity, RoutineSetup, RoutineToSupervisor, TunnelInstall } from '../shared/ipc/messages';
import { ConnectionManager } from './connection-manager';
import { SupervisorCounters } from './counters';
import { HandshakeManager, type Endpoint } from './handshake-manager';
import { HostMap, type HostInfo } from './hostmap';
import { DisabledInside } from './inside/disabled';
import type { Inside } from './inside/inside';
import { TunInside } from './inside/tun';
import { UserspaceInside } from './inside/userspace';
import { RoutinePool } from './routines';

export interface ReloadResult {
  ok: boolean;
  error?: string;
  changed: string[];
}

export class SupervisorNode {
  cfg: NebulaConfig;
  private pki: HostPki;
  readonly vpnIp: number;
  readonly vpnMask: number;
  private inside?: Inside;
  private udpFds: number[] = [];
  private region?: Region;
  private views?: RegionViews;
  private capacities!: RegionCapacities;
  hostmap!: HostMap;
  handshakes!: HandshakeManager;
  routines!: RoutinePool;
  private connections!: ConnectionManager;
  readonly counters = new SupervisorCounters();
  private staticHosts = new Map<number, Endpoint[]>();
  private firewall: FirewallUpdate;
  private firewallHash: string;
  private sendSa = Buffer.alloc(16);
  listenPort = 0;
  private stopped = false;

  constructor(
    private readonly configPath: string,
    readonly log: Logger,
  ) {
    const loaded = loadConfig(configPath);
    this.cfg = loaded.config;
    this.applyLogging(this.cfg);
    logConfigWarnings(log, loaded.warnings);
    this.pki = this.loadPki(this.cfg);
    const first = this.pki.cert.details.ips[0]!;
    this.vpnIp = first.ip >>> 0;
    this.vpnMask = first.mask >>> 0;
    this.firewall = this.firewallUpdate(this.cfg, 0);
    this.firewallHash = describeRules(this.cfg.firewall.outbound, this.cfg.firewall.inbound).hash;
  }

  private applyLogging(cfg: NebulaConfig): void {
    this.log.configure({ level: cfg.logging.level, format: cfg.logging.format, disableTimestamp: cfg.logging.disable_timestamp });
  }

  private loadPki(cfg: NebulaConfig): HostPki {
    const pki = loadHostPki({ ca: cfg.pki.ca, cert: cfg.pki.cert, key: cfg.pki.key });
    for (const fp of cfg.pki.blocklist) pki.caPool.blocklistFingerprint(fp);
    for (const ca of pki.expiredCAs) this.log.warn('expired certificate present in CA pool', { name: ca.details.name, fingerprint: ca.fingerprint() });
    return pki;
  }

  private firewallUpdate(cfg: NebulaConfig, version: number): FirewallUpdate {
    const fw = cfg.firewall;
    return {
      version,
      inbound: fw.inbound.map((r) => ({ ...r, groups: [...r.groups] })),
      outbound: fw.outbound.map((r) => ({ ...r, groups: [...r.groups] })),
      tcpTimeout: fw.conntrack.tcp_timeout,
      udpTimeout: fw.conntrack.udp_timeout,
      defaultTimeout: fw.conntrack.default_timeout,
    };
  }

  get caPool(): CAPool {
    return this.pki.caPool;
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    const routines = cfg.routines;
    await this.resolveStaticHosts(cfg);

    this.capacities = { tunnels: cfg.tunnels.max, routines, conntrack: nextPow2(cfg.firewall.conntrack.max_entries) };
    const layout = computeLayout(this.capacities);
    this.region = createRegion(layout.totalBytes);
    this.views = viewsOver(this.region.buffer, layout);
    stampHeader(this.views);
    this.hostmap = new HostMap(this.views.tunnels, layout.tunnels);

    this.inside = cfg.tun.disabled
      ? new DisabledInside()
      : cfg.tun.userspace !== ''
        ? new UserspaceInside(cfg.tun.userspace, this.vpnIp, cfg.tun.mtu, routines, this.log)
        : new TunInside(cfg, this.vpnIp, this.vpnMask, routines);
    this.createSockets(cfg, routines);

    this.handshakes = new HandshakeManager({
      log: this.log,
      cipher: cfg.cipher,
      pki: () => this.pki,
      vpnIp: this.vpnIp,
      hostmap: this.hostmap,
      tryIntervalMs: cfg.handshakes.try_interval,
      retries: cfg.handshakes.retries,
      counters: this.counters,
      addressesFor: (ip) => this.staticHosts.get(ip) ?? [],
      sendUdp: (buf, to) => this.sendUdp(buf, buf.length, to),
      install: (h) => this.install(h),
      sendTest: (h) => this.sendTest(h),
    });
    this.connections = new ConnectionManager({
      hostmap: this.hostmap,
      aliveIntervalMs: cfg.timers.connection_alive_interval,
      pendingDeletionMs: cfg.timers.pending_deletion_interval,
      sendTest: (h) => this.sendTest(h),
      dead: (h) => {
        this.log.info('Tunnel status', { vpnIp: formatIPv4(h.vpnIp), tunnelCheck: { state: 'dead', method: 'active' } });
        this.teardown(h, false);
      },
    });

    this.routines = new RoutinePool({
      count: routines,
      capacities: this.capacities,
      fds: (i) => ({ udp: this.udpFds[i]!, inside: this.inside!.queueFd(i), region: this.region!.fd }),
      setup: (i) => this.routineSetup(i),
      onMessage: (m) => this.onRoutineMessage(m),
      onDied: (i) => {
        // Locks a dead routine held (never across anything that blocks, but a SIGKILL can land anywhere).
        this.hostmap.releaseLocksOf(i);
        releaseConntrackOwner(this.views!.conntrack, this.capacities.conntrack, i + 1);
      },
      log: this.log,
    });
    await this.inside.activate();
    await this.routines.start();
    this.connections.start();
    this.log.info('Nebula interface is active', {
      interface: this.inside.name,
      network: formatCidr({ ip: this.vpnIp, mask: this.vpnMask }),
      build: 'nebula-ts',
      udpAddr: `${cfg.listen.host}:${this.listenPort}`,
      routines,
      cipher: cfg.cipher,
      firewallHash: this.firewallHash,
    });
    // Static hosts are handshaked at once (nebula-spec §5.5): a lighthouse-less mesh comes up by itself.
    for (const ip of this.staticHosts.keys()) this.handshakes.start(ip);
  }

  private createSockets(cfg: NebulaConfig, routines: number): void {
    const host = cfg.listen.host === '::' || cfg.listen.host === '[::]' ? '0.0.0.0' : cfg.listen.host;
    const reusePort = routines > 1;
    const bufs = { recvBuf: cfg.listen.read_buffer || undefined, sendBuf: cfg.listen.write_buffer || undefined };
    const first = createUdpSocket({ host, port: cfg.listen.port, reusePort, ...bufs });
    this.udpFds.push(first);
    // With listen.port 0 every socket must still share the port the first one got (Nebula #1057 got this wrong).
    this.listenPort = localPort(first);
    for (let i = 1; i < routines; i++) this.udpFds.push(createUdpSocket({ host, port: this.listenPort, reusePort, ...bufs }));
  }

  private async resolveStaticHosts(cfg: NebulaConfig): Promise<void> {
    const map = new Map<number, Endpoint[]>();
    for (const [vpn, addrs] of Object.entries(cfg.static_host_map)) {
      const vpnIp = parseIPv4(vpn);
      if (vpnIp === undefined) continue;
      const list: Endpoint[] = [];
      for (const a of addrs) {
        const colon = a.lastIndexOf(':');
        const host = a.slice(0, colon).replace(/^\[|\]$/g, '');
        const port = Number(a.slice(colon + 1));
        let ip = parseIPv4(host);
        if (ip === undefined) {
          try {
            ip = parseIPv4((await dns.lookup(host, { family: 4 })).address);
          } catch (err) {
            this.log.warn('Failed to resolve static_host_map entry', { vpnIp: vpn, host, error: String(err) });
          }
        }
        if (ip !== undefined && !list.some((e) => e.ip === ip && e.port === port)) list.push({ ip, port });
      }
      map.set(vpnIp, list);
    }
    this.staticHosts = map;
  }

  private routineSetup(i: number): RoutineSetup {
    const cfg = this.cfg;
    const unsafeRoutes = [];
    for (const r of cfg.tun.unsafe_routes) {
      const net = parseCidr(r.route);
      const via = parseIPv4(r.via);
      if (net && via !== undefined) unsafeRoutes.push({ ip: net.ip, mask: net.mask, via });
    }
    return {
      routine: i,
      routines: cfg.routines,
      cipher: cfg.cipher,
      vpnIp: this.vpnIp,
      vpnMask: this.vpnMask,
      localSubnets: this.pki.cert.details.subnets.map((s) => ({ ip: s.ip, mask: s.mask })),
      unsafeRoutes,
      insideKind: this.inside!.kind,
      mtu: cfg.tun.mtu,
      sendRecvError: cfg.listen.send_recv_error,
      dropLocalBroadcast: cfg.tun.drop_local_broadcast,
      dropMulticast: cfg.tun.drop_multicast,
      firewall: this.firewall,
      tunnels: [...this.hostmap.hosts()].map((h) => this.tunnelInstall(h)),
      logLevel: cfg.logging.level,
      logFormat: cfg.logging.format,
    };
  }

  // ------------------------------------------------------------------------------------------------- tunnels

  private peerIdentity(h: HostInfo): PeerIdentity {
    const d = h.cert.details;
    return {
      name: d.name,
      groups: [...d.groups],
      issuer: d.issuer,
      caName: this.pki.caPool.cas.get(d.issuer)?.details.name ?? '',
      ips: d.ips.map((n) => n.ip >>> 0),
      subnets: d.subnets.map((n) => ({ ip: n.ip, mask: n.mask })),
    };
  }

  private tunnelInstall(h: HostInfo): TunnelInstall {
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
    };
  }

  private install(base: Omit<HostInfo, 'slot' | 'sender' | 'recvErrors' | 'createdAt'>): HostInfo {
    const now = Date.now();
    const slot = this.hostmap.allocateSlot(now);
    const sender: PacketCipher = createPacketCipher(this.cfg.cipher, base.sendKey);
    const h: HostInfo = { ...base, slot, sender, recvErrors: 0, createdAt: now };
    const previous = this.hostmap.add(h);
    this.routines.broadcast({ type: 'tunnelUp', tunnel: this.tunnelInstall(h) });
    if (previous) {
      this.log.info('Taking new handshake', { vpnIp: formatIPv4(h.vpnIp), oldIndex: previous.localIndex, newIndex: h.localIndex });
      this.removeTunnel(previous);
    }
    return h;
  }

  private removeTunnel(h: HostInfo): void {
    this.hostmap.remove(h, Date.now());
    this.routines.broadcast({ type: 'tunnelDown', localIndex: h.localIndex });
  }

  /** Removes a tunnel; with `sendClose` the peer is told first (graceful shutdown). */
  teardown(h: HostInfo, sendClose: boolean): void {
    if (this.hostmap.byLocalIndex(h.localIndex) !== h) return;
    if (sendClose) this.sendEncrypted(h, TYPE_CLOSE_TUNNEL, 0, Buffer.alloc(0));
    this.removeTunnel(h);
  }

  private sendEncrypted(h: HostInfo, type: number, subtype: number, payload: Buffer): void {
    const counter = this.hostmap.nextCounter(h);
    const buf = Buffer.alloc(HEADER_LEN + payload.length + 16);
    writeHeader(buf, 0, type, subtype, h.remoteIndex, 0, counter);
    const n = h.sender.encrypt(buf, HEADER_LEN, buf, 0, HEADER_LEN, payload, 0, payload.length, counter);
    this.sendUdp(buf, HEADER_LEN + n, { ip: h.remoteIp, port: h.remotePort });
  }

  sendTest(h: HostInfo): void {
    this.sendEncrypted(h, TYPE_TEST, SUBTYPE_TEST_REQUEST, Buffer.alloc(0));
    this.counters.inc('messages.tx.test_request');
  }

  /** The supervisor sends on socket 0 (sending never steals a routine's packets; reading would). */
  private sendUdp(buf: Buffer, len: number, to: Endpoint): void {
    const sa = this.sendSa;
    sa.writeUInt16LE(2, 0);
    sa.writeUInt16BE(to.port, 2);
    sa.writeUInt32BE(to.ip >>> 0, 4);
    sendTo(this.udpFds[0]!, buf, len, sa);
  }

  // --------------------------------------------------------------------------------------- routine messages

  private onRoutineMessage(m: RoutineToSupervisor): void {
    switch (m.type) {
      case 'meta':
        this.onMeta(m.packet);
        return;
      case 'needTunnel':
        this.handshakes.start(m.vpnIp);
        return;
      case 'roamed': {
        const h = this.hostmap.byLocalIndex(m.localIndex);
        if (!h || (h.remoteIp === m.remoteIp && h.remotePort === m.remotePort)) return;
        this.log.info('Host roamed to new udp ip/port.', {
          vpnIp: formatIPv4(h.vpnIp),
          udpAddr: `${formatIPv4(h.remoteIp)}:${h.remotePort}`,
          newAddr: `${formatIPv4(m.remoteIp)}:${m.remotePort}`,
        });
        h.remoteIp = m.remoteIp;
        h.remotePort = m.remotePort;
        this.routines.broadcast({ type: 'remoteChanged', localIndex: h.localIndex, remoteIp: m.remoteIp, remotePort: m.remotePort });
        return;
      }
      case 'log':
        this.log.log(m.level as LogLevel, m.msg, m.fields);
        return;
      case 'ready':
        return;
    }
  }

  private onMeta(p: MetaPacket): void {
    switch (p.type) {
      case TYPE_HANDSHAKE:
        this.handshakes.onPacket(p);
        return;
      case TYPE_RECV_ERROR:
        this.onRecvError(p);
        return;
      case TYPE_CLOSE_TUNNEL: {
        // Authenticated: the routine decrypted it with the tunnel's key (1.6.1 did not check, spec §6.3).
        const h = this.hostmap.byLocalIndex(p.localIndex);
        if (!h) return;
        this.log.info('Received close tunnel message', { vpnIp: formatIPv4(h.vpnIp), udpAddr: `${formatIPv4(p.fromIp)}:${p.fromPort}` });
        this.removeTunnel(h);
        return;
      }
      case TYPE_LIGHTHOUSE:
        this.log.debug('Lighthouse message ignored (lighthouse support is not implemented yet)', { from: formatIPv4(p.fromIp) });
        return;
      default:
        return;
    }
  }

  /**
   * recvError is unauthenticated (spec §6.1): the first three for a tunnel are only counted; from the fourth on,
   * the tunnel is torn down, and only if the error came from the tunnel's current remote address.
   */
  private onRecvError(p: MetaPacket): void {
    const index = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).readUInt32BE(4);
    this.handshakes.dropPendingByIndex(index);
    const h = this.hostmap.byRemoteIndex(index);
    if (!h) return;
    h.recvErrors++;
    if (h.recvErrors <= 3) return;
    if (h.remoteIp !== p.fromIp || h.remotePort !== p.fromPort) return;
    this.log.info('Tunnel received recv_error, tearing down', { vpnIp: formatIPv4(h.vpnIp), udpAddr: `${formatIPv4(p.fromIp)}:${p.fromPort}` });
    this.removeTunnel(h);
  }

  // ------------------------------------------------------------------------------------------------ reload

  /** SIGHUP / nebula-ctl reload: validate the whole file first; a bad file changes nothing. */
  reload(): ReloadResult {
    let next: NebulaConfig;
    try {
      const loaded = loadConfig(this.configPath);
      next = loaded.config;
      logConfigWarnings(this.log, loaded.warnings, 'reload');
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.log.error('Failed to reload config, keeping the running config', { error });
      return { ok: false, error, changed: [] };
    }
    const changed: string[] = [];
    let pki = this.pki;
    if (sectionChanged(this.cfg, next, 'pki')) {
      try {
        pki = this.loadPki(next);
        if (pki.cert.details.ips[0]?.ip !== this.vpnIp) throw new Error('pki.cert: the new certificate changes the VPN IP; restart to apply it');
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        this.log.error('Failed to reload config, keeping the running config', { error });
        return { ok: false, error, changed: [] };
      }
      changed.push('pki');
    }
    const restart = diffRequiresRestart(this.cfg, next);
    if (restart.length > 0) this.log.warn('Some changed keys need a restart to take effect', { keys: restart });
    const old = this.cfg;
    this.cfg = next;
    this.pki = pki;
    this.applyLogging(next);
    if (sectionChanged(old, next, 'logging')) changed.push('logging');
    if (sectionChanged(old, next, 'firewall')) {
      const version = bumpRulesVersion(this.firewall.version);
      const oldHash = this.firewallHash;
      this.firewall = this.firewallUpdate(next, version);
      this.firewallHash = describeRules(next.firewall.outbound, next.firewall.inbound).hash;
      if (version === 0) {
        // Entries stamped 0 a full wrap ago would otherwise pass as current without re-verification.
        this.log.warn('firewall rulesVersion has overflowed, resetting conntrack');
        this.views!.conntrack.fill(0);
      }
      this.routines.broadcast({ type: 'firewall', firewall: this.firewall });
      this.log.info('New firewall has been installed', { firewallHash: this.firewallHash, oldFirewallHash: oldHash, rulesVersion: version });
      changed.push('firewall');
    }
    return { ok: true, changed };
  }

  // ------------------------------------------------------------------------------------------------ stop

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.connections?.stop();
    this.handshakes?.stop();
    if (this.hostmap) for (const h of [...this.hostmap.hosts()]) this.teardown(h, true);
    await this.routines?.stop();
    this.inside?.close();
    for (const fd of this.udpFds) closeFd(fd);
    this.udpFds = [];
  }

  /** Sum of one counter over every routine row plus the supervisor's own count. */
  counterTotal(index: number, name: string): number {
    let total = this.counters.get(name);
    if (this.views) {
      const per = this.views.counters.length / this.capacities.routines;
      for (let r = 0; r < this.capacities.routines; r++) total += this.views.counters[r * per + index]!;
    }
    return total;
  }

  routineCounter(routine: number, index: number): number {
    if (!this.views) return 0;
    const per = this.views.counters.length / this.capacities.routines;
    return this.views.counters[routine * per + index]!;
  }

  /** What the Prometheus endpoint reads at scrape time. */
  metricsSource(): MetricsSource {
    const conntrack = new ConntrackTable(this.views!.conntrack, this.capacities.conntrack);
    return {
      routines: this.capacities.routines,
      counterTotal: (index, name) => this.counterTotal(index, name),
      routineCounter: (routine, index) => this.routineCounter(routine, index),
      supervisorCounters: () => this.counters.entries(),
      gauges: () => ({
        'hostmap.main.hosts': this.hostmap.size,
        'hostmap.pending.hosts': this.handshakes.pendingCount,
        'firewall.conntrack.count': conntrack.count(conntrackNow()),
        'firewall.rules.version': this.firewall.version,
        routines: this.capacities.routines,
      }),
    };
  }

  get insideName(): string {
    return this.inside?.name ?? '';
  }
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}


