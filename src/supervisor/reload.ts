/**
 * Reload (SIGHUP, `nebula-ctl reload`): the whole file is read and validated, and a changed PKI loaded, before
 * anything is replaced, so a bad file changes nothing. Then the new config is adopted and a changed firewall is
 * handed to the routines under the next rules version (DESIGN.md, "Config and reload").
 */
import { loadConfig, logConfigWarnings, sectionChanged, diffRequiresRestart, type NebulaConfig } from '../shared/config';
import { bumpRulesVersion } from '../shared/firewall';
import type { HostPki } from '../shared/pki';
import type { FirewallUpdate } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import type { LiveConfig } from './live-config';

export interface ReloadResult {
  ok: boolean;
  error?: string;
  changed: string[];
}

export interface ReloadEnv {
  live: LiveConfig;
  log: Logger;
  /** Empties the conntrack table (its entries carry a rules version that is about to mean something else). */
  resetConntrack(): void;
  /** Hands a new rule set to every running routine. */
  broadcastFirewall(firewall: FirewallUpdate): void;
}

export function reloadConfig(env: ReloadEnv): ReloadResult {
  const { live, log } = env;
  const current = live.config;
  let next: NebulaConfig;
  try {
    const loaded = loadConfig(live.configPath);
    next = loaded.config;
    logConfigWarnings(log, loaded.warnings, 'reload');
  } catch (err) {
    return failed(log, err);
  }
  const changed: string[] = [];
  let pki: HostPki = live.pki;
  if (sectionChanged(current, next, 'pki')) {
    try {
      pki = live.loadPki(next);
      if (pki.cert.details.ips[0]?.ip !== live.vpnIp) throw new Error('pki.cert: the new certificate changes the VPN IP; restart to apply it');
    } catch (err) {
      return failed(log, err);
    }
    changed.push('pki');
  }
  const restart = diffRequiresRestart(current, next);
  if (restart.length > 0) log.warn('Some changed keys need a restart to take effect', { keys: restart });
  live.adopt(next, pki);
  if (sectionChanged(current, next, 'logging')) changed.push('logging');
  if (sectionChanged(current, next, 'lighthouse.remote_allow_list') || sectionChanged(current, next, 'lighthouse.remote_allow_ranges')) {
    // Read from the live config at every handshake and roam (allow-list.ts): nothing else to do.
    log.info('lighthouse.remote_allow_list and/or lighthouse.remote_allow_ranges has changed');
    changed.push('lighthouse.remote_allow_list');
  }
  if (sectionChanged(current, next, 'firewall')) {
    const version = bumpRulesVersion(live.firewall.version);
    const oldHash = live.firewallHash;
    live.replaceFirewall(version);
    if (version === 0) {
      // Entries stamped 0 a full wrap ago would otherwise pass as current without re-verification.
      log.warn('firewall rulesVersion has overflowed, resetting conntrack');
      env.resetConntrack();
    }
    env.broadcastFirewall(live.firewall);
    log.info('New firewall has been installed', { firewallHash: live.firewallHash, oldFirewallHash: oldHash, rulesVersion: version });
    changed.push('firewall');
  }
  return { ok: true, changed };
}

function failed(log: Logger, err: unknown): ReloadResult {
  const error = err instanceof Error ? err.message : String(err);
  log.error('Failed to reload config, keeping the running config', { error });
  return { ok: false, error, changed: [] };
}
