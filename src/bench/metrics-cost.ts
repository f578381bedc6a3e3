/**
 * What turning the metrics on costs (issue 11: under 2 % of throughput): nebula-ts with a Prometheus `stats` section
 * (message_metrics and lighthouse_metrics on, the endpoint scraped every second during the measurement) against
 * the same endpoint with both gates off (or nebula-ts without `stats`), measured A/B then B/A. This module holds the pure part: the config of the metrics-on
 * arm, the comparison computed from the runs, and its table. metrics-phase.ts runs the arms.
 *
 * Each repetition runs both arms back to back, so a pair shares the machine's load of that moment; a row's ratio is
 * the median of the per-pair ratios (on / off), which a load that drifts over the whole run does not bias the way
 * it biases a ratio of two medians. Cost is oriented so that > 0 means the metrics made it worse.
 */
import { median } from './probes';
import { METRICS, type RunRecord } from './report';

/** The arms' labels, in runs and in JSON. */
export const METRICS_OFF = 'ts';
export const METRICS_ON = 'ts+metrics';

const SCRAPE_LISTEN = '127.0.0.1:9123';
const SCRAPE_PATH = '/metrics';
/** Where each node's endpoint is, inside its own namespace. */
export const SCRAPE_URL = `http://${SCRAPE_LISTEN}${SCRAPE_PATH}`;
/** How often the benchmark scrapes by default: far more often than Prometheus' default (1 min), to be seen. */
export const SCRAPE_INTERVAL_MS = 1000;

/** A Prometheus `stats` section on the namespace's loopback, with both gates on (the metrics-on arm) or off. */
export function metricsStatsConfig(gates = true): Record<string, unknown> {
  return {
    type: 'prometheus',
    listen: SCRAPE_LISTEN,
    path: SCRAPE_PATH,
    namespace: 'nebula',
    // Required when stats.type is set (as in Go); Prometheus pulls, so it paces nothing here.
    interval: '10s',
    message_metrics: gates,
    lighthouse_metrics: gates,
  };
}

/**
 * Series exported only behind `stats.message_metrics` and `stats.lighthouse_metrics` (docs/metrics.md): a metrics-on
 * run whose scrapes lack them did not measure what it claims.
 */
export const GATED_SERIES: readonly string[] = ['nebula_messages_tx_handshake_ixpsk0', 'nebula_lighthouse_rx_HostQuery'];

interface CostDef {
  key: string;
  label: string;
  /** 'none': context rows, shown as the difference on − off instead of a ratio. */
  better: 'higher' | 'lower' | 'none';
  format: (v: number) => string;
}

const fromReport = (key: string): CostDef => {
  const def = METRICS.find((d) => d.key === key);
  if (!def) throw new Error(`no report metric ${key}`);
  return def;
};
const fixed = (digits: number) => (v: number): string => v.toFixed(digits);

/** Throughput rows: issue 11's target applies to these. */
export const THROUGHPUT_KEYS: readonly string[] = ['tcp1_gbps', 'udp64_pps'];

export const COST_METRICS: readonly CostDef[] = [
  ...THROUGHPUT_KEYS.map(fromReport),
  fromReport('cpu_s_per_gb'),
  fromReport('udp64_cpu_us_per_pkt'),
  { key: 'supervisor_cpu_ms_per_s', label: 'supervisors\' CPU ms per s (both nodes)', better: 'none', format: fixed(1) },
  { key: 'nodes_cpu_ms_per_s', label: 'nodes\' CPU ms per s (both nodes, all processes)', better: 'none', format: fixed(0) },
  { key: 'scraper_cpu_ms_per_s', label: 'the two scrapers\' own CPU ms per s (not the nodes\')', better: 'none', format: fixed(1) },
  { key: 'scrapes_per_node', label: 'successful scrapes per node', better: 'none', format: fixed(0) },
  { key: 'scrape_kib', label: 'scrape body, KiB', better: 'none', format: fixed(1) },
  { key: 'scrape_ms', label: 'scrape time (median), ms', better: 'none', format: fixed(1) },
];

export interface CostRow {
  metric: string;
  label: string;
  /** Medians over the arm's runs. */
  off: number;
  on: number;
  /** Pairs (one run of each arm in the same repetition) the ratio and cost come from. */
  pairs: number;
  /** Median over pairs of on / off (NaN for context rows). */
  ratio: number;
  /** Median over pairs of the cost in percent, > 0 = worse with metrics; for context rows NaN. */
  costPct: number;
  /** The middle half of the pairs' costs (25th and 75th percentile), to read the median's spread by. */
  costPctP25: number;
  costPctP75: number;
}

/** The q-quantile (0..1) of the finite values, interpolated; NaN when there are none. */
export function quantile(values: readonly number[], q: number): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo]! + (v[hi]! - v[lo]!) * (pos - lo);
}

