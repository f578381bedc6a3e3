/**
 * Reload (SIGHUP, `nebula-ctl reload`): the whole file is read and validated, and the PKI files re-read (every time:
 * the usual rotation overwrites ca.crt / host.crt in place), before anything is replaced, so a bad file changes
 * nothing. Then the new config is adopted and a changed firewall is handed to the routines under the next rules
 * version (DESIGN.md, "Config and reload").
 *
 * The CA bundle is applied on its own: when it loads but the host cert or key does not (unreadable, expired, not
 * matching, not signed by the new pool, or another VPN IP, which needs a restart), the running cert and key are kept,
 * the new CA pool is applied and the cert error is reported. After a reload, peers whose certificates no longer
 * verify against the pool in force (CA removed, blocklisted, expired) are disconnected at once, and a new host cert or
 * key makes every tunnel re-handshake with it (the re-key path: the new tunnel replaces the old one, no traffic lost).
 *
 * Every key is either applied or named in a warning (config/diff.ts classifies them as Go 1.6.1 does): keys only read
 * at start keep their running value until a restart; listen.send_recv_error goes to the routines, the socket buffers
 * are set on every socket, and the rest is read from the live config where it is used.
 */
import {
  ConfigError,
  loadConfig,
  logConfigWarnings,
  vpnNetworkIssues,
  sectionChanged,
  diffRequiresRestart,
  keepRestartKeys,
  reloadedKeys,
  type NebulaConfig,
} from '../shared/config';
import { bumpRulesVersion, type FirewallAction } from '../shared/firewall';
import { loadHostCertAndKey, type CAPool, type CertState, type HostPki } from '../shared/pki';
import type { FirewallUpdate, SupervisorToRoutine } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import { formatIPv4 } from '../shared/util/ipv4';
import { vpnNetworks6Of, type LiveConfig } from './live-config';

export interface ReloadResult {
  ok: boolean;
  /** Why the reload was refused (the running config is kept), naming the key path. */
  error?: string;
  /** What changed: the reloadable keys applied (`pki`, `firewall`, or the key path), then the restart keys. */
  changed: string[];
  /** Applied, but with a part kept as it was (a bad host cert with a good CA bundle): one message each. */
  errors?: string[];
  firewall?: {
    oldHash: string;
    hash: string;
    rulesVersion: number;
    /** firewall.inbound_action / outbound_action, old and new (they are not part of the rules hash). */
    inboundAction: { old: FirewallAction; new: FirewallAction };
    outboundAction: { old: FirewallAction; new: FirewallAction };
  };
  pki?: { ca: boolean; cert: boolean };
  /** Tunnels that were re-handshaked with the new certificate. */
  rehandshaked?: number;
  /** Peers disconnected because their certificate is no longer valid. */
  disconnected?: number;
  /** Changed keys that need a restart to take effect. */
  restartNeeded?: string[];
  /** One line for humans (nebula-ctl prints it; SIGHUP logs it). */
  summary?: string;
}

export interface ReloadEnv {
  live: LiveConfig;
  log: Logger;
  /** Empties the conntrack table (its entries carry a rules version that is about to mean something else). */
  resetConntrack(): void;
  /** Hands a new rule set to every running routine. */
  broadcastFirewall(firewall: FirewallUpdate): void;
  /** Hands a message to every running routine (a changed listen.send_recv_error). */
  broadcast?(msg: SupervisorToRoutine): void;
  /** Sets listen.read_buffer / write_buffer (when above 0) on every underlay socket: Go does at every reload. */
  applySocketBuffers?(listen: NebulaConfig['listen']): void;
  /** Closes (closeTunnel sent) every tunnel whose peer cert does not verify against the pool in force; the count. */
  disconnectInvalidPeers?(): number;
  /** Starts a fresh handshake (with the cert in force) for every tunnel; the count. */
  rehandshakeAll?(): number;
  /** The new config is in force: parts that keep state derived from it (lighthouse timers, DNS, static hosts) follow. */
  adopted?(previous: NebulaConfig, next: NebulaConfig): void;
}

/** Reloadable keys with a log line of their own below; every other one is announced as `<key> has changed`. */
const REPORTED_IN_DETAIL = new Set(['pki', 'firewall', 'lighthouse.remote_allow_list', 'listen.send_recv_error']);

