/**
 * stats.type: graphite without root: the plaintext lines as go-metrics-graphite (39f87cc, Go nebula 1.6.1's) writes
 * them for each kind of series, one export per TCP connection to a listener on 127.0.0.1 carrying exactly those
 * lines, failures logged and retried at the next export, stats.host resolved as Go resolves it, and the config:
 * graphite over tcp accepted, udp refused as Go refuses it.
 */
import t from 'tap';
import net from 'node:net';
import { ConfigError, parseConfig } from '../../src/shared/config';
import { Logger } from '../../src/shared/log';
import { GraphiteExporter, graphiteLines, resolveGraphiteHost } from '../../src/supervisor/graphite';
import type { HistogramSnapshot } from '../../src/supervisor/histogram';
import type { MetricDef } from '../../src/supervisor/metrics-catalogue';

const HIST: HistogramSnapshot = { count: 3, min: 1000, max: 3000, mean: 2000, stddev: 816.4965809277, perc50: 2000, perc75: 3000, perc95: 3000, perc99: 3000, perc999: 3000, sum: 6000, variance: 666666.667 };

const DEFS: MetricDef[] = [
  { kind: 'counter', name: 'messages.tx.recv_error', read: () => 7 },
  { kind: 'gauge', name: 'hostmap.main.hosts', read: () => 2 },
  { kind: 'histogram', name: 'handshakes', read: () => HIST },
  { kind: 'per-routine', name: 'routine.inside.rx_packets', read: () => [5, 11] },
];

t.test('lines: go-metrics-graphite fields and formats for counters, gauges, histograms; per-routine counters', async (t) => {
  const lines = graphiteLines(DEFS, 'nebula', 2000, 1700000000);
  t.same(lines, [
    'nebula.messages.tx.recv_error.count 7 1700000000\n',
    'nebula.messages.tx.recv_error.count_ps 3.50 1700000000\n',
    'nebula.hostmap.main.hosts.value 2 1700000000\n',
    'nebula.handshakes.count 3 1700000000\n',
    'nebula.handshakes.min 1000 1700000000\n',
    'nebula.handshakes.max 3000 1700000000\n',
    'nebula.handshakes.mean 2000.00 1700000000\n',
    'nebula.handshakes.std-dev 816.50 1700000000\n',
    'nebula.handshakes.50-percentile 2000.00 1700000000\n',
    'nebula.handshakes.75-percentile 3000.00 1700000000\n',
    'nebula.handshakes.95-percentile 3000.00 1700000000\n',
    'nebula.handshakes.99-percentile 3000.00 1700000000\n',
    'nebula.handshakes.999-percentile 3000.00 1700000000\n',
    'nebula.routine.0.inside.rx_packets.count 5 1700000000\n',
    'nebula.routine.0.inside.rx_packets.count_ps 2.50 1700000000\n',
    'nebula.routine.1.inside.rx_packets.count 11 1700000000\n',
    'nebula.routine.1.inside.rx_packets.count_ps 5.50 1700000000\n',
  ]);
});

/** A plaintext listener on 127.0.0.1; `next()` resolves with the bytes of the next connection once it closed. */
async function listener(t: { teardown(fn: () => unknown): void }): Promise<{ port: number; next(): Promise<string>; connections(): number }> {
  const done: string[] = [];
  const waiting: Array<(s: string) => void> = [];
  let connections = 0;
  const server = net.createServer((c) => {
    connections++;
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const w = waiting.shift();
      if (w) w(text);
      else done.push(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => (done.length > 0 ? Promise.resolve(done.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    connections: () => connections,
  };
}

function quietLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: 'info', format: 'json', write: (l) => lines.push(l) }), lines };
}

