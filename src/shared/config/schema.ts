/**
 * The zod schema for every key Nebula 1.6.1 reads (nebula-spec §10.2, §7.1, §9.1, §5), with Nebula's code defaults,
 * plus the nebula-ts extensions (control.socket, firewall.conntrack.max_entries, tunnels.max, tun.userspace, tun.offloads,
 * tun.keep_warm).
 *
 * The schema converts and checks each key on its own. Rules that need several keys (routines, legacy fallbacks,
 * lighthouse.hosts vs static_host_map, stats/sshd requirements) live in validate.ts.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseLogLevel, type LogLevel } from '../log';
import { parseFirewallRule } from '../firewall/rule';
import { parseIPv4 } from '../util/ipv4';
import { parseIPv6 } from '../util/ipv6';
import {
  Bad,
  bool,
  duration,
  int,
  isCidr46,
  list,
  listOf,
  oneOf,
  optBool,
  optDuration,
  optInt,
  record,
  requiredStr,
  scalar,
  seconds,
  section,
  str,
  toBool,
  toCidr4,
  toHostPort,
  toInt,
  toIPv4,
  toStr,
} from './fields';
import type { AllowList, SendRecvError, StatsType } from './types';
import type { FirewallAction } from '../firewall/firewall';

const MINUTE = 60_000;

function toCidr46(v: unknown): string | Bad {
  if (typeof v === 'string' && isCidr46(v.trim())) return v.trim();
  return new Bad(`${JSON.stringify(v)} is not a CIDR`);
}

/** An unsafe route's `via`: the gateway's IPv4 VPN IP (tunnels are keyed by it; an IPv6 one is refused, not ignored). */
function toGatewayIPv4(v: unknown): string | Bad {
  if (typeof v === 'string' && isIP(v.trim()) === 6) {
    return new Bad(`${JSON.stringify(v)} is an IPv6 VPN address: nebula-ts names a gateway by its IPv4 VPN address`);
  }
  return toIPv4(v);
}

const requiredInt = (min: number, max = 65535) =>
  scalar((v) => (v === undefined || v === null ? new Bad('required') : toInt(v, min, max)));

const requiredOf = <T>(convert: (v: unknown) => T | Bad) =>
  scalar((v) => (v === undefined || v === null || v === '' ? new Bad('required') : convert(v)));

/** `listen.send_recv_error`: always/never/private, or the legacy boolean (true = always). */
function toSendRecvError(v: unknown): SendRecvError | Bad {
  if (v === 'always' || v === 'never' || v === 'private') return v;
  const b = toBool(v);
  if (!(b instanceof Bad)) return b ? 'always' : 'never';
  return new Bad(`must be one of always, never, private, got ${JSON.stringify(v)}`);
}

function toLogLevel(v: unknown): LogLevel | Bad {
  const level = typeof v === 'string' ? parseLogLevel(v) : undefined;
  return level ?? new Bad(`must be one of panic, fatal, error, warning, info, debug, trace, got ${JSON.stringify(v)}`);
}

function toStatsType(v: unknown): StatsType | Bad {
  if (v === '' || v === 'none') return 'none';
  if (v === 'graphite' || v === 'prometheus') return v;
  return new Bad(`must be one of graphite, prometheus, none, got ${JSON.stringify(v)}`);
}

function toDevName(v: unknown): string | Bad {
  const s = toStr(v);
  if (s instanceof Bad) return s;
  // IFNAMSIZ is 16 including the NUL.
  if (s.length > 15 || /[\s/]/.test(s)) return new Bad(`${JSON.stringify(s)} is not a valid interface name (at most 15 characters, no spaces or /)`);
  return s;
}

function toListenHost(v: unknown): string | Bad {
  const s = toStr(v);
  if (s instanceof Bad) return s;
  // `[::]` is how users write the IPv6 any address; the socket layer wants it bare.
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  return bare === '' ? new Bad('must not be empty') : bare;
}

/** static_host_map values: one "host:port" or a list of them. */
function toRemoteList(v: unknown): string[] | Bad {
  const items = Array.isArray(v) ? v : [v];
  const out: string[] = [];
  for (let i = 0; i < items.length; i++) {
    const r = toHostPort(items[i], 1);
    if (r instanceof Bad) return new Bad(r.message, Array.isArray(v) ? [i] : []);
    out.push(r);
  }
  if (out.length === 0) return new Bad('must list at least one host:port');
  return out;
}

/** A static_host_map key: a VPN address, IPv4 or (first contact by an IPv6 VPN address, Go 1.10+) IPv6. */
const checkVpnAddrKey = (k: string): string | undefined => (parseIPv4(k) === undefined && parseIPv6(k) === undefined ? `${JSON.stringify(k)} is not an IP address` : undefined);
const checkCidrKey = (k: string): string | undefined => (isCidr46(k) ? undefined : `${JSON.stringify(k)} is not a CIDR`);

