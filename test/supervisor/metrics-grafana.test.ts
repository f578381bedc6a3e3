/**
 * grafana/nebula-ts.json: a dashboard Grafana loads as it is (the fields its importer needs, a Prometheus data source
 * variable every panel uses, panels on the 24-column grid without overlaps, every variable it refers to defined),
 * with the panels operators look for, and every metric its queries name is one nebula-ts exports (the prefix
 * variable at its default, `nebula`, i.e. stats.namespace: nebula).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { NebulaConfig } from '../../src/shared/config';
import { metricName } from '../../src/supervisor/metrics';
import { metricDefinitions, type MetricsSource } from '../../src/supervisor/metrics-catalogue';

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; current?: { value?: unknown } }> };
  time: { from: string; to: string };
}

const dashboard = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'grafana', 'nebula-ts.json'), 'utf8')) as Dashboard;

/** Every series nebula-ts exports with every gate open, 2 routines, as Prometheus names. */
function exported(): string[] {
  const src: MetricsSource = {
    routines: 2,
    counterTotal: () => 0,
    routineCounter: () => 0,
    supervisorCounters: () => new Map<string, number>().entries(),
    gauges: () => ({ 'hostmap.main.hosts': 0, 'hostmap.main.indexes': 0, 'hostmap.main.remoteIndexes': 0, 'hostmap.main.relayIndexes': 0, 'hostmap.pending.hosts': 0, 'hostmap.pending.indexes': 0, 'hostmap.pending.remoteIndexes': 0, 'hostmap.pending.relayIndexes': 0, 'firewall.conntrack.count': 0, 'firewall.rules.version': 0, routines: 2 }),
    handshakes: () => ({ count: 0, max: 0, min: 0, mean: 0, stddev: 0, perc50: 0, perc75: 0, perc95: 0, perc99: 0, perc999: 0, sum: 0, variance: 0 }),
    udpSockets: 2,
    udpMemInfo: () => [0, 0, 0, 0, 0, 0, 0, 0, 0],
  };
  const stats = { namespace: 'nebula', subsystem: '', message_metrics: true, lighthouse_metrics: true } as NebulaConfig['stats'];
  const names = metricDefinitions({ stats, punch: true, tunDisabled: false }, src).map((d) => metricName(stats, d.name));
  return [...names, metricName(stats, 'info')];
}

const panels = dashboard.panels.filter((p) => p.type !== 'row');
const targets = panels.flatMap((p) => p.targets ?? []);

t.test('loadable: the fields Grafana needs, unique ids, a Prometheus data source variable on every query', async (t) => {
  t.type(dashboard.uid, 'string');
  t.ok(dashboard.title.length > 0);
  t.ok(dashboard.schemaVersion >= 30, 'a current schema version');
  t.same(dashboard.time, { from: 'now-1h', to: 'now' });
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids unique');
  const ds = dashboard.templating.list.find((v) => v.name === 'datasource');
  t.same([ds?.type, ds?.query], ['datasource', 'prometheus'], 'a data source variable of type prometheus');
  for (const p of panels) t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: the data source variable`);
  for (const q of targets) t.same(q.datasource, { type: 'prometheus', uid: '${datasource}' });
  for (const p of panels) t.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
  for (const p of panels) {
    const refs = (p.targets ?? []).map((q) => q.refId);
    t.equal(new Set(refs).size, refs.length, `${p.title}: refIds unique`);
  }
});

t.test('the grid: 24 columns, no two panels overlap', async (t) => {
  const all = dashboard.panels;
  for (const p of all) t.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `${p.title} fits the grid`);
  const overlaps: string[] = [];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!.gridPos;
      const b = all[j]!.gridPos;
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) overlaps.push(`${all[i]!.title} / ${all[j]!.title}`);
    }
  }
  t.same(overlaps, []);
});

t.test('every variable a query uses is defined', async (t) => {
  const defined = new Set([...dashboard.templating.list.map((v) => v.name), '__rate_interval', '__interval', '__all']);
  const used = new Set(JSON.stringify(dashboard).match(/\$\{?(\w+)/g)!.map((m) => m.replace(/^\$\{?/, '')));
  t.same([...used].filter((u) => !defined.has(u)), []);
  const prefix = dashboard.templating.list.find((v) => v.name === 'prefix');
  t.equal(prefix?.query, 'nebula', 'the prefix variable defaults to nebula');
});

t.test('every metric the queries name is one nebula-ts exports', async (t) => {
  const ours = new Set(exported());
  const named = new Set<string>();
  const patterns: string[] = [];
  for (const q of targets) {
    const expr = q.expr.replace(/\$\{prefix\}/g, 'nebula');
    for (const m of expr.matchAll(/__name__=~"([^"]+)"/g)) patterns.push(m[1]!);
    for (const m of expr.replace(/__name__=~"[^"]+"/g, '').matchAll(/\b(nebula_[A-Za-z0-9_]+)/g)) named.add(m[1]!);
  }
  t.ok(named.size > 50, `${named.size} metric names in the queries`);
  t.same([...named].filter((n) => !ours.has(n)), [], 'no query names a metric we do not export');
  for (const p of patterns) t.ok([...ours].some((n) => new RegExp(`^${p}$`).test(n)), `${p} matches exported metrics`);
});

t.test('the panels operators look for', async (t) => {
  const titles = panels.map((p) => p.title);
  for (const wanted of [/Tunnels/, /Handshakes initiated/, /Handshake duration/, /Meta packets received/, /Meta packets sent/, /Lighthouse messages received/, /Lighthouse messages sent/, /Firewall drops/, /Data-path drops/, /per routine/]) {
    t.ok(titles.some((x) => wanted.test(x)), `a panel ${wanted}`);
  }
  const exprs = targets.map((q) => q.expr).join('\n');
  for (const type of ['handshake_ixpsk0', 'recv_error', 'lighthouse', 'test_request', 'test_response', 'close_tunnel']) {
    t.match(exprs, new RegExp(`_messages_rx_${type}\\b`), `rx ${type}`);
    t.match(exprs, new RegExp(`_messages_tx_${type}\\b`), `tx ${type}`);
  }
  t.match(exprs, /_routine_inside_rx_packets\{/);
});
