/**
 * The supervisor (DESIGN.md), as a composition root: it builds one part per concern, wires their callbacks to each
 * other, and starts, stops and reloads them in order. The parts hold the state; this only holds the parts. A new
 * concern (lighthouse, punchy, relays) is one more part built in `assemble` and wired to the ones it talks to.
 * Everything long-lived is created before any routine is forked and kept for the supervisor's whole life.
 */
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { formatCidr } from '../shared/util/ipv4';
import { ConnectionManager } from './connection-manager';
import { SupervisorCounters } from './counters';
import { HandshakeManager } from './handshake-manager';
import { disconnectIfInvalid } from './invalid-certs';
import { remoteAllowListOf, type RemoteAllowList } from '../shared/allow-list';
import { HostMap, type HostInfo } from './hostmap';
import type { Inside } from './inside/inside';
import { selectInside } from './inside/select';
import { LiveConfig } from './live-config';
import { MetaDispatch } from './meta-dispatch';
import type { MetricsSource } from './metrics';
import { Rekeyer } from './rekey';
import { reloadConfig, type ReloadResult } from './reload';
import { routineSetup } from './routine-setup';
import { RoutinePool } from './routines';
import { SharedRegion } from './shared-region';
import { StaticHosts } from './static-hosts';
import { metricsSource, nodeStatus, type NodeStatus, type ReportedParts } from './status';
import { Tunnels } from './tunnels';
import { Underlay } from './underlay';

/** What start() builds, in the order it builds it. */
interface Running {
  region: SharedRegion;
  hostmap: HostMap;
  inside: Inside;
  underlay: Underlay;
  tunnels: Tunnels;
  handshakes: HandshakeManager;
  connections: ConnectionManager;
  rekeyer: Rekeyer;
  routines: RoutinePool;
}

export class SupervisorNode {
  private readonly live: LiveConfig;
  private readonly counters = new SupervisorCounters();
  private running?: Running;
  private stopped = false;

  /** Loads and validates the config and the PKI; throws when either is bad. */
  constructor(
    configPath: string,
    private readonly log: Logger,
  ) {
    this.live = new LiveConfig(configPath, log);
  }

  controlSocketPath(): string {
    return this.live.config.control.socket;
  }

  statsConfig(): NebulaConfig['stats'] {
    return this.live.config.stats;
  }

  async start(): Promise<void> {
    const cfg = this.live.config;
    const staticHosts = await StaticHosts.resolve(cfg.static_host_map, this.log);
    const running = this.assemble(cfg, staticHosts);
    this.running = running;
    await running.inside.activate();
    await running.routines.start();
    running.connections.start();
    running.rekeyer.start();
    this.log.info('Nebula interface is active', {
      interface: running.inside.name,
      network: formatCidr({ ip: this.live.vpnIp, mask: this.live.vpnMask }),
      build: 'nebula-ts',
      udpAddr: `${cfg.listen.host}:${running.underlay.listenPort}`,
      routines: cfg.routines,
      cipher: cfg.cipher,
      firewallHash: this.live.firewallHash,
    });
    // Static hosts are handshaked at once (nebula-spec §5.5): a lighthouse-less mesh comes up by itself.
    for (const ip of staticHosts.vpnIps()) running.handshakes.start(ip);
  }