/** A pair's cost in percent from on / off: less throughput, or more CPU per unit, is a positive cost. */
export function costPercent(better: CostDef['better'], ratio: number): number {
  if (better === 'higher') return (1 - ratio) * 100;
  if (better === 'lower') return (ratio - 1) * 100;
  return NaN;
}

/** Both arms' successful runs of each repetition, as [off, on]. */
function pairsOf(runs: readonly RunRecord[]): Array<[RunRecord, RunRecord]> {
  const byRep = new Map<number, { off?: RunRecord; on?: RunRecord }>();
  for (const r of runs) {
    if (r.error) continue;
    const slot = byRep.get(r.rep) ?? {};
    if (r.impl === METRICS_OFF) slot.off = r;
    else if (r.impl === METRICS_ON) slot.on = r;
    byRep.set(r.rep, slot);
  }
  return [...byRep.values()].filter((s): s is { off: RunRecord; on: RunRecord } => !!s.off && !!s.on).map((s) => [s.off, s.on]);
}

export function metricsCost(runs: readonly RunRecord[]): CostRow[] {
  const pairs = pairsOf(runs);
  const armMedian = (impl: string, key: string): number => median(runs.filter((r) => !r.error && r.impl === impl).map((r) => r.metrics[key] ?? NaN));
  const rows: CostRow[] = [];
  for (const def of COST_METRICS) {
    const off = armMedian(METRICS_OFF, def.key);
    const on = armMedian(METRICS_ON, def.key);
    if (!Number.isFinite(off) && !Number.isFinite(on)) continue;
    const ratios = pairs.map(([a, b]) => (b.metrics[def.key] ?? NaN) / (a.metrics[def.key] ?? NaN)).filter((x) => Number.isFinite(x));
    const costs = ratios.map((r) => costPercent(def.better, r));
    const ratio = def.better === 'none' ? NaN : median(ratios);
    rows.push({ metric: def.key, label: def.label, off, on, pairs: ratios.length, ratio, costPct: median(costs), costPctP25: quantile(costs, 0.25), costPctP75: quantile(costs, 0.75) });
  }
  // The scrape work itself, as a share of what the nodes spend: the extra supervisor CPU of the metrics-on run
  // over the whole CPU of that run. Load moves both numbers of a run together, so this reads steadier than rates.
  const shares = pairs.map(([a, b]) => {
    const extra = (b.metrics.supervisor_cpu_ms_per_s ?? NaN) - (a.metrics.supervisor_cpu_ms_per_s ?? NaN);
    return (extra / (b.metrics.nodes_cpu_ms_per_s ?? NaN)) * 100;
  }).filter((x) => Number.isFinite(x));
  if (shares.length > 0) {
    rows.push({ metric: 'scrape_cpu_share', label: 'extra supervisor CPU, share of the nodes\' CPU', off: NaN, on: NaN, pairs: shares.length, ratio: NaN, costPct: median(shares), costPctP25: quantile(shares, 0.25), costPctP75: quantile(shares, 0.75) });
  }
  return rows;
}

const pct = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} %` : '–');

/** The comparison as a markdown table, then one line with the throughput verdict. */
export function costTable(rows: readonly CostRow[]): string {
  const lines = ['| | metrics off | metrics on | on/off | cost | cost, middle half of pairs | pairs |', '|---|---|---|---|---|---|---|'];
  const defs = new Map<string, CostDef>(COST_METRICS.map((d) => [d.key, d]));
  for (const row of rows) {
    const def = defs.get(row.metric);
    const show = (v: number): string => (Number.isFinite(v) ? (def ? def.format(v) : v.toFixed(2)) : '–');
    const ratio = Number.isFinite(row.ratio) ? row.ratio.toFixed(3) : def?.better === 'none' ? `Δ ${show(row.on - row.off)}` : '–';
    const spread = Number.isFinite(row.costPctP25) ? `${pct(row.costPctP25)} … ${pct(row.costPctP75)}` : '–';
    // Context rows compare medians, not pairs.
    const pairs = def?.better === 'none' ? '–' : String(row.pairs);
    lines.push(`| ${row.label} | ${show(row.off)} | ${show(row.on)} | ${ratio} | ${pct(row.costPct)} | ${spread} | ${pairs} |`);
  }
  const verdict = THROUGHPUT_KEYS.map((k) => rows.find((r) => r.metric === k))
    .filter((r): r is CostRow => r !== undefined)
    .map((r) => `${r.label.replace(/, .*$/, '')} ${pct(r.costPct)}`);
  if (verdict.length > 0) lines.push('', `throughput cost of the metrics (issue 11: under 2 %): ${verdict.join(', ')}`);
  return lines.join('\n');
}