/**
 * An allow list (CIDR → bool). As in Nebula, when one address family has both true and false rules it must also
 * have its catch-all (0.0.0.0/0 or ::/0), otherwise the default would be ambiguous.
 */
function toAllowList(v: unknown): AllowList | Bad {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) return new Bad('must be a map of CIDR to true/false');
  const out: AllowList = {};
  const seen = { v4: new Set<boolean>(), v6: new Set<boolean>() };
  for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
    if (!isCidr46(k)) return new Bad(`${JSON.stringify(k)} is not a CIDR`, [k]);
    const b = toBool(raw);
    if (b instanceof Bad) return new Bad(b.message, [k]);
    out[k] = b;
    const fam = k.includes(':') ? seen.v6 : seen.v4;
    const isDefault = k.includes(':') ? /^::\/0$/.test(k) : k.endsWith('/0');
    if (!isDefault) fam.add(b);
  }
  if (seen.v4.size === 2 && !Object.keys(out).some((k) => !k.includes(':') && k.endsWith('/0'))) {
    return new Bad('contains both true and false rules, but no default set for 0.0.0.0/0');
  }
  if (seen.v6.size === 2 && !('::/0' in out)) return new Bad('contains both true and false rules, but no default set for ::/0');
  return out;
}

/** lighthouse.local_allow_list: an allow list plus `interfaces` (name regex → bool, all the same value). */
function toLocalAllowList(v: unknown): { interfaces: Record<string, boolean>; cidrs: AllowList } | Bad {
  if (v === undefined || v === null) return { interfaces: {}, cidrs: {} };
  if (typeof v !== 'object' || Array.isArray(v)) return new Bad('must be a map');
  const { interfaces, ...rest } = v as Record<string, unknown>;
  const cidrs = toAllowList(rest);
  if (cidrs instanceof Bad) return cidrs;
  const out: Record<string, boolean> = {};
  if (interfaces !== undefined && interfaces !== null) {
    if (typeof interfaces !== 'object' || Array.isArray(interfaces)) return new Bad('must be a map of name regex to true/false', ['interfaces']);
    const values = new Set<boolean>();
    for (const [re, raw] of Object.entries(interfaces as Record<string, unknown>)) {
      try {
        new RegExp(`^(?:${re})$`);
      } catch {
        return new Bad(`${JSON.stringify(re)} is not a valid regular expression`, ['interfaces', re]);
      }
      const b = toBool(raw);
      if (b instanceof Bad) return new Bad(b.message, ['interfaces', re]);
      out[re] = b;
      values.add(b);
    }
    if (values.size > 1) return new Bad('interface rules must all be true or all be false', ['interfaces']);
  }
  return { interfaces: out, cidrs };
}

/** One firewall rule; its problems are reported at the rule's path plus the field (e.g. `.port`). */
const firewallRule = z.unknown().transform((v, ctx) => {
  const parsed = parseFirewallRule(v);
  for (const e of parsed.errors) ctx.addIssue({ code: 'custom', message: e.message, path: e.path, input: v });
  if (parsed.rule === undefined) return z.NEVER;
  return { rule: parsed.rule, warnings: parsed.warnings };
});

/** Stricter than Go, which warns and drops on an unknown value: a typo in a security setting is refused. */
const FIREWALL_ACTIONS = ['drop', 'reject'] as const satisfies readonly FirewallAction[];

const optStr = () => scalar<string | undefined>(toStr, () => undefined);