  /** Creates the region, the inside and the sockets, and wires every part; nothing runs yet. */
  private assemble(cfg: NebulaConfig, staticHosts: StaticHosts): Running {
    const { live, log, counters } = this;
    const region = new SharedRegion(cfg, counters);
    // Read at each use: a reload that changes lighthouse.remote_allow_list / remote_allow_ranges applies at once.
    const remoteAllowList = (): RemoteAllowList => remoteAllowListOf(live.config.lighthouse);
    const hostmap = new HostMap(region.slots, region.capacities.tunnels);
    const inside = selectInside(cfg, live.vpnIp, live.vpnMask, log);
    let underlay: Underlay;
    try {
      underlay = new Underlay(cfg.listen, cfg.routines);
    } catch (err) {
      inside.close();
      throw err;
    }
    const tunnels = new Tunnels({
      log,
      counters,
      hostmap,
      slots: region.slots,
      outbox: underlay.outbox,
      live,
      broadcast: (msg) => routines.broadcast(msg),
      remoteAllowList,
    });
    const handshakes = new HandshakeManager({
      log,
      cipher: cfg.cipher,
      pki: () => live.pki,
      vpnIp: live.vpnIp,
      hostmap,
      tryIntervalMs: cfg.handshakes.try_interval,
      retries: cfg.handshakes.retries,
      counters,
      // As Go drops static_host_map addresses the remote allow list denies (lighthouse.addStaticRemote).
      addressesFor: (ip) => staticHosts.addressesFor(ip).filter((a) => remoteAllowList().allow(ip, a.ip)),
      sendUdp: (buf, to) => underlay.send(buf, buf.length, to),
      install: (h) => tunnels.install(h),
      sendTest: (h) => tunnels.sendTest(h),
      remoteAllowList,
    });
    // pki.disconnect_invalid is read at start (as in Go); the CA pool and blocklist at every check.
    const invalidCerts = { enabled: cfg.pki.disconnect_invalid, log, caPool: () => live.caPool, close: (h: HostInfo) => tunnels.teardown(h, true) };
    const connections = new ConnectionManager({
      hostmap,
      aliveIntervalMs: cfg.timers.connection_alive_interval,
      pendingDeletionMs: cfg.timers.pending_deletion_interval,
      sendTest: (h) => tunnels.sendTest(h),
      dead: (h) => tunnels.dead(h),
      closedInvalid: (h, now) => disconnectIfInvalid(invalidCerts, h, now),
    });
    const dispatch = new MetaDispatch({ log, hostmap, handshakes, tunnels });
    const routines = new RoutinePool({
      count: cfg.routines,
      capacities: region.capacities,
      fds: (i) => ({ udp: underlay.fd(i), inside: inside.queueFd(i), region: region.fd }),
      setup: (i) => routineSetup(i, { live, insideKind: inside.kind, tunnels: () => [...hostmap.hosts()].map((h) => tunnels.tunnelInstall(h)) }),
      onMessage: (m) => dispatch.onRoutineMessage(m),
      onDied: (i) => region.releaseRoutine(i),
      log,
    });
    const rekeyer = new Rekeyer({ log, hostmap, handshakes });
    return { region, hostmap, inside, underlay, tunnels, handshakes, connections, rekeyer, routines };
  }

  /** SIGHUP / nebula-ctl reload: validate the whole file first; a bad file changes nothing. */
  reload(): ReloadResult {
    return reloadConfig({
      live: this.live,
      log: this.log,
      resetConntrack: () => this.running?.region.resetConntrack(),
      broadcastFirewall: (firewall) => this.running?.routines.broadcast({ type: 'firewall', firewall }),
      // After a reload, peers no longer valid under the CA pool in force go at once (whatever pki.disconnect_invalid
      // says: that option governs the periodic check); a new cert or key re-handshakes every tunnel (re-key path).
      disconnectInvalidPeers: () => (this.running ? this.running.tunnels.closeInvalid(this.log, () => this.live.caPool) : 0),
      rehandshakeAll: () => this.running?.rekeyer.rekeyAll() ?? 0,
    });
  }

  /** Closes every tunnel (telling the peers), stops the routines, then releases the inside and the sockets. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running = this.running;
    if (!running) return;
    running.connections.stop();
    running.rekeyer.stop();
    running.handshakes.stop();
    running.tunnels.closeAll();
    await running.routines.stop();
    running.inside.close();
    running.underlay.close();
  }

  /** The `nebula-ctl status` answer. */
  status(): NodeStatus {
    return nodeStatus(this.reportedParts());
  }

  /** What the Prometheus endpoint reads at scrape time. */
  metricsSource(): MetricsSource {
    return metricsSource(this.reportedParts());
  }

  private reportedParts(): ReportedParts {
    const running = this.running;
    if (!running) throw new Error('the node is not started');
    const { region, hostmap, handshakes, routines, inside, underlay } = running;
    return { live: this.live, counters: this.counters, region, hostmap, handshakes, routines, insideName: inside.name, listenPort: underlay.listenPort, udpFd: (i) => underlay.fd(i) };
  }
}
