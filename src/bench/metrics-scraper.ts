/**
 * A Prometheus-like scraper for the benchmark's metrics-cost comparison, run as its own process inside a node's
 * network namespace (the endpoint listens on that namespace's loopback, which the benchmark process cannot reach):
 *
 *   node dist/bench/metrics-scraper.js <url> <interval ms>
 *
 * GETs <url> every interval (a fresh connection each time, as a scraper whose keep-alive lapsed between scrapes
 * would) until SIGTERM, then prints one JSON line: `ScrapeSummary`. It runs in both arms of the comparison, so the
 * client side costs both the same and only the node's serving differs; against a node without `stats` every
 * attempt is refused, which is counted, not an error.
 */
import http from 'node:http';

export interface ScrapeSummary {
  ok: number;
  failed: number;
  /** Mean body size of the successful scrapes. */
  meanBytes: number;
  /** Median time from request to the end of the body, ms. */
  medianMs: number;
  /** Series names (without labels) seen in the last successful body. */
  series: string[];
  /** CPU the scraper itself used from its first scrape on, ms: on this shared machine it competes with the nodes. */
  cpuMs: number;
}

function scrapeOnce(url: string): Promise<{ body: string; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        resolve({ body: Buffer.concat(chunks).toString('utf8'), ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

function main(): void {
  const [url, intervalArg] = process.argv.slice(2);
  const intervalMs = Number(intervalArg);
  if (!url || !(intervalMs >= 10)) {
    process.stderr.write('usage: metrics-scraper.js <url> <interval ms (>= 10)>\n');
    process.exit(64);
  }
  let ok = 0;
  let failed = 0;
  let bytes = 0;
  const times: number[] = [];
  let lastBody = '';
  let inFlight = false;
  const cpu0 = process.cpuUsage();
  const tick = (): void => {
    // A scrape still running when the next is due is not doubled up (Prometheus skips it too).
    if (inFlight) return;
    inFlight = true;
    scrapeOnce(url).then(
      ({ body, ms }) => {
        ok++;
        bytes += body.length;
        times.push(ms);
        lastBody = body;
        inFlight = false;
      },
      () => {
        failed++;
        inFlight = false;
      },
    );
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  process.once('SIGTERM', () => {
    clearInterval(timer);
    times.sort((a, b) => a - b);
    const series = [...new Set(lastBody.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!))];
    const cpu = process.cpuUsage(cpu0);
    const medianMs = times.length > 0 ? times[times.length >> 1]! : NaN;
    const summary: ScrapeSummary = { ok, failed, meanBytes: ok > 0 ? bytes / ok : 0, medianMs, series, cpuMs: (cpu.user + cpu.system) / 1000 };
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
  });
  // Printed once the handler is in place: the benchmark waits for it before it measures.
  process.stdout.write('scraping\n');
}

if (require.main === module) main();
