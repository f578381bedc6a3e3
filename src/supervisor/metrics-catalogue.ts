/**
 * What nebula-ts exports, in one list: every metric Go nebula 1.6.1 registers for the same config, under its dotted
 * go-metrics name, kind and gate, plus our documented extras (docs/metrics.md). The Prometheus endpoint
 * (metrics.ts), the graphite exporter (graphite.ts) and `nebula-ctl stats` (console-stats.ts) all read this list, so
 * the three show the same series with the same numbers.
 *
 * Gates, as in 1.6.1 (nebula-spec §9): `messages.*` only with `stats.message_metrics`, except
 * `messages.{rx,tx}.recv_error`; `messages.tx.punchy` only when punchy.punch also runs (Go's HostMap.Punchy registers
 * it); `messages.{rx,tx}.message` only with `tun.disabled` too (Go's disabled tun counts them); `lighthouse.*` and
 * `messages.tx.holepunch` only with `stats.lighthouse_metrics`.
 *
 * Values are read when asked: the routines count into their rows of the shared region with plain stores whatever the
 * gates say (a gate only decides what is shown), so turning a gate on costs the packet path nothing.
 */
import type { NebulaConfig } from '../shared/config';
import { SK_MEMINFO_FIELDS } from '../shared/native/libc';
import { C, COUNTER_NAMES } from '../shared/state/counters';
import { Histogram, type HistogramSnapshot } from './histogram';
import { LIGHTHOUSE_EXTRAS, LIGHTHOUSE_METRICS } from './lighthouse-metrics';

/** What the catalogue reads; the running node's is built by status.ts (metricsSource). */
export interface MetricsSource {
  /** Sum over every routine row plus the supervisor's own count. */
  counterTotal(index: number, name: string): number;
  routineCounter(routine: number, index: number): number;
  supervisorCounters(): Iterable<[string, number]>;
  routines: number;
  gauges(): Record<string, number>;
  /** The `handshakes` histogram's statistics. */
  handshakes(): HistogramSnapshot;
  /** How many UDP sockets (one per routine). */
  udpSockets: number;
  /** SO_MEMINFO of socket i (SK_MEMINFO_FIELDS order); undefined when it cannot be read. */
  udpMemInfo(i: number): number[] | undefined;
}

/** The parts of the config that decide which metrics exist (read once, at start: stats.* is not reloadable). */
export interface MetricsOptions {
  stats: NebulaConfig['stats'];
  /** punchy.punch */
  punch: boolean;
  /** tun.disabled */
  tunDisabled: boolean;
}

export function metricsOptions(config: Pick<NebulaConfig, 'stats' | 'punchy' | 'tun'>): MetricsOptions {
  return { stats: config.stats, punch: config.punchy.punch, tunDisabled: config.tun.disabled };
}

/**
 * One exported series. `counter` and `gauge` are go-metrics' Counter and Gauge (graphite tells them apart: `.count`
 * vs `.value`; Prometheus shows both as gauges, as 1.6.1's bridge does); `histogram` a go-metrics histogram;
 * `per-routine` a nebula-ts counter kept per routine (label `routine`), one value per routine.
 */
export type MetricDef =
  | { kind: 'counter' | 'gauge'; name: string; read(): number }
  | { kind: 'histogram'; name: string; read(): HistogramSnapshot }
  | { kind: 'per-routine'; name: string; read(): number[] };

/** nebula-ts's own series (Go 1.6.1 has none by these names): whole names, and `routine.*` as a prefix. */
export const EXTRA_NAMES: readonly string[] = [
  // Go 1.11's name for datagrams too short for a header or of an unknown type (behind message_metrics, as ours)
  'messages.rx.invalid',
  // tunnels refused because the host map is full (tunnels.max)
  'hostmap.refused',
  // first contacts by IPv6 VPN address refused because MAX_FIRST_CONTACTS of them are pending
  'handshake_manager.first_contact_refused',
  ...LIGHTHOUSE_EXTRAS,
];
export const EXTRA_PREFIXES: readonly string[] = ['routine.'];

