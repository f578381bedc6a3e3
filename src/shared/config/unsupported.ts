/**
 * Keys we parse but cannot honour yet (issue 8: a key we accept is a key we honour). Each entry below names a key
 * whose value, when it is anything but Nebula's default, asks for something nebula-ts does not do; such a config is
 * refused with the key path and the reason, so `-test` fails and a reload keeps the running config, instead of the
 * node silently behaving otherwise. The defaults themselves are accepted: they ask for nothing.
 *
 * What is refused is the switch that asks for a missing subsystem (sshd.enabled, ...), or a value Go refuses too
 * (stats.protocol udp for graphite). Its sub-keys (sshd.listen, handshakes.trigger_buffer) are
 * accepted: with the switch off they do nothing in Go nebula either, and Nebula's own example config sets some of
 * them, so existing configs keep loading. When a feature is implemented, its entries go.
 *
 * Checked and honoured (not listed here): pki.*, static_host_map, the lighthouse (am_lighthouse, hosts, interval,
 * advertise_addrs, local_allow_list, serve_dns and dns.*, remote_allow_list and remote_allow_ranges: src/supervisor/lighthouse.ts and
 * src/shared/allow-list.ts), punchy.* and punch_back (src/supervisor/punchy.ts, lighthouse-handler.ts),
 * preferred_ranges and local_range (remote-list.ts orders addresses by them), listen.host/port/read_buffer/write_buffer/send_recv_error,
 * routines (and the deprecated tun/listen.routines), cipher, relay.* (src/supervisor/relay-manager.ts), tun.*, logging.level/format/disable_timestamp, the
 * firewall (rules, conntrack timeouts and max_entries, default_local_cidr_any), stats.* (prometheus with
 * listen/path/namespace/subsystem, graphite with prefix/host/protocol tcp, interval, message_metrics, lighthouse_metrics:
 * src/supervisor/metrics.ts, graphite.ts), handshakes.try_interval/retries, timers.*, control.*,
 * tunnels.*. The tun device keys (tun.routes, tx_queue, unsafe route mtu/metric) are honoured with a device and
 * refused without one (DEVICE_KEYS).
 */
import type { ConfigIssue } from './errors';
import type { ParsedConfig } from './schema';

const NO_SSHD = 'nebula-ts has no ssh server';
/** Go nebula resolves stats.host with net.ResolveTCPAddr, which knows no "udp" network: it refuses udp too. */
const GRAPHITE_TCP_ONLY = 'graphite goes over tcp, as in Go nebula, whose resolver refuses udp: unknown network udp';

interface Refusal {
  path: string;
  why: string;
  /** True when the parsed value asks for something we do not do. */
  refused(p: ParsedConfig): boolean;
}

const REFUSALS: readonly Refusal[] = [
  { path: 'listen.batch', why: 'nebula-ts reads and writes up to 64 packets per batch', refused: (p) => p.listen.batch !== 64 },
  { path: 'logging.timestamp_format', why: 'nebula-ts logs RFC 3339 timestamps', refused: (p) => p.logging.timestamp_format !== '' },
  {
    path: 'firewall.conntrack.routine_cache_timeout',
    why: 'routines share one conntrack table, there is no per-routine cache',
    refused: (p) => (p.firewall.conntrack.routine_cache_timeout ?? 0) !== 0,
  },
  { path: 'sshd.enabled', why: NO_SSHD, refused: (p) => p.sshd.enabled },
  { path: 'stats.protocol', why: GRAPHITE_TCP_ONLY, refused: (p) => p.stats.type === 'graphite' && p.stats.protocol !== 'tcp' },

];

/** The key paths refused by this module (for documentation and tests). */
export const REFUSED_KEYS: readonly string[] = REFUSALS.map((r) => r.path);

/**
 * Keys that only configure the tun device, refused when there is none (tun.disabled, or the nebula-ts extension
 * tun.userspace, whose client is told tun.mtu and nothing else): kernel routes with their MTU, the device's queue
 * length, and an unsafe route's MTU and metric (the unsafe route itself still picks the gateway for its packets).
 */
export const DEVICE_KEYS: readonly string[] = ['tun.routes', 'tun.tx_queue', 'tun.unsafe_routes[].mtu', 'tun.unsafe_routes[].metric'];

function deviceKeys(p: ParsedConfig): ConfigIssue[] {
  const mode = p.tun.disabled ? 'tun.disabled' : p.tun.userspace !== '' ? 'tun.userspace' : undefined;
  if (mode === undefined) return [];
  const message = `has no effect with ${mode} (there is no tun device); remove it`;
  const out: ConfigIssue[] = [];
  if (p.tun.routes.length > 0) out.push({ path: 'tun.routes', message });
  if (p.tun.tx_queue !== 500) out.push({ path: 'tun.tx_queue', message });
  p.tun.unsafe_routes.forEach((r, i) => {
    if (r.mtu !== undefined) out.push({ path: `tun.unsafe_routes[${i}].mtu`, message });
    if (r.metric !== undefined) out.push({ path: `tun.unsafe_routes[${i}].metric`, message });
  });
  return out;
}

/** One issue per key whose value nebula-ts cannot honour (yet, or without a tun device). */
export function unsupportedKeys(p: ParsedConfig): ConfigIssue[] {
  return [...REFUSALS.filter((r) => r.refused(p)).map((r) => ({ path: r.path, message: `not supported yet (${r.why}); remove it` })), ...deviceKeys(p)];
}