t.test('an export is one TCP connection carrying every line, then closed; values read at each export', async (t) => {
  const { port, next } = await listener(t);
  let count = 7;
  const defs: MetricDef[] = [{ kind: 'counter', name: 'messages.tx.recv_error', read: () => count }, ...DEFS.slice(1)];
  const exporter = new GraphiteExporter({ prefix: 'nebula', interval: 1000 }, { host: '127.0.0.1', port }, defs, quietLog().log);
  t.equal(await exporter.exportOnce(), true);
  count = 9;
  t.equal(await exporter.exportOnce(), true);
  const [first, second] = (await Promise.all([next(), next()])).map((r) => r.split('\n').filter((l) => l !== '').map((l) => l.split(' ')));
  t.equal(first!.length, 17, 'every line in one connection');
  t.same(first!.map((f) => f[0]), graphiteLines(defs, 'nebula', 1000, 0).map((l) => l.split(' ')[0]));
  t.same(first![0]!.slice(0, 2), ['nebula.messages.tx.recv_error.count', '7']);
  t.same(second![0]!.slice(0, 2), ['nebula.messages.tx.recv_error.count', '9'], 'the next export reads the counter again');
  const now = Math.floor(Date.now() / 1000);
  t.ok(first!.every((f) => Math.abs(Number(f[2]) - now) <= 5), 'stamped with the time of the export, in unix seconds');
});

t.test('a failed export is logged and the next one is sent', async (t) => {
  // A port nothing listens on yet: a listener's, closed; later listening again on it.
  const server = net.createServer();
  t.teardown(() => new Promise((r) => server.close(r)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  const { log, lines } = quietLog();
  const exporter = new GraphiteExporter({ prefix: 'nebula', interval: 1000 }, { host: '127.0.0.1', port }, DEFS, log);
  t.equal(await exporter.exportOnce(), false, 'connection refused');
  const logged = JSON.parse(lines[0]!) as { level: string; msg: string; error: string };
  t.same([logged.level, logged.msg], ['warning', 'Graphite export failed']);
  t.match(logged.error, /ECONNREFUSED/);

  const arrived = new Promise<string>((resolve) =>
    server.once('connection', (c) => {
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    }),
  );
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  t.equal(await exporter.exportOnce(), true, 'the next export goes through');
  t.equal((await arrived).split('\n').length - 1, 17, 'whole');
});

t.test('an export still under way is not overlapped by the next one', async (t) => {
  const { port, next, connections } = await listener(t);
  const exporter = new GraphiteExporter({ prefix: 'nebula', interval: 1000 }, { host: '127.0.0.1', port }, DEFS, quietLog().log);
  const first = exporter.exportOnce();
  t.equal(await exporter.exportOnce(), false, 'the second call sends nothing while the first runs');
  t.equal(await first, true);
  t.equal((await next()).split('\n').length - 1, 17, 'the first export arrived whole');
  t.equal(connections(), 1, 'in the one connection');
});

t.test('stats.host: resolved once, as Go resolves it, or a start-up error in Go\'s words', async (t) => {
  t.same(await resolveGraphiteHost('127.0.0.1:2003'), { host: '127.0.0.1', port: 2003 });
  t.same(await resolveGraphiteHost('localhost:2003'), { host: '127.0.0.1', port: 2003 }, 'a name, IPv4 preferred');
  await t.rejects(resolveGraphiteHost('127.0.0.1'), { message: 'error while setting up graphite sink: address 127.0.0.1: missing port in address' });
  await t.rejects(resolveGraphiteHost('no-such-host.invalid:2003'), { message: /^error while setting up graphite sink: / });
});

t.test('config: graphite over tcp is accepted, udp refused (Go: unknown network udp)', async (t) => {
  const PKI = 'pki:\n  ca: /etc/nebula/ca.crt\n  cert: /etc/nebula/host.crt\n  key: /etc/nebula/host.key\n';
  const cfg = parseConfig(`${PKI}stats: {type: graphite, prefix: mesh, protocol: tcp, host: "127.0.0.1:2003", interval: 10s, message_metrics: true}\n`).config;
  t.same([cfg.stats.type, cfg.stats.prefix, cfg.stats.host, cfg.stats.interval], ['graphite', 'mesh', '127.0.0.1:2003', 10_000]);
  t.equal(parseConfig(`${PKI}stats: {type: graphite, host: "127.0.0.1:2003", interval: 1s}\n`).config.stats.prefix, 'nebula', 'prefix defaults to nebula');
  try {
    parseConfig(`${PKI}stats: {type: graphite, protocol: udp, host: "127.0.0.1:2003", interval: 10s}\n`);
    t.fail('udp accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`), [/^stats\.protocol: not supported yet \(.*unknown network udp\); remove it$/]);
  }
});
