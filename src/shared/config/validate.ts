/**
 * validateConfig: schema check, then the rules that involve several keys, then the typed, frozen NebulaConfig.
 * Problems are collected (not thrown one by one) so a user fixes a whole file in one go.
 */
import { parseIPv4 } from '../util/ipv4';
import { defaultControlSocketPath } from '../control-path';
import { formatPath, ConfigError, type ConfigIssue } from './errors';
import { toHostPort, Bad } from './fields';
import { configSchema, type ParsedConfig } from './schema';
import type { NebulaConfig, NebulaConfigShape } from './types';
import { findUnknownKeys } from './unknown';
import { unsupportedKeys } from './unsupported';
import type { ConfigWarning } from './warnings';

export interface ValidatedConfig {
  config: NebulaConfig;
  warnings: ConfigWarning[];
}

const DEFAULT_STATS_INTERVAL_MS = 10_000;

/** nebula-spec §8.1: `routines` wins when non-zero; otherwise the max of the deprecated keys, with a WARN. */
export function resolveRoutines(
  routines: number | undefined,
  tunRoutines: number | undefined,
  listenRoutines: number | undefined,
  warnings: ConfigWarning[],
): number {
  if (routines !== undefined && routines !== 0) {
    const n = routines < 1 ? 1 : routines;
    if (n > 1) warnings.push({ level: 'info', msg: 'Using multiple routines', fields: { routines: n }, startupOnly: true });
    return n;
  }
  const n = Math.max(tunRoutines ?? 1, listenRoutines ?? 1);
  if (n !== 1) {
    warnings.push({
      level: 'warning',
      msg: 'Setting tun.routines and listen.routines is deprecated. Use `routines` instead',
      fields: { routines: n },
      startupOnly: true,
    });
  }
  return Math.max(1, n);
}

