/**
 * The benchmark's results: every run's raw metrics, their medians per (implementation, cipher, routines), the
 * side-by-side table with ratios to the reference implementation (the first one, Go nebula by default), and JSON.
 *
 * A ratio is always oriented so that > 1 means better than the reference: value / reference for rates, reference /
 * value for costs (RTT, CPU, memory), so one threshold reads every row.
 */
import { median } from './probes';
import type { Metrics } from './scenario';

export interface RunRecord {
  impl: string;
  cipher: string;
  routines: number;
  rep: number;
  /** 1-minute load average when the run started: the machine is shared, so numbers move with it. */
  load1: number;
  metrics: Metrics;
  error?: string;
}

interface MetricDef {
  key: string;
  label: string;
  /** Which way is better; 'none' for context rows, which get no ratio. */
  better: 'higher' | 'lower' | 'none';
  format: (v: number) => string;
}

const fixed = (digits: number) => (v: number): string => v.toFixed(digits);
const kilo = (v: number): string => `${(v / 1000).toFixed(1)}k`;

export const METRICS: readonly MetricDef[] = [
  { key: 'tcp1_gbps', label: 'TCP 1 stream, Gbit/s', better: 'higher', format: fixed(2) },
  { key: 'tcp1r_gbps', label: 'TCP 1 stream reverse, Gbit/s', better: 'higher', format: fixed(2) },
  { key: 'tcp4_gbps', label: 'TCP 4 streams, Gbit/s', better: 'higher', format: fixed(2) },
  { key: 'tcp4r_gbps', label: 'TCP 4 streams reverse, Gbit/s', better: 'higher', format: fixed(2) },
  { key: 'udp64_pps', label: 'UDP 64-byte packets received per s', better: 'higher', format: kilo },
  { key: 'udp64_cpu_us_per_pkt', label: 'CPU µs per UDP packet (both nodes)', better: 'lower', format: fixed(2) },
  { key: 'udp64_syscalls_per_pkt', label: 'syscalls per UDP packet (both nodes)', better: 'lower', format: fixed(2) },
  { key: 'udp64_cpus_used', label: 'CPUs used by both nodes during the UDP flood', better: 'none', format: fixed(2) },
  { key: 'udp64_cpus_waited', label: 'CPUs both nodes waited for in run queues (UDP flood)', better: 'none', format: fixed(2) },
  { key: 'udp64_lost_total', label: 'UDP flood: share lost in all', better: 'none', format: fixed(2) },
  { key: 'udp64_lost_client_tun', label: '… at the sender\'s tun (node too slow to read)', better: 'none', format: fixed(2) },
  { key: 'udp64_lost_server_underlay', label: '… at the receiver\'s underlay socket', better: 'none', format: fixed(2) },
  { key: 'udp64_lost_server_app', label: '… at the receiving application (iperf3)', better: 'none', format: fixed(2) },
  { key: 'ping_rtt_ms', label: 'ping RTT (median of 100), ms', better: 'lower', format: fixed(2) },
  { key: 'ping_cpu_ms', label: 'CPU ms per ping, both nodes (pings 10 ms apart)', better: 'lower', format: fixed(2) },
  { key: 'first_ping_ms', label: 'first ping after start, ms', better: 'lower', format: fixed(1) },
  { key: 'cpu_s_per_gb', label: 'CPU-seconds per GB (both nodes)', better: 'lower', format: fixed(1) },
  { key: 'rss_mib', label: 'RSS per node (VmRSS summed over its processes), MiB', better: 'lower', format: fixed(0) },
  { key: 'mem_mib', label: 'memory per node (resident pages counted once), MiB', better: 'lower', format: fixed(0) },
];

export interface SummaryRow {
  impl: string;
  cipher: string;
  routines: number;
  metric: string;
  median: number;
  values: number[];
}

export function summarize(runs: readonly RunRecord[]): SummaryRow[] {
  const groups = new Map<string, SummaryRow>();
  for (const r of runs) {
    for (const [metric, value] of Object.entries(r.metrics)) {
      const key = `${r.impl}|${r.cipher}|${r.routines}|${metric}`;
      let row = groups.get(key);
      if (!row) groups.set(key, (row = { impl: r.impl, cipher: r.cipher, routines: r.routines, metric, median: NaN, values: [] }));
      row.values.push(value);
    }
  }
  for (const row of groups.values()) row.median = median(row.values);
  return [...groups.values()];
}

/** value vs reference, oriented so > 1 is better. */
export function ratio(def: MetricDef, value: number, reference: number): number {
  if (def.better === 'none') return NaN;
  return def.better === 'higher' ? value / reference : reference / value;
}

/** One markdown table per routine count: for each cipher the implementations' medians, then ratios to the first. */
export function table(summary: readonly SummaryRow[], impls: readonly string[], ciphers: readonly string[], routines: number): string {
  const get = (impl: string, cipher: string, metric: string): number =>
    summary.find((s) => s.impl === impl && s.cipher === cipher && s.routines === routines && s.metric === metric)?.median ?? NaN;
  const [ref, ...others] = impls;
  const header = ['', ...ciphers.flatMap((c) => [...impls.map((i) => `${i} ${c}`), ...others.map((o) => `${o}/${ref}`)])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const def of METRICS) {
    if (!impls.some((i) => ciphers.some((c) => Number.isFinite(get(i, c, def.key))))) continue;
    const cells = ciphers.flatMap((c) => {
      const show = (v: number): string => (Number.isFinite(v) ? def.format(v) : '–');
      const refValue = get(ref!, c, def.key);
      const ratios = others.map((o) => {
        const r = ratio(def, get(o, c, def.key), refValue);
        return Number.isFinite(r) ? r.toFixed(2) : '–';
      });
      return [...impls.map((i) => show(get(i, c, def.key))), ...ratios];
    });
    lines.push(`| ${def.label} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** One run as the progress line the benchmark prints while it goes. */
export function runLine(rec: RunRecord): string {
  const shown = Object.entries(rec.metrics).map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`).join(' ');
  return `  rep ${rec.rep + 1} ${rec.impl} ${rec.cipher} routines ${rec.routines} (load ${rec.load1.toFixed(1)}): ${rec.error ? `FAILED: ${rec.error.split('\n')[0]}` : shown}\n`;
}
