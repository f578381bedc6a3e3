/**
 * The validated config. Keys keep Nebula's YAML names (so `cfg.listen.port` is `listen.port`), with three rules:
 * - every duration is a number of MILLISECONDS (also keys Nebula reads as seconds: lighthouse.interval, timers.*);
 * - legacy spellings are folded in (punchy: true, punch_back, local_range, pki.blacklist, tun/listen.routines);
 * - optional keys with a computed default are resolved (routines, control.socket, routine_cache_timeout,
 *   unsafe route mtu, stats.interval).
 * The object returned by validateConfig is deeply frozen.
 */
import type { LogFormat, LogLevel } from '../log';
import type { FirewallRule } from '../firewall/rule';
import type { FirewallAction } from '../firewall/firewall';

export type Cipher = 'aes' | 'chachapoly';
export type SendRecvError = 'always' | 'never' | 'private';
export type StatsType = 'none' | 'graphite' | 'prometheus';

/** CIDR (v4 or v6) → allow. Most specific rule wins (evaluated by the lighthouse code, not here). */
export type AllowList = Record<string, boolean>;

export interface PkiConfig {
  /** Path or inline PEM. */
  ca: string;
  cert: string;
  key: string;
  /** Leaf cert fingerprints to refuse (pki.blocklist, or the deprecated pki.blacklist). */
  blocklist: string[];
  disconnect_invalid: boolean;
  /** pki.initiating_version (1 or 2); undefined: Go's default (1 when a v1 cert is held). */
  initiating_version?: number;
}

export interface LighthouseConfig {
  am_lighthouse: boolean;
  serve_dns: boolean;
  dns: { host: string; port: number };
  /** ms between HostUpdateNotifications (YAML: seconds); 0 disables. */
  interval: number;
  /** Lighthouse VPN IPs (dotted quads); each has a static_host_map entry. */
  hosts: string[];
  remote_allow_list: AllowList;
  /** Inside (VPN) CIDR → allow list applied to remotes of hosts in that range. */
  remote_allow_ranges: Record<string, AllowList>;
  local_allow_list: { interfaces: Record<string, boolean>; cidrs: AllowList };
  /** "ip:port" (port 0 = our listen port). */
  advertise_addrs: string[];
}

export interface ListenConfig {
  /** Without brackets: "0.0.0.0", "::", or a name. */
  host: string;
  port: number;
  batch: number;
  read_buffer: number;
  write_buffer: number;
  send_recv_error: SendRecvError;
}

export interface PunchyConfig {
  punch: boolean;
  respond: boolean;
  /** ms */
  delay: number;
}

export interface RelayConfig {
  relays: string[];
  am_relay: boolean;
  use_relays: boolean;
}

export interface TunRoute {
  mtu: number;
  route: string;
}

export interface UnsafeRoute {
  route: string;
  /** VPN IP of the gateway host. */
  via: string;
  /** Resolved: tun.mtu when not given. */
  mtu: number;
  /** 0 when not given. */
  metric: number;
}

export interface TunConfig {
  disabled: boolean;
  dev: string;
  drop_local_broadcast: boolean;
  drop_multicast: boolean;
  tx_queue: number;
  mtu: number;
  routes: TunRoute[];
  unsafe_routes: UnsafeRoute[];
  /** nebula-ts extension: unix socket path of the userspace inside; '' = off (a tun device, unless disabled). */
  userspace: string;
  /** nebula-ts extension: tun offloads (virtio-net header, TSO/USO, checksum offload); false = plain packets. */
  offloads: boolean;
  /** nebula-ts extension: at low packet rates, throwaway round trips every 2 ms for 1 s after traffic (lower latency). */
  keep_warm: boolean;
}

export interface LoggingConfig {
  level: LogLevel;
  format: LogFormat;
  disable_timestamp: boolean;
  /** Go time layout; '' = RFC3339. */
  timestamp_format: string;
}

export interface ConntrackConfig {
  /** ms */
  tcp_timeout: number;
  udp_timeout: number;
  default_timeout: number;
  /** ms; resolved: 0, or 1000 when routines > 1, unless set. */
  routine_cache_timeout: number;
  /** nebula-ts extension: capacity of the shared-memory conntrack table. */
  max_entries: number;
}

export interface FirewallConfig {
  conntrack: ConntrackConfig;
  outbound: FirewallRule[];
  inbound: FirewallRule[];
  /**
   * Nebula 1.9+: a rule without local_cidr applies to every local address we handle (true) or, when our cert has
   * unsafe networks, only to our VPN networks (false). Default true as in Nebula 1.9 and as rules always behaved
   * before local_cidr existed; Nebula 1.10 defaults to false.
   */
  default_local_cidr_any: boolean;
  /** Nebula 1.7+: `drop` (default) or `reject` (TCP RST / ICMP unreachable to the sender), per direction. */
  inbound_action: FirewallAction;
  outbound_action: FirewallAction;
}

export interface SshdUser {
  user: string;
  keys: string[];
}

export interface SshdConfig {
  enabled: boolean;
  listen: string;
  host_key: string;
  authorized_users: SshdUser[];
}

export interface StatsConfig {
  type: StatsType;
  /** ms; 10000 when not set (only required when type is not none). */
  interval: number;
  prefix: string;
  protocol: string;
  host: string;
  listen: string;
  path: string;
  namespace: string;
  subsystem: string;
  message_metrics: boolean;
  lighthouse_metrics: boolean;
}

export interface HandshakesConfig {
  /** ms */
  try_interval: number;
  retries: number;
  trigger_buffer: number;
}

export interface TimersConfig {
  /** ms (YAML: seconds) */
  connection_alive_interval: number;
  pending_deletion_interval: number;
}

/** nebula-ts extension. */
export interface ControlConfig {
  /**
   * Unix socket nebula-ctl talks to; default /run/nebula-ts/netns-<network namespace inode>.<tun.dev or "nebula">.sock
   * (src/shared/control-path.ts).
   */
  socket: string;
}

/** nebula-ts extension. */
export interface TunnelsConfig {
  /** Capacity of the shared-memory host map (tunnels). */
  max: number;
}

export interface NebulaConfigShape {
  pki: PkiConfig;
  /** VPN IP → "host:port" list. */
  static_host_map: Record<string, string[]>;
  lighthouse: LighthouseConfig;
  listen: ListenConfig;
  /** Effective number of routines (≥ 1), after the deprecated-key rule. */
  routines: number;
  punchy: PunchyConfig;
  cipher: Cipher;
  /** CIDRs (v4/v6), with the legacy local_range appended. */
  preferred_ranges: string[];
  relay: RelayConfig;
  tun: TunConfig;
  logging: LoggingConfig;
  firewall: FirewallConfig;
  sshd: SshdConfig;
  stats: StatsConfig;
  handshakes: HandshakesConfig;
  timers: TimersConfig;
  control: ControlConfig;
  tunnels: TunnelsConfig;
}

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type NebulaConfig = DeepReadonly<NebulaConfigShape>;
