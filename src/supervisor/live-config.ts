/**
 * The configuration the node is running with: the validated config, the PKI loaded from it, and the firewall rule
 * set the routines enforce. Everything else reads them through the getters here at the moment it needs them, so
 * that a reload (reload.ts), which replaces them, reaches new tunnels, respawned routines and reports alike.
 */
import { ConfigError, loadConfig, logConfigWarnings, vpnNetworkIssues, type NebulaConfig } from '../shared/config';
import { describeRules } from '../shared/firewall';
import { loadCABundle, loadHostCertAndKey, type CAPool, type HostPki } from '../shared/pki';
import type { FirewallUpdate } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import { formatPrefix, isV6 } from '../shared/pki/v2/prefix';
import type { CertState } from '../shared/pki/cert-state';

/** Our IPv6 VPN networks ('fd00::1/64': host bits = our address), from our v2 certificate (a v1 one has none). */
export function vpnNetworks6Of(cert: CertState): string[] {
  return (cert.v2?.networks ?? []).filter(isV6).map(formatPrefix);
}

export class LiveConfig {
  private cfg: NebulaConfig;
  private hostPki: HostPki;
  private rules: FirewallUpdate;
  private rulesHash: string;
  /** From the certificate's first network; a new certificate may not change them (reload refuses it). */
  readonly vpnIp: number;
  readonly vpnMask: number;
  /** Our IPv6 VPN networks (vpnNetworks6Of); fixed like the VPN IP, since the tun device carries them. */
  readonly vpnNetworks6: readonly string[];

  /** Reads and validates `configPath` and loads the PKI; throws on an invalid file. */
  constructor(
    readonly configPath: string,
    private readonly log: Logger,
  ) {
    const loaded = loadConfig(configPath);
    this.cfg = loaded.config;
    this.applyLogging();
    logConfigWarnings(log, loaded.warnings);
    this.hostPki = this.loadPki(this.cfg);
    const first = this.hostPki.cert.details.ips[0]!;
    this.vpnIp = first.ip >>> 0;
    this.vpnMask = first.mask >>> 0;
    this.vpnNetworks6 = vpnNetworks6Of(this.hostPki.cert);
    const issues = vpnNetworkIssues(this.cfg, { ip: this.vpnIp, mask: this.vpnMask }, this.vpnNetworks6);
    if (issues.length > 0) throw new ConfigError(issues);
    this.rules = firewallUpdate(this.cfg, 0);
    this.rulesHash = describeRules(this.cfg.firewall.outbound, this.cfg.firewall.inbound).hash;
  }

  get config(): NebulaConfig {
    return this.cfg;
  }

  get pki(): HostPki {
    return this.hostPki;
  }

  get caPool(): CAPool {
    return this.hostPki.caPool;
  }

  get firewall(): FirewallUpdate {
    return this.rules;
  }

  get firewallHash(): string {
    return this.rulesHash;
  }

  /** Loads the PKI `cfg` names, with its blocklist applied; warns of expired CAs in the pool. Throws on bad files. */
  loadPki(cfg: NebulaConfig): HostPki {
    const ca = this.loadCA(cfg);
    return { ...ca, ...loadHostCertAndKey({ cert: cfg.pki.cert, key: cfg.pki.key, initiatingVersion: cfg.pki.initiating_version }) };
  }

  /** Loads only the CA bundle `cfg` names (with its blocklist); warns of expired CAs in it. Throws on a bad file. */
  loadCA(cfg: NebulaConfig): Pick<HostPki, 'caPool' | 'expiredCAs'> {
    const ca = loadCABundle(cfg.pki.ca, cfg.pki.blocklist);
    for (const c of ca.expiredCAs) this.log.warn('expired certificate present in CA pool', { name: c.details.name, fingerprint: c.fingerprint() });
    return ca;
  }

  /** Switches to a config (and the PKI already loaded from it) and applies its logging settings. */
  adopt(next: NebulaConfig, pki: HostPki): void {
    this.cfg = next;
    this.hostPki = pki;
    this.applyLogging();
  }

  /** Rebuilds the rule set from the current config under `version`. */
  replaceFirewall(version: number): void {
    this.rules = firewallUpdate(this.cfg, version);
    this.rulesHash = describeRules(this.cfg.firewall.outbound, this.cfg.firewall.inbound).hash;
  }

  private applyLogging(): void {
    const { level, format, disable_timestamp } = this.cfg.logging;
    this.log.configure({ level, format, disableTimestamp: disable_timestamp });
  }
}

function firewallUpdate(cfg: NebulaConfig, version: number): FirewallUpdate {
  const fw = cfg.firewall;
  return {
    version,
    inbound: fw.inbound.map((r) => ({ ...r, groups: [...r.groups] })),
    outbound: fw.outbound.map((r) => ({ ...r, groups: [...r.groups] })),
    tcpTimeout: fw.conntrack.tcp_timeout,
    udpTimeout: fw.conntrack.udp_timeout,
    defaultTimeout: fw.conntrack.default_timeout,
    defaultLocalCidrAny: fw.default_local_cidr_any,
    inboundAction: fw.inbound_action,
    outboundAction: fw.outbound_action,
  };
}