/**
 * Go 1.6.1 series we do not export: its Go runtime statistics (go-metrics RegisterRuntimeMemStats and
 * RegisterDebugGCStats: `runtime.MemStats.*`, `runtime.Num*`, `runtime.ReadMemStats`, `debug.GCStats.*`,
 * `debug.ReadGCStats`). They describe Go's allocator and collector; a Node process has neither.
 */
export const GO_RUNTIME_PREFIXES: readonly string[] = ['runtime.', 'debug.'];

/** The supervisor's own Go counters (not in the routines' rows). */
const SUPERVISOR_COUNTERS = ['handshake_manager.initiated', 'handshake_manager.timed_out'];

/**
 * `network.tcp.rtt`: 1.6.1 registers this histogram in NewFirewall, but its TCP RTT tracking (trackTCPRTT) is never
 * switched on, so it stays empty; exported empty here too.
 */
const NEVER_UPDATED = new Histogram().snapshot();

function sharedCounterShown(o: MetricsOptions, name: string): boolean {
  if (!name.startsWith('messages.')) return true;
  if (name.endsWith('.recv_error')) return true;
  if (!o.stats.message_metrics) return false;
  if (name === 'messages.rx.message' || name === 'messages.tx.message') return o.tunDisabled;
  return true;
}

/**
 * `fn`'s value, computed at most once per turn of the event loop. A scrape reads every series in one turn (each
 * gauge's collect in turn), so a group of series read from one source (the host map gauges, whose conntrack count
 * scans the whole table; one socket's SO_MEMINFO) costs one read per scrape instead of one per series.
 */
function oncePerTurn<T>(fn: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (cached === undefined) {
      cached = { value: fn() };
      setImmediate(() => (cached = undefined));
    }
    return cached.value;
  };
}

/** Every series the node exports under `o`, in a stable order. */
export function metricDefinitions(o: MetricsOptions, src: MetricsSource): MetricDef[] {
  const defs: MetricDef[] = [];
  const gauges = oncePerTurn(() => src.gauges());
  const supervisorCounters = oncePerTurn(() => new Map(src.supervisorCounters()));
  for (const name of COUNTER_NAMES) {
    if (name.startsWith('routine.') || !sharedCounterShown(o, name)) continue;
    defs.push({ kind: 'counter', name, read: () => src.counterTotal(C[name], name) });
  }
  const supervisorOnly = [...SUPERVISOR_COUNTERS];
  if (o.stats.message_metrics && o.punch) supervisorOnly.push('messages.tx.punchy');
  if (o.stats.lighthouse_metrics) supervisorOnly.push(...LIGHTHOUSE_METRICS);
  supervisorOnly.push(...EXTRA_NAMES.filter((n) => !(COUNTER_NAMES as readonly string[]).includes(n)));
  for (const name of supervisorOnly) defs.push({ kind: 'counter', name, read: () => supervisorCounters().get(name) ?? 0 });

  for (const name of Object.keys(src.gauges())) defs.push({ kind: 'gauge', name, read: () => gauges()[name] ?? 0 });
  // As 1.6.1 on Linux: registered only when the kernel answers SO_MEMINFO.
  if (src.udpSockets > 0 && src.udpMemInfo(0) !== undefined) {
    for (let i = 0; i < src.udpSockets; i++) {
      const memInfo = oncePerTurn(() => src.udpMemInfo(i));
      SK_MEMINFO_FIELDS.forEach((field, j) => defs.push({ kind: 'gauge', name: `udp.${i}.${field}`, read: () => memInfo()?.[j] ?? 0 }));
    }
  }
  defs.push({ kind: 'histogram', name: 'handshakes', read: () => src.handshakes() });
  defs.push({ kind: 'histogram', name: 'network.tcp.rtt', read: () => NEVER_UPDATED });

  for (const name of COUNTER_NAMES) {
    if (!name.startsWith('routine.')) continue;
    const index = C[name];
    defs.push({ kind: 'per-routine', name, read: () => Array.from({ length: src.routines }, (_, r) => src.routineCounter(r, index)) });
  }
  return defs;
}

/** True for a dotted name that is one of our documented extras. */
export function isExtra(name: string): boolean {
  return EXTRA_NAMES.includes(name) || EXTRA_PREFIXES.some((p) => name.startsWith(p));
}