export function reloadConfig(env: ReloadEnv): ReloadResult {
  const { live, log } = env;
  const current = live.config;
  let next: NebulaConfig;
  try {
    const loaded = loadConfig(live.configPath);
    next = loaded.config;
    const issues = vpnNetworkIssues(next, { ip: live.vpnIp, mask: live.vpnMask }, live.vpnNetworks6);
    if (issues.length > 0) throw new ConfigError(issues);
    logConfigWarnings(log, loaded.warnings, 'reload');
  } catch (err) {
    return failed(log, err);
  }
  const errors: string[] = [];
  // The CA bundle first: a bad one refuses the whole reload; a bad host cert only keeps the running cert.
  let ca: Pick<HostPki, 'caPool' | 'expiredCAs'>;
  try {
    ca = live.loadCA(next);
  } catch (err) {
    return failed(log, err);
  }
  const running = live.pki;
  let own: Pick<HostPki, 'cert' | 'privateKey'> = running;
  try {
    const loaded = loadHostCertAndKey({ cert: next.pki.cert, key: next.pki.key, initiatingVersion: next.pki.initiating_version });
    const ip = loaded.cert.details.ips[0]!.ip >>> 0;
    if (ip !== live.vpnIp) {
      throw new Error(`pki.cert: the new certificate changes the VPN IP (${formatIPv4(live.vpnIp)} to ${formatIPv4(ip)}); restart to apply it`);
    }
    const networks6 = vpnNetworks6Of(loaded.cert).join(', ');
    if (networks6 !== live.vpnNetworks6.join(', ')) {
      throw new Error(`pki.cert: the new certificate changes the IPv6 VPN networks ([${live.vpnNetworks6.join(', ')}] to [${networks6}]); restart to apply them`);
    }
    try {
      ca.caPool.verify(loaded.cert);
    } catch (err) {
      throw new Error(`pki.cert: the new certificate does not verify against pki.ca: ${messageOf(err)}`);
    }
    own = loaded;
  } catch (err) {
    const error = messageOf(err);
    errors.push(error);
    log.error('Failed to reload the host certificate, keeping the running certificate and key', { error });
  }
  const caChanged = poolKey(ca.caPool) !== poolKey(running.caPool);
  const certChanged = certKey(own.cert) !== certKey(running.cert) || !own.privateKey.equals(running.privateKey);
  const pki: HostPki = caChanged || certChanged ? { caPool: ca.caPool, expiredCAs: ca.expiredCAs, cert: own.cert, privateKey: own.privateKey } : running;

  // Keys only read at start keep their running value (named in a warning) until the restart.
  const restart = diffRequiresRestart(current, next);
  if (restart.length > 0) log.warn('Some changed keys need a restart to take effect', { keys: restart });
  next = keepRestartKeys(current, next);
  const applied = reloadedKeys(current, next);
  if ((caChanged || certChanged) && !applied.includes('pki')) applied.unshift('pki');
  const changed = [...applied, ...restart.filter((k) => !applied.includes(k))];
  live.adopt(next, pki);
  if (applied.includes('lighthouse.remote_allow_list')) {
    // Read from the live config at every handshake and roam (allow-list.ts): nothing else to do.
    log.info('lighthouse.remote_allow_list and/or lighthouse.remote_allow_ranges has changed');
  }
  if (applied.includes('listen.send_recv_error')) {
    env.broadcast?.({ type: 'sendRecvError', sendRecvError: next.listen.send_recv_error });
    log.info('Loaded send_recv_error config', { sendRecvError: next.listen.send_recv_error });
  }
  // The rest is read from the live config at each use (lighthouse, punchy, relays, DNS, static hosts: `adopted`).
  for (const key of applied) if (!REPORTED_IN_DETAIL.has(key)) log.info(`${key} has changed`);
  env.applySocketBuffers?.(next.listen);
  env.adopted?.(current, next);
  const result: ReloadResult = { ok: true, changed, pki: { ca: caChanged, cert: certChanged } };
  if (sectionChanged(current, next, 'firewall')) {
    const version = bumpRulesVersion(live.firewall.version);
    const oldHash = live.firewallHash;
    const oldActions = { inbound: live.firewall.inboundAction ?? 'drop', outbound: live.firewall.outboundAction ?? 'drop' };
    live.replaceFirewall(version);
    if (version === 0) {
      // Entries stamped 0 a full wrap ago would otherwise pass as current without re-verification.
      log.warn('firewall rulesVersion has overflowed, resetting conntrack');
      env.resetConntrack();
    }
    env.broadcastFirewall(live.firewall);
    const inboundAction = { old: oldActions.inbound, new: next.firewall.inbound_action };
    const outboundAction = { old: oldActions.outbound, new: next.firewall.outbound_action };
    log.info('New firewall has been installed', {
      firewallHash: live.firewallHash,
      oldFirewallHash: oldHash,
      rulesVersion: version,
      inboundAction: inboundAction.new,
      outboundAction: outboundAction.new,
    });
    result.firewall = { oldHash, hash: live.firewallHash, rulesVersion: version, inboundAction, outboundAction };
  }
  if (caChanged) log.info('Trusted CA pool has been reloaded', { cas: [...ca.caPool.cas.values()].map((c) => c.details.name), blocklist: ca.caPool.blocklist.size });
  if (certChanged) log.info('Client cert refreshed from disk', { cert: own.cert.details.name, fingerprint: own.cert.fingerprint(), groups: own.cert.details.groups });
  // Peers are checked against the pool in force at every reload (a cert may also have expired since it was taken).
  result.disconnected = env.disconnectInvalidPeers?.() ?? 0;
  if (certChanged) {
    result.rehandshaked = env.rehandshakeAll?.() ?? 0;
    log.info('Re-handshaking tunnels with the new certificate', { tunnels: result.rehandshaked, fingerprint: own.cert.fingerprint() });
  } else {
    result.rehandshaked = 0;
  }
  if (restart.length > 0) result.restartNeeded = restart;
  if (errors.length > 0) result.errors = errors;
  result.summary = summarize(result);
  log.info('Config reloaded', { summary: result.summary, changed, ...(errors.length > 0 ? { errors } : {}) });
  return result;
}

