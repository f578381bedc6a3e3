/**
 * The supervisor (DESIGN.md), as a composition root: it builds one part per concern, wires their callbacks to each
 * other, and starts, stops and reloads them in order. The parts hold the state; this only holds the parts. A new
 * concern (lighthouse, punchy, relays) is one more part built in `assemble` and wired to the ones it talks to.
 * Everything long-lived is created before any routine is forked and kept for the supervisor's whole life.
 */
import { sectionChanged, type NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { formatCidr, formatIPv4 } from '../shared/util/ipv4';
import { assemble, type Running } from './assemble';
import { SupervisorCounters } from './counters';
import { DnsService } from './dns-service';
import { warmUpHandshakes } from './handshake-warm-up';
import { LiveConfig } from './live-config';
import type { MetricsSource } from './metrics';
import { reloadConfig, type ReloadResult } from './reload';
import { StaticHosts } from './static-hosts';
import { metricsSource, nodeStatus, type NodeStatus, type ReportedParts } from './status';

export class SupervisorNode {
  private readonly live: LiveConfig;
  private readonly counters = new SupervisorCounters();
  private running?: Running;
  private dns?: DnsService;
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
    const running = assemble(cfg, { live: this.live, log: this.log, counters: this.counters, staticHosts });
    this.running = running;
    // Routines first: each reports ready once its data-path worker polls the queue and the socket. Only then does
    // the inside get its address, so nothing is routed to the tun (a ping right after start) before a routine
    // serves it; Go's readers also run as soon as its device is configured.
    const routinesReady = running.routines.start();
    // While they start: our first handshake (the first packet to a peer waits for it) should not run cold code.
    const warmUpError = warmUpHandshakes(cfg.cipher, this.live.pki);
    if (warmUpError !== undefined) this.log.warn('Handshake warm-up failed', { error: warmUpError });
    await routinesReady;
    await running.inside.activate();
    running.connections.start();
    running.rekeyer.start();
    running.lighthouse.start();
    running.punchy?.start();
    running.directPaths.start();
    running.requery.start();
    if (running.dnsRecords) {
      this.dns = new DnsService({ log: this.log, records: running.dnsRecords, vpnIp: this.live.vpnIp, vpnMask: this.live.vpnMask, config: () => this.live.config });
      await this.dns.start();
    }
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

  /** SIGHUP / nebula-ctl reload: validate the whole file first; a bad file changes nothing. */
  reload(): ReloadResult {
    return reloadConfig({
      live: this.live,
      log: this.log,
      resetConntrack: () => this.running?.region.resetConntrack(),
      broadcastFirewall: (firewall) => this.running?.routines.broadcast({ type: 'firewall', firewall }),
      broadcast: (msg) => this.running?.routines.broadcast(msg),
      applySocketBuffers: (listen) => void this.running?.underlay.applyBuffers(listen, this.log),
      // After a reload, peers no longer valid under the CA pool in force go at once (whatever pki.disconnect_invalid
      // says: that option governs the periodic check); a new cert or key re-handshakes every tunnel (re-key path).
      disconnectInvalidPeers: () => (this.running ? this.running.tunnels.closeInvalid(this.log, () => this.live.caPool) : 0),
      rehandshakeAll: () => this.running?.rekeyer.rekeyAll() ?? 0,
      adopted: (previous, next) => this.adopted(previous, next),
    });
  }

  /** After a reload: the lighthouse's update timer, the DNS responder's address, new static hosts. */
  private adopted(previous: NebulaConfig, next: NebulaConfig): void {
    const running = this.running;
    if (!running) return;
    running.lighthouse.reloaded();
    void this.dns?.reloaded();
    if (sectionChanged(previous, next, 'static_host_map')) {
      // Names are resolved again (Go resolves the whole map at each reload); new static hosts are handshaked.
      void StaticHosts.resolve(next.static_host_map, this.log).then((hosts) => {
        if (this.stopped) return;
        running.lighthouse.setStaticHosts(hosts);
        for (const ip of hosts.vpnIps()) if (!(formatIPv4(ip) in previous.static_host_map)) running.handshakes.start(ip);
      });
    }
  }

  /** Closes every tunnel (telling the peers), stops the routines, then releases the inside and the sockets. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running = this.running;
    if (!running) return;
    running.connections.stop();
    running.rekeyer.stop();
    running.lighthouse.stop();
    running.punchy?.stop();
    running.directPaths.stop();
    running.requery.stop();
    await this.dns?.stop();
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

  /** The running parts status, /metrics and the console commands (console.ts) read; throws before start. */
  reportedParts(): ReportedParts {
    const running = this.running;
    if (!running) throw new Error('the node is not started');
    const { region, hostmap, handshakes, tunnels, routines, inside, underlay, lighthouse, relays } = running;
    return {
      live: this.live,
      log: this.log,
      counters: this.counters,
      region,
      hostmap,
      handshakes,
      tunnels,
      routines,
      lighthouse,
      relays,
      insideName: inside.name,
      listenPort: underlay.listenPort,
      udpFd: (i) => underlay.fd(i),
    };
  }
}
