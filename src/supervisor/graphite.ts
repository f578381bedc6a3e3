/**
 * `stats.type: graphite`, as Go nebula 1.6.1 does it (stats.go startGraphiteStats with cyberdelia/go-metrics-graphite
 * at 39f87cc): `stats.host` is resolved once at start (an error there is a start-up error, as Go's ResolveTCPAddr);
 * then every `stats.interval`, first one interval after start (Go's time.Tick), one TCP connection to it carries
 * every series of the catalogue (metrics-catalogue.ts) in the plaintext protocol, `<prefix>.<dotted name>.<field>
 * <value> <unix seconds>\n`, and is closed:
 *   counter   -> `.count` (%d) and `.count_ps` (count / interval in seconds, %.2f)
 *   gauge     -> `.value` (%d)
 *   histogram -> `.count`, `.min`, `.max` (%d), `.mean`, `.std-dev`, `.50-percentile`, `.75-percentile`,
 *                `.95-percentile`, `.99-percentile`, `.999-percentile` (%.2f)
 * Our per-routine counters are sent as counters named `routine.<i>.<rest of the name>`. `stats.protocol` is tcp:
 * Go refuses udp (its ResolveTCPAddr knows no "udp" network), and so does our config (unsupported.ts).
 *
 * A failed export is logged and the next interval tries again (Go logs it too). A connection that is still busy when
 * the next interval comes (a slow server) is given up after one interval, so exports never pile up.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { parseHostPort } from '../shared/util/host-port';
import type { MetricDef } from './metrics-catalogue';

/** go-metrics-graphite's Percentiles and their keys (strconv.FormatFloat(p*100) without its dot). */
const PERCENTILES = [
  ['50', 'perc50'],
  ['75', 'perc75'],
  ['95', 'perc95'],
  ['99', 'perc99'],
  ['999', 'perc999'],
] as const;

/** Go's %d of an int64 (the values are integers already; a fraction would be cut, as a conversion would). */
const int = (v: number): string => String(Math.trunc(v));
/** Go's %.2f. */
const fixed2 = (v: number): string => v.toFixed(2);

/** The plaintext lines of one export (each ends with a newline). */
export function graphiteLines(defs: readonly MetricDef[], prefix: string, intervalMs: number, unixSeconds: number): string[] {
  const flushSeconds = intervalMs / 1000;
  const out: string[] = [];
  const line = (name: string, field: string, value: string): void => void out.push(`${prefix}.${name}.${field} ${value} ${unixSeconds}\n`);
  const counter = (name: string, count: number): void => {
    line(name, 'count', int(count));
    line(name, 'count_ps', fixed2(count / flushSeconds));
  };
  for (const def of defs) {
    switch (def.kind) {
      case 'counter':
        counter(def.name, def.read());
        break;
      case 'gauge':
        line(def.name, 'value', int(def.read()));
        break;
      case 'histogram': {
        const h = def.read();
        line(def.name, 'count', int(h.count));
        line(def.name, 'min', int(h.min));
        line(def.name, 'max', int(h.max));
        line(def.name, 'mean', fixed2(h.mean));
        line(def.name, 'std-dev', fixed2(h.stddev));
        for (const [key, field] of PERCENTILES) line(def.name, `${key}-percentile`, fixed2(h[field]));
        break;
      }
      case 'per-routine': {
        const rest = def.name.replace(/^routine\./, '');
        def.read().forEach((v, r) => counter(`routine.${r}.${rest}`, v));
        break;
      }
    }
  }
  return out;
}

export interface GraphiteTarget {
  host: string;
  port: number;
}

/** `stats.host` resolved as Go's ResolveTCPAddr does at start (an IPv4 address preferred); throws Go's wording. */
export async function resolveGraphiteHost(text: string): Promise<GraphiteTarget> {
  const hp = parseHostPort(text);
  if (!hp) throw new Error(`error while setting up graphite sink: address ${text}: missing port in address`);
  try {
    const addrs = await dns.lookup(hp.host, { all: true });
    const chosen = addrs.find((a) => a.family === 4) ?? addrs[0];
    if (!chosen) throw new Error(`no address for ${hp.host}`);
    return { host: chosen.address, port: hp.port };
  } catch (err) {
    throw new Error(`error while setting up graphite sink: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Sends one export over a fresh TCP connection; resolves once it is written and the connection closed. */
export function sendGraphite(to: GraphiteTarget, payload: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: to.host, port: to.port });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`no progress in ${timeoutMs} ms`)));
    sock.once('connect', () => sock.end(payload, () => sock.destroy()));
    sock.once('error', reject);
    sock.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}

export class GraphiteExporter {
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly cfg: Pick<NebulaConfig['stats'], 'prefix' | 'interval'>,
    private readonly to: GraphiteTarget,
    private readonly defs: readonly MetricDef[],
    private readonly log: Logger,
  ) {}

  start(): void {
    this.log.info(`Starting graphite. Interval: ${this.cfg.interval / 1000}s, prefix: ${this.cfg.prefix}, addr: ${this.to.host}:${this.to.port}`);
    this.timer = setInterval(() => void this.exportOnce(), this.cfg.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One export now; false when the previous one is still under way (nothing is sent then) or this one failed. */
  async exportOnce(): Promise<boolean> {
    if (this.busy) return false;
    this.busy = true;
    try {
      const lines = graphiteLines(this.defs, this.cfg.prefix, this.cfg.interval, Math.floor(Date.now() / 1000));
      await sendGraphite(this.to, lines.join(''), this.cfg.interval);
      return true;
    } catch (err) {
      this.log.warn('Graphite export failed', { error: err instanceof Error ? err.message : String(err), addr: `${this.to.host}:${this.to.port}` });
      return false;
    } finally {
      this.busy = false;
    }
  }
}

/** Resolves `stats.host` and starts the exports; throws (a start-up error) when the host cannot be resolved. */
export async function startGraphite(cfg: NebulaConfig['stats'], defs: readonly MetricDef[], log: Logger): Promise<GraphiteExporter> {
  const exporter = new GraphiteExporter(cfg, await resolveGraphiteHost(cfg.host), defs, log);
  exporter.start();
  return exporter;
}