/** One line: what changed, the firewall hashes, the PKI parts, tunnels re-handshaked and peers disconnected. */
export function summarize(r: ReloadResult): string {
  const parts: string[] = [r.changed.length > 0 ? `${r.changed.join(', ')} changed` : 'nothing changed'];
  if (r.firewall) {
    const f = r.firewall;
    let actions = '';
    if (f.inboundAction.old !== f.inboundAction.new) actions += `, inbound_action ${f.inboundAction.old} -> ${f.inboundAction.new}`;
    if (f.outboundAction.old !== f.outboundAction.new) actions += `, outbound_action ${f.outboundAction.old} -> ${f.outboundAction.new}`;
    parts.push(`firewall ${f.oldHash} -> ${f.hash} (rules version ${f.rulesVersion}${actions})`);
  }
  if (r.pki && (r.pki.ca || r.pki.cert)) parts.push(`pki: ${[r.pki.ca ? 'ca reloaded' : '', r.pki.cert ? 'cert reloaded' : ''].filter(Boolean).join(', ')}`);
  if (r.errors?.length) parts.push(`kept the running cert: ${r.errors.join('; ')}`);
  if (r.rehandshaked) parts.push(`${r.rehandshaked} tunnel${r.rehandshaked === 1 ? '' : 's'} re-handshaked`);
  if (r.disconnected) parts.push(`${r.disconnected} peer${r.disconnected === 1 ? '' : 's'} disconnected`);
  if (r.restartNeeded?.length) parts.push(`restart needed for ${r.restartNeeded.join(', ')}`);
  return parts.join('; ');
}

/** Every certificate the node holds (v1 and v2) and which one it initiates with: a change to any is a new cert. */
function certKey(c: CertState): string {
  return [c.v1?.fingerprint() ?? '', c.v2?.fingerprint() ?? '', c.initiatingVersion].join('/');
}

/** What a pool trusts: its CAs and its blocklist. */
function poolKey(pool: CAPool): string {
  return JSON.stringify([[...pool.cas.keys()].sort(), [...pool.blocklist].sort()]);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function failed(log: Logger, err: unknown): ReloadResult {
  const error = messageOf(err);
  log.error('Failed to reload config, keeping the running config', { error });
  return { ok: false, error, changed: [] };
}