function crossChecks(p: ParsedConfig, issues: ConfigIssue[], warnings: ConfigWarning[]): void {
  const lh = p.lighthouse;
  lh.hosts.forEach((ip, i) => {
    if (!(ip in p.static_host_map)) issues.push({ path: `lighthouse.hosts[${i}]`, message: `${ip} has no static_host_map entry` });
  });
  if (lh.am_lighthouse && lh.hosts.length > 0) {
    warnings.push({ level: 'warning', msg: 'lighthouse.am_lighthouse enabled on node but upstream lighthouses exist in config', fields: {} });
  }
  if (!lh.am_lighthouse && lh.hosts.length === 0) {
    warnings.push({
      level: 'warning',
      msg: 'No lighthouse.hosts configured, this host will only be able to initiate tunnels with static_host_map entries',
      fields: {},
    });
  }
  lh.advertise_addrs.forEach((a, i) => {
    // Go parses an IP literal here (no names); nebula-ts listens on IPv4 only, so an IPv6 one would mislead peers.
    if (parseIPv4(a.slice(0, a.lastIndexOf(':'))) === undefined) {
      issues.push({ path: `lighthouse.advertise_addrs[${i}]`, message: `${a} is not an IPv4 address and port (nebula-ts listens on IPv4 only)` });
    }
  });
  if (lh.am_lighthouse && p.listen.port === 0) {
    issues.push({ path: 'listen.port', message: 'lighthouse.am_lighthouse enabled on node but no port number is set in config' });
  }
  if (lh.serve_dns && !lh.am_lighthouse) {
    warnings.push({ level: 'warning', msg: 'DNS server refusing to run because this host is not a lighthouse.', fields: {} });
  }

  const st = p.stats;
  if (st.type !== 'none') {
    const need = (key: 'interval' | 'host' | 'listen' | 'path') => {
      const v = st[key];
      if (v === undefined || v === '') issues.push({ path: `stats.${key}`, message: `required when stats.type is ${st.type}` });
    };
    need('interval');
    if (st.type === 'graphite') {
      need('host');
      if (st.protocol !== 'tcp' && st.protocol !== 'udp') issues.push({ path: 'stats.protocol', message: 'must be one of tcp, udp' });
    } else {
      need('listen');
      need('path');
      if (st.listen !== '' && toHostPort(st.listen, 0) instanceof Bad) {
        issues.push({ path: 'stats.listen', message: `${JSON.stringify(st.listen)} is not a host:port address` });
      }
    }
  }

  const ssh = p.sshd;
  if (ssh.enabled) {
    if (ssh.listen === '') issues.push({ path: 'sshd.listen', message: 'required when sshd.enabled is true' });
    else {
      const hp = toHostPort(ssh.listen, 1);
      if (hp instanceof Bad) issues.push({ path: 'sshd.listen', message: hp.message });
      else if (/:22$/.test(hp)) issues.push({ path: 'sshd.listen', message: 'can not use port 22' });
    }
    if (ssh.host_key === '') issues.push({ path: 'sshd.host_key', message: 'required when sshd.enabled is true' });
  }
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const child of Object.values(v as Record<string, unknown>)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

function build(p: ParsedConfig, warnings: ConfigWarning[]): NebulaConfigShape {
  const routines = resolveRoutines(p.routines, p.tun.routines, p.listen.routines, warnings);

  let blocklist = p.pki.blocklist;
  if (blocklist.length === 0 && p.pki.blacklist.length > 0) {
    blocklist = p.pki.blacklist;
    warnings.push({
      level: 'warning',
      msg: 'pki.blacklist is deprecated and will not be supported in a future release. Please migrate your config to use pki.blocklist',
      fields: {},
    });
  }

  const preferred = [...p.preferred_ranges];
  if (p.local_range !== undefined && !preferred.includes(p.local_range)) preferred.push(p.local_range);

  const { routines: _tr, ...tun } = p.tun;
  const { routines: _lr, ...listen } = p.listen;

  const ruleList = (rules: typeof p.firewall.inbound, table: 'inbound' | 'outbound') =>
    rules.map((r, i) => {
      for (const w of r.warnings) {
        warnings.push({ level: 'warning', msg: w.message, fields: { key: formatPath(['firewall', table, i, ...w.path]) } });
      }
      return r.rule;
    });

  return {
    pki: { ca: p.pki.ca, cert: p.pki.cert, key: p.pki.key, blocklist, disconnect_invalid: p.pki.disconnect_invalid, ...(p.pki.initiating_version !== undefined ? { initiating_version: p.pki.initiating_version } : {}) },
    static_host_map: p.static_host_map,
    lighthouse: p.lighthouse,
    listen,
    routines,
    punchy: { punch: p.punchy.punch, respond: p.punchy.respond ?? p.punch_back ?? false, delay: p.punchy.delay },
    cipher: p.cipher,
    preferred_ranges: preferred,
    relay: p.relay,
    tun: {
      ...tun,
      unsafe_routes: tun.unsafe_routes.map((r) => ({ route: r.route, via: r.via, mtu: r.mtu ?? tun.mtu, metric: r.metric ?? 0 })),
    },
    logging: p.logging,
    firewall: {
      conntrack: {
        ...p.firewall.conntrack,
        routine_cache_timeout: p.firewall.conntrack.routine_cache_timeout ?? (routines > 1 ? 1000 : 0),
      },
      outbound: ruleList(p.firewall.outbound, 'outbound'),
      inbound: ruleList(p.firewall.inbound, 'inbound'),
      default_local_cidr_any: p.firewall.default_local_cidr_any,
      inbound_action: p.firewall.inbound_action,
      outbound_action: p.firewall.outbound_action,
    },
    sshd: p.sshd,
    stats: { ...p.stats, interval: p.stats.interval ?? DEFAULT_STATS_INTERVAL_MS },
    handshakes: p.handshakes,
    timers: p.timers,
    // Default: per network namespace and tun.dev (src/shared/control-path.ts, the rule nebula-ctl uses too).
    control: { socket: p.control.socket ?? defaultControlSocketPath(p.tun.dev) },
    tunnels: p.tunnels,
  };
}

/**
 * Validates an already-parsed YAML value (a plain object). Throws ConfigError listing every problem found.
 * Unknown keys, deprecations and the routines notice come back as warnings for the caller to log once.
 */
export function validateConfig(raw: unknown): ValidatedConfig {
  const input = raw === undefined || raw === null ? {} : raw;
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError([{ path: '', message: 'the config must be a map of keys' }]);
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((iss) => ({ path: formatPath(iss.path), message: iss.message })));
  }
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [];
  crossChecks(result.data, issues, warnings);
  // Keys we parse but cannot honour yet are refused, never silently ignored (unsupported.ts).
  issues.push(...unsupportedKeys(result.data));
  if (issues.length > 0) throw new ConfigError(issues);

  const config = build(result.data, warnings);
  for (const key of findUnknownKeys(configSchema, input)) {
    warnings.push({ level: 'warning', msg: 'Unknown config key, ignored', fields: { key } });
  }
  // structuredClone detaches the result from the caller's input object before freezing it.
  return { config: deepFreeze(structuredClone(config)) as NebulaConfig, warnings };
}