export const configSchema = section({
  pki: section({
    ca: requiredStr(),
    cert: requiredStr(),
    key: requiredStr(),
    blocklist: listOf(toStr),
    blacklist: listOf(toStr),
    disconnect_invalid: bool(false),
    /** 1 or 2; absent: 1 when pki.cert holds a v1 cert, else 2 (Go 1.10+). */
    initiating_version: optInt(1, 2),
  }),
  static_host_map: record(checkVpnAddrKey, toRemoteList),
  lighthouse: section({
    am_lighthouse: bool(false),
    serve_dns: bool(false),
    dns: section({ host: str(''), port: int(53, 0, 65535) }),
    interval: seconds(10),
    hosts: listOf(toIPv4),
    remote_allow_list: scalar(toAllowList, () => ({})),
    remote_allow_ranges: record(checkCidrKey, toAllowList),
    local_allow_list: scalar(toLocalAllowList, () => ({ interfaces: {}, cidrs: {} })),
    advertise_addrs: listOf((v) => toHostPort(v, 0)),
  }),
  listen: section({
    host: scalar(toListenHost, () => '0.0.0.0'),
    port: int(0, 0, 65535),
    batch: int(64, 1, 65535),
    read_buffer: int(0, 0),
    write_buffer: int(0, 0),
    send_recv_error: scalar(toSendRecvError, (): SendRecvError => 'always'),
    /** Deprecated (see validate.ts). */
    routines: optInt(),
  }),
  routines: optInt(Number.MIN_SAFE_INTEGER, 65536),
  punchy: section({ punch: bool(false), respond: optBool(), delay: duration(1000) }, (v) => ({ punch: v })),
  /** Legacy spelling of punchy.respond. */
  punch_back: optBool(),
  cipher: oneOf('aes', ['aes', 'chachapoly'] as const),
  preferred_ranges: listOf(toCidr46),
  /** Legacy single-CIDR spelling, merged into preferred_ranges. */
  local_range: scalar<string | undefined>(toCidr46, () => undefined),
  relay: section({ relays: listOf(toIPv4), am_relay: bool(false), use_relays: bool(true) }),
  tun: section({
    disabled: bool(false),
    dev: scalar(toDevName, () => ''),
    drop_local_broadcast: bool(false),
    drop_multicast: bool(false),
    tx_queue: int(500, 0),
    mtu: int(1300, 68, 65535),
    routes: list(section({ mtu: requiredInt(500), route: requiredOf(toCidr4) })),
    unsafe_routes: list(
      // An IPv6 route (v2 certificates) is carried like an IPv4 one; its gateway is still named by its IPv4 VPN IP.
      section({ route: requiredOf(toCidr46), via: requiredOf(toGatewayIPv4), mtu: optInt(500, 65535), metric: optInt(0) }),
    ),
    /** Deprecated (see validate.ts). */
    routines: optInt(),
    /**
     * nebula-ts extension: path of a unix socket offering the userspace inside's packet fds ('' = off, use a tun).
     * Lets a program exchange raw IP packets with the node without root (DESIGN.md "Inside").
     */
    userspace: str(''),
    /**
     * nebula-ts extension: open the tun with IFF_VNET_HDR + TUNSETOFFLOAD (checksum, TSO4/6, USO4/6), so a read may
     * bring a 64 KB TCP/UDP super-packet the routine splits itself; falls back to plain packets when the kernel
     * refuses. Off by default.
     */
    offloads: bool(false),
    /** nebula-ts extension: keep the packet path hot for 1 s after traffic (src/routine/keep-warm.ts). */
    keep_warm: bool(true),
  }),
  logging: section({
    level: scalar(toLogLevel, (): LogLevel => 'info'),
    format: oneOf('text', ['text', 'json'] as const),
    disable_timestamp: bool(false),
    timestamp_format: str(''),
  }),
  firewall: section({
    conntrack: section({
      tcp_timeout: duration(12 * MINUTE),
      udp_timeout: duration(3 * MINUTE),
      default_timeout: duration(10 * MINUTE),
      routine_cache_timeout: optDuration(),
      max_entries: int(65536, 1, 1 << 24),
    }),
    outbound: list(firewallRule),
    inbound: list(firewallRule),
    /** Nebula 1.9+: whether a rule without local_cidr covers our unsafe networks too (see firewall/table.ts). */
    default_local_cidr_any: bool(true),
    /** Nebula 1.7+: what a refused packet gets: nothing (drop) or a TCP RST / ICMP unreachable (reject). */
    inbound_action: oneOf('drop', FIREWALL_ACTIONS),
    outbound_action: oneOf('drop', FIREWALL_ACTIONS),
  }),
  sshd: section({
    enabled: bool(false),
    listen: str(''),
    host_key: str(''),
    authorized_users: list(section({ user: requiredStr(), keys: listOf(toStr, true) })),
  }),
  stats: section({
    type: scalar(toStatsType, (): StatsType => 'none'),
    interval: optDuration(),
    prefix: str('nebula'),
    protocol: str('tcp'),
    host: str(''),
    listen: str(''),
    path: str(''),
    namespace: str(''),
    subsystem: str(''),
    message_metrics: bool(false),
    lighthouse_metrics: bool(false),
  }),
  handshakes: section({
    try_interval: duration(100),
    retries: int(10, 1),
    trigger_buffer: int(64, 1),
  }),
  timers: section({
    connection_alive_interval: seconds(5),
    pending_deletion_interval: seconds(10),
  }),
  control: section({ socket: optStr() }),
  tunnels: section({ max: int(4096, 1, 1 << 22) }),
});

export type ParsedConfig = z.output<typeof configSchema>;
