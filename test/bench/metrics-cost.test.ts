/**
 * The benchmark's metrics-cost comparison (src/bench/metrics-cost.ts), without running a mesh: the cost computed
 * from paired runs (orientation, medians of per-pair ratios, unpaired and failed runs left out), its table and
 * verdict line, and the metrics-on arm's config: accepted by nebula-ts's config checks, with both gates on, and
 * exporting the series the run checks it scraped.
 */
import t from 'tap';
import { parseConfig } from '../../src/shared/config';
import { metricDefinitions, metricsOptions, type MetricsSource } from '../../src/supervisor/metrics-catalogue';
import { metricName } from '../../src/supervisor/metrics';
import { Histogram } from '../../src/supervisor/histogram';
import { GATED_SERIES, METRICS_OFF, METRICS_ON, costPercent, costTable, metricsCost, metricsStatsConfig, quantile, type CostRow } from '../../src/bench/metrics-cost';
import type { RunRecord } from '../../src/bench/report';

const run = (impl: string, rep: number, metrics: Record<string, number>, error?: string): RunRecord => ({ impl, cipher: 'aes', routines: 1, rep, load1: 1, metrics, ...(error ? { error } : {}) });
const row = (rows: CostRow[], metric: string): CostRow => {
  const r = rows.find((x) => x.metric === metric);
  if (!r) throw new Error(`no row ${metric}`);
  return r;
};

t.test('cost is oriented so that > 0 is worse with metrics on', async (t) => {
  t.equal(costPercent('higher', 0.98), 2.0000000000000018);
  t.equal(costPercent('lower', 1.05), 5.000000000000004);
  t.ok(Number.isNaN(costPercent('none', 0.5)));
});

t.test('quantile interpolates between the finite values', async (t) => {
  t.equal(quantile([4, 1, 3, 2], 0.25), 1.75);
  t.equal(quantile([4, 1, NaN, 3, 2], 0.75), 3.25);
  t.equal(quantile([7], 0.5), 7);
  t.ok(Number.isNaN(quantile([], 0.5)));
});

t.test('rows come from per-repetition pairs; failed and unpaired runs are left out', async (t) => {
  const runs = [
    // rep 0: on is 1% slower on TCP, 4% slower on UDP
    run(METRICS_OFF, 0, { tcp1_gbps: 1.0, udp64_pps: 10_000, supervisor_cpu_ms_per_s: 10, nodes_cpu_ms_per_s: 1000 }),
    run(METRICS_ON, 0, { tcp1_gbps: 0.99, udp64_pps: 9_600, supervisor_cpu_ms_per_s: 15, nodes_cpu_ms_per_s: 1000 }),
    // rep 1 (B/A order): on 3% slower on TCP, 2% faster on UDP
    run(METRICS_ON, 1, { tcp1_gbps: 0.97, udp64_pps: 10_200, supervisor_cpu_ms_per_s: 14, nodes_cpu_ms_per_s: 500 }),
    run(METRICS_OFF, 1, { tcp1_gbps: 1.0, udp64_pps: 10_000, supervisor_cpu_ms_per_s: 10, nodes_cpu_ms_per_s: 500 }),
    // rep 2: on is 5% slower on TCP, 0% on UDP
    run(METRICS_OFF, 2, { tcp1_gbps: 2.0, udp64_pps: 20_000, supervisor_cpu_ms_per_s: 10, nodes_cpu_ms_per_s: 800 }),
    run(METRICS_ON, 2, { tcp1_gbps: 1.9, udp64_pps: 20_000, supervisor_cpu_ms_per_s: 18, nodes_cpu_ms_per_s: 800 }),
    // rep 3: the on run failed, so the off run has no pair (it still counts in the arm's median)
    run(METRICS_OFF, 3, { tcp1_gbps: 0.5, udp64_pps: 5_000 }),
    run(METRICS_ON, 3, { tcp1_gbps: 0.01 }, 'no tunnel'),
  ];
  const rows = metricsCost(runs);
  const tcp = row(rows, 'tcp1_gbps');
  t.equal(tcp.pairs, 3);
  t.equal(tcp.ratio.toFixed(4), '0.9700'); // median of 0.99, 0.97, 0.95
  t.equal(tcp.costPct.toFixed(4), '3.0000');
  t.equal(tcp.costPctP25.toFixed(4), '2.0000');
  t.equal(tcp.costPctP75.toFixed(4), '4.0000');
  t.equal(tcp.off, 1.0); // median of 1, 1, 2, 0.5
  t.equal(tcp.on, 0.99); // median of 0.99, 0.97, 1.9: the failed run's 0.01 is not used
  const udp = row(rows, 'udp64_pps');
  t.equal(udp.ratio, 1); // median of 0.96, 1.02, 1.00
  t.equal(udp.costPct, 0);
  const sup = row(rows, 'supervisor_cpu_ms_per_s');
  t.ok(Number.isNaN(sup.ratio), 'context rows get no ratio');
  t.equal(sup.off, 10);
  t.equal(sup.on, 15);
  // (15-10)/1000, (14-10)/500, (18-10)/800 -> 0.5 %, 0.8 %, 1.0 %
  const share = row(rows, 'scrape_cpu_share');
  t.equal(share.pairs, 3);
  t.equal(share.costPct.toFixed(4), '0.8000');
  t.notOk(rows.some((r) => r.metric === 'cpu_s_per_gb'), 'a metric no run measured gets no row');
});

