/**
 * `nebula-ctl stats` without root: the table and the JSON carry the catalogue's series with the numbers the sources
 * give (the same ones /metrics shows), under the dotted names, with the gates of /metrics; the command is in the
 * shared table with Go's listing flags.
 */
import t from 'tap';
import type { NebulaConfig } from '../../src/shared/config';
import { findCommand, parseCommandArgs } from '../../src/shared/console-commands';
import { C } from '../../src/shared/state/counters';
import { statsJson, statsReport, statsText } from '../../src/supervisor/console-stats';
import { buildRegistry, metricName } from '../../src/supervisor/metrics';
import { metricDefinitions, type MetricsOptions, type MetricsSource } from '../../src/supervisor/metrics-catalogue';

const source: MetricsSource = {
  routines: 2,
  counterTotal: (index) => (index === C['messages.tx.recv_error'] ? 4 : index === C['network.packets.lost'] ? 12 : 0),
  routineCounter: (r, index) => (index === C['routine.inside.rx_packets'] ? 100 + r : 0),
  supervisorCounters: () => new Map([['handshake_manager.initiated', 3], ['lighthouse.tx.HostQuery', 2]]).entries(),
  gauges: () => ({ 'hostmap.main.hosts': 5, routines: 2 }),
  handshakes: () => ({ count: 2, max: 9, min: 1, mean: 5.25, stddev: 4, perc50: 5, perc75: 9, perc95: 9, perc99: 9, perc999: 9, sum: 10, variance: 16 }),
  udpSockets: 2,
  udpMemInfo: (i) => [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => v + 100 * i),
};
const stats = { namespace: 'nebula', subsystem: '', message_metrics: false, lighthouse_metrics: true } as NebulaConfig['stats'];
const options: MetricsOptions = { stats, punch: false, tunDisabled: false };

t.test('stats -json: every series by its dotted name, values as the sources give them', async (t) => {
  const json = statsJson(statsReport(metricDefinitions(options, source)));
  t.equal(json['messages.tx.recv_error'], 4);
  t.equal(json['network.packets.lost'], 12);
  t.equal(json['handshake_manager.initiated'], 3, 'a supervisor counter');
  t.equal(json['lighthouse.tx.HostQuery'], 2, 'lighthouse_metrics on: lighthouse.*');
  t.notOk('messages.tx.handshake_ixpsk0' in json, 'message_metrics off: hidden, as on /metrics');
  t.equal(json['hostmap.main.hosts'], 5);
  t.equal(json['udp.1.drops'], 109);
  t.same(json['routine.inside.rx_packets'], [100, 101], 'per routine');
  t.same(json.handshakes, { count: 2, max: 9, min: 1, mean: 5.25, stddev: 4, perc75: 9, perc95: 9, perc99: 9, perc999: 9, sum: 10, variance: 16 }, 'the histogram by its type labels');
});

t.test('stats: the same series and numbers as /metrics', async (t) => {
  const json = statsJson(statsReport(metricDefinitions(options, source)));
  const text = await buildRegistry(options, source, 'test').metrics();
  const prom = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const sp = line.lastIndexOf(' ');
    prom.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  const fromStats = new Map<string, number>();
  for (const [name, v] of Object.entries(json)) {
    const flat = metricName(stats, name);
    if (typeof v === 'number') fromStats.set(flat, v);
    else if (Array.isArray(v)) v.forEach((x, r) => fromStats.set(`${flat}{routine="${r}"}`, x));
    else for (const [type, x] of Object.entries(v)) fromStats.set(`${flat}{type="${type}"}`, x);
  }
  prom.forEach((v, k) => void (k.startsWith('nebula_info{') && prom.delete(k)));
  t.same(new Map([...fromStats].sort()), new Map([...prom].sort()), 'series for series, value for value (info aside)');
});

t.test('stats: a table of METRIC KIND VALUE rows', async (t) => {
  const text = statsText(statsReport(metricDefinitions(options, source)));
  const rows = text.trimEnd().split('\n');
  t.match(rows[0], /^METRIC\s+KIND\s+VALUE$/);
  t.match(text, /^messages\.tx\.recv_error\s+counter\s+4$/m);
  t.match(text, /^hostmap\.main\.hosts\s+gauge\s+5$/m);
  t.match(text, /^handshakes\{type="mean"\}\s+histogram\s+5\.25$/m);
  t.match(text, /^routine\.inside\.rx_packets\{routine="1"\}\s+counter\s+101$/m);
  const valueColumn = rows[0]!.indexOf('VALUE');
  t.ok(rows.every((r) => r.length > valueColumn && r[valueColumn - 1] === ' '), 'the values in one column');
});

t.test('stats is a console command with the listing flags', async (t) => {
  const spec = findCommand('stats');
  t.ok(spec);
  t.same(spec!.flags.map((f) => f.name), ['json', 'pretty']);
  t.ok(parseCommandArgs(spec!, ['-json']).bool('json'));
  t.throws(() => parseCommandArgs(spec!, ['extra']), /takes no arguments/);
});
