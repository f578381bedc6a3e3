/**
 * The Prometheus endpoint (`stats.type: prometheus`, served at `stats.listen` + `stats.path`). Everything is read
 * at scrape time: the routines count into their rows of the shared region with plain stores and the supervisor
 * sums them here, so counting costs the packet path nothing and no IPC round trip is needed.
 *
 * Names follow Nebula 1.6.1's exporter (nebula-spec §9.1): every metric is a gauge named
 * `<namespace>_<subsystem>_<dotted name with . - = and space as _>`, help = the dotted name, plus `<ns>_<sub>_info`.
 * As in 1.6.1, `messages.*` meta-packet counters are exported only with `stats.message_metrics`, except
 * `messages.{rx,tx}.recv_error`. The data-path counters of nebula-ts (`routine.*`) keep one series per routine
 * (label `routine`), so a respawned routine resets its own series instead of a sum going down.
 * The `handshakes` histogram is exported as 1.6.1's bridge exports a go-metrics histogram: one gauge with a `type`
 * label (count, max, min, mean, stddev, perc75, perc95, perc99, perc999, sum, variance). The `udp.<i>.*` gauges are
 * SO_MEMINFO of routine i's socket, registered only when the kernel answers SO_MEMINFO on socket 0 (as in 1.6.1).
 */
import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { C, COUNTER_NAMES, type CounterName } from '../shared/state/counters';
import { SK_MEMINFO_FIELDS } from '../shared/native/libc';
import { HISTOGRAM_TYPES, type HistogramType } from './histogram';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { LIGHTHOUSE_EXTRAS, LIGHTHOUSE_METRICS } from './lighthouse-metrics';
import { parseHostPort } from '../shared/util/host-port';

export interface MetricsSource {
  /** Sum over every routine row plus the supervisor's own count. */
  counterTotal(index: number, name: string): number;
  routineCounter(routine: number, index: number): number;
  supervisorCounters(): Iterable<[string, number]>;
  routines: number;
  gauges(): Record<string, number>;
  /** The `handshakes` histogram's values, by `type` label. */
  handshakes(): Record<HistogramType, number>;
  /** How many UDP sockets (one per routine). */
  udpSockets: number;
  /** SO_MEMINFO of socket i (SK_MEMINFO_FIELDS order); undefined when it cannot be read. */
  udpMemInfo(i: number): number[] | undefined;
}

export function metricName(cfg: NebulaConfig['stats'], dotted: string): string {
  return [cfg.namespace, cfg.subsystem, dotted.replace(/[.\-= ]/g, '_')].filter((p) => p !== '').join('_');
}

function exported(cfg: NebulaConfig['stats'], name: string): boolean {
  if (!name.startsWith('messages.')) return true;
  return cfg.message_metrics || name.endsWith('.recv_error');
}

export function buildRegistry(cfg: NebulaConfig['stats'], src: MetricsSource, version: string): Registry {
  const reg = new Registry();
  const gauge = (dotted: string, value: () => number): void => {
    new Gauge({
      name: metricName(cfg, dotted),
      help: dotted,
      registers: [reg],
      collect() {
        this.set(value());
      },
    });
  };
  for (const name of COUNTER_NAMES) {
    if (name.startsWith('routine.') || !exported(cfg, name)) continue;
    gauge(name, () => src.counterTotal(C[name], name));
  }
  // Counters only the supervisor keeps (handshakes it initiated or gave up on).
  const supervisorOnly = ['handshake_manager.initiated', 'handshake_manager.timed_out', ...LIGHTHOUSE_EXTRAS];
  if (cfg.lighthouse_metrics) supervisorOnly.push(...LIGHTHOUSE_METRICS);
  if (cfg.message_metrics) supervisorOnly.push('messages.tx.punchy');
  for (const name of supervisorOnly) {
    gauge(name, () => sumOf(src.supervisorCounters(), name));
  }
  for (const name of Object.keys(src.gauges())) gauge(name, () => src.gauges()[name] ?? 0);
  new Gauge({
    name: metricName(cfg, 'handshakes'),
    help: 'handshakes',
    labelNames: ['type'],
    registers: [reg],
    collect() {
      const snap = src.handshakes();
      for (const type of HISTOGRAM_TYPES) this.set({ type }, snap[type]);
    },
  });
  if (src.udpSockets > 0 && src.udpMemInfo(0) !== undefined) {
    for (let i = 0; i < src.udpSockets; i++) {
      SK_MEMINFO_FIELDS.forEach((field, j) => gauge(`udp.${i}.${field}`, () => src.udpMemInfo(i)?.[j] ?? 0));
    }
  }

  const perRoutine = COUNTER_NAMES.filter((n): n is CounterName => n.startsWith('routine.'));
  for (const name of perRoutine) {
    new Gauge({
      name: metricName(cfg, name),
      help: `${name} (per routine)`,
      labelNames: ['routine'],
      registers: [reg],
      collect() {
        for (let r = 0; r < src.routines; r++) this.set({ routine: String(r) }, src.routineCounter(r, C[name]));
      },
    });
  }
  new Gauge({
    name: metricName(cfg, 'info'),
    help: 'info',
    labelNames: ['version', 'goversion'],
    registers: [reg],
    collect() {
      this.set({ version: version, goversion: `node ${process.version}` }, 1);
    },
  });
  return reg;
}

function sumOf(entries: Iterable<[string, number]>, name: string): number {
  for (const [k, v] of entries) if (k === name) return v;
  return 0;
}

/** Starts the HTTP endpoint; resolves once listening. */
export async function serveMetrics(cfg: NebulaConfig['stats'], reg: Registry, log: Logger): Promise<http.Server> {
  const listen = parseHostPort(cfg.listen);
  if (!listen) throw new Error(`stats.listen: ${JSON.stringify(cfg.listen)} is not a host:port address`);
  const { host, port } = listen;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== cfg.path) {
      res.writeHead(404).end();
      return;
    }
    reg.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': reg.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  log.info('Starting prometheus metrics endpoint', { listen: cfg.listen, path: cfg.path });
  return server;
}
