/**
 * The Prometheus endpoint (`stats.type: prometheus`, served at `stats.listen` + `stats.path`), as Nebula 1.6.1's
 * exporter (nbrownus/go-metrics-prometheus, nebula-spec §9.1) shows the series of the catalogue
 * (metrics-catalogue.ts): every metric is a gauge named `<namespace>_<subsystem>_<dotted name with . - = and space as
 * _>` (empty parts skipped), help = the dotted name; a histogram is one gauge with a `type` label (count, max, min,
 * mean, stddev, perc75, perc95, perc99, perc999, sum, variance); plus `<ns>_<sub>_info` = 1 with labels `version`
 * and `goversion`. Our per-routine series (`routine.*`) carry a `routine` label.
 *
 * Everything is read at scrape time: the routines count into their rows of the shared region and the supervisor sums
 * them here, so counting costs the packet path nothing and no IPC round trip is needed. A routine that is respawned
 * keeps its row, so no total (nor any per-routine series) ever goes down.
 */
import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { parseHostPort } from '../shared/util/host-port';
import { HISTOGRAM_TYPES } from './histogram';
import { metricDefinitions, type MetricDef, type MetricsOptions, type MetricsSource } from './metrics-catalogue';

export type { MetricsSource, MetricsOptions } from './metrics-catalogue';

/** The Prometheus name of a dotted go-metrics name (the bridge's flattenKey, then namespace_subsystem_name). */
export function metricName(cfg: Pick<NebulaConfig['stats'], 'namespace' | 'subsystem'>, dotted: string): string {
  return [cfg.namespace, cfg.subsystem, dotted.replace(/[.\-= ]/g, '_')].filter((p) => p !== '').join('_');
}

function register(reg: Registry, cfg: NebulaConfig['stats'], def: MetricDef): void {
  const name = metricName(cfg, def.name);
  switch (def.kind) {
    case 'counter':
    case 'gauge':
      new Gauge({
        name,
        help: def.name,
        registers: [reg],
        collect() {
          this.set(def.read());
        },
      });
      return;
    case 'histogram':
      new Gauge({
        name,
        help: def.name,
        labelNames: ['type'],
        registers: [reg],
        collect() {
          const snap = def.read();
          for (const type of HISTOGRAM_TYPES) this.set({ type }, snap[type]);
        },
      });
      return;
    case 'per-routine':
      new Gauge({
        name,
        help: `${def.name} (per routine)`,
        labelNames: ['routine'],
        registers: [reg],
        collect() {
          def.read().forEach((v, r) => this.set({ routine: String(r) }, v));
        },
      });
  }
}

export function buildRegistry(o: MetricsOptions, src: MetricsSource, version: string): Registry {
  const reg = new Registry();
  for (const def of metricDefinitions(o, src)) register(reg, o.stats, def);
  new Gauge({
    name: metricName(o.stats, 'info'),
    help: 'Version information for the Nebula binary',
    labelNames: ['version', 'goversion'],
    registers: [reg],
    collect() {
      this.set({ version, goversion: `node ${process.version}` }, 1);
    },
  });
  return reg;
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