t.test('the table shows ratio, signed cost, spread and the throughput verdict', async (t) => {
  const runs = [
    run(METRICS_OFF, 0, { tcp1_gbps: 1.0, udp64_pps: 10_000, supervisor_cpu_ms_per_s: 10 }),
    run(METRICS_ON, 0, { tcp1_gbps: 0.99, udp64_pps: 10_100, supervisor_cpu_ms_per_s: 12.5 }),
  ];
  const text = costTable(metricsCost(runs));
  const lines = text.split('\n');
  t.equal(lines[0], '| | metrics off | metrics on | on/off | cost | cost, middle half of pairs | pairs |');
  t.ok(lines.includes('| TCP 1 stream, Gbit/s | 1.00 | 0.99 | 0.990 | +1.0 % | +1.0 % … +1.0 % | 1 |'), text);
  t.ok(lines.includes('| UDP 64-byte packets received per s | 10.0k | 10.1k | 1.010 | −1.0 % | −1.0 % … −1.0 % | 1 |'), text);
  t.ok(lines.includes('| supervisors\' CPU ms per s (both nodes) | 10.0 | 12.5 | Δ 2.5 | – | – | – |'), text);
  t.equal(lines[lines.length - 1], 'throughput cost of the metrics (issue 11: under 2 %): TCP 1 stream +1.0 %, UDP 64-byte packets received per s −1.0 %');
});

t.test('no runs: no rows and no verdict', async (t) => {
  t.same(metricsCost([]), []);
  t.equal(costTable([]).split('\n').length, 2);
});

t.test('the metrics-on arm\'s stats section is a valid config with every gate on', async (t) => {
  const yaml = JSON.stringify({ pki: { ca: '/ca.crt', cert: '/h.crt', key: '/h.key' }, stats: metricsStatsConfig() });
  const cfg = parseConfig(yaml).config;
  t.equal(cfg.stats.type, 'prometheus');
  t.equal(cfg.stats.listen, '127.0.0.1:9123');
  t.equal(cfg.stats.message_metrics, true);
  t.equal(cfg.stats.lighthouse_metrics, true);
  // The series the run requires in each scrape exist with these gates, and only with them.
  const src: MetricsSource = {
    counterTotal: () => 0,
    routineCounter: () => 0,
    supervisorCounters: () => [],
    routines: 1,
    gauges: () => ({}),
    handshakes: () => new Histogram().snapshot(),
    udpSockets: 0,
    udpMemInfo: () => undefined,
  };
  const exported = (stats: typeof cfg.stats): string[] => metricDefinitions(metricsOptions({ ...cfg, stats }), src).map((d) => metricName(stats, d.name));
  for (const name of GATED_SERIES) t.ok(exported(cfg.stats).includes(name), `${name} exported with the gates on`);
  const gatesOff = { ...cfg.stats, message_metrics: false, lighthouse_metrics: false };
  for (const name of GATED_SERIES) t.notOk(exported(gatesOff).includes(name), `${name} not exported with the gates off`);
});

t.test('the baseline arm\'s stats section: the same endpoint with both gates off', async (t) => {
  const yaml = JSON.stringify({ pki: { ca: '/ca.crt', cert: '/h.crt', key: '/h.key' }, stats: metricsStatsConfig(false) });
  const cfg = parseConfig(yaml).config;
  t.same([cfg.stats.type, cfg.stats.listen, cfg.stats.path], ['prometheus', '127.0.0.1:9123', '/metrics']);
  t.same([cfg.stats.message_metrics, cfg.stats.lighthouse_metrics], [false, false]);
});
