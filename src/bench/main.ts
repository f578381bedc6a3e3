/**
 * `npm run bench`: nebula-ts next to Go nebula 1.6.1 on this machine, in one run. For each cipher and routine count,
 * a fresh two-node mesh per implementation (the same certs and config apart from the binary), the implementations
 * alternating A/B/B/A over the repetitions; per run: the first ping after start, ping RTT, iperf3 TCP with 1 and 4
 * streams each way, a 64-byte UDP flood (packets/s, CPU µs and syscalls per packet), CPU-seconds per GB and RSS.
 * Prints medians with ratios to the first implementation (Go by default) and can write every run as JSON.
 * Traffic stays inside the namespaces it creates, which are removed after each run. Needs root, iperf3 and the
 * nebula package; `perf` is optional (syscall counts).
 *
 *   npm run bench [-- --seconds 3 --reps 2 --ciphers aes,chachapoly --routines 1,2 --impls go,ts
 *                     --tests first,ping,tcp1,tcp1r,tcp4,tcp4r,udp --json out.json --baseline /other/checkout --quick
 *                     --metrics-reps 6 --scrape-ms 1000 --metrics-baseline endpoint|none --only table|metrics]
 *
 * Then the metrics cost (metrics-cost.ts, issue 11): nebula-ts with a Prometheus `stats` section, both gates
 * (message_metrics, lighthouse_metrics) on and scraped every `--scrape-ms` (default 1000), against the same endpoint
 * with the gates off, also scraped (`--metrics-baseline endpoint`, the default: what turning the gates on costs), or
 * against nebula-ts without `stats` (`none`: what the endpoint costs at all) (aes, routines 1, TCP 1 stream and
 * the UDP flood, `--metrics-reps` repetitions; 0 leaves it out). `--only table` runs only the side-by-side table, `--only metrics`
 * only the metrics cost, `--only handshakes` only the handshake rate.
 *
 * Then the handshake rate (handshake-phase.ts, issue 13): handshakes per second a responder completes with
 * `--handshake-initiators` (500) initiators of distinct certificates offering stage 1s at stepped rates
 * (`--handshake-rates 250,1000,2000,4000,8000`, `--handshake-step-ms 1000` each), Go and nebula-ts alternating,
 * `--handshake-reps` (2) repetitions; 0 leaves it out.
 *
 * `--baseline DIR` adds implementation `base`: nebula-ts run from DIR/dist (another build, e.g. before a change),
 * measured alternately with the current one. `mix` is a nebula-ts client with a Go server; `offload` is nebula-ts
 * with `tun.offloads: true` (e.g. `--impls go,ts,offload`); `offload-mix` such a client with a Go server.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SCRAPE_INTERVAL_MS, costTable, metricsCost } from './metrics-cost';
import { runMetricsPhase } from './metrics-phase';
import { DEFAULT_INITIATORS, DEFAULT_RATES, DEFAULT_STEP_MS, DEFAULT_VERIFY_PER_STEP, runHandshakePhase } from './handshake-phase';
import { handshakeTable, type HandshakeRun } from './handshake-report';
import { run } from './probes';
import { runLine, table, summarize, type RunRecord } from './report';
import { ALL_TESTS, runOnce, type Impl, type TestName } from './scenario';

interface Options {
  seconds: number;
  reps: number;
  ciphers: Array<'aes' | 'chachapoly'>;
  routines: number[];
  impls: string[];
  tests: Set<TestName>;
  json?: string;
  baseline?: string;
  /** Repetitions of the metrics-cost comparison (0: not run). */
  metricsReps: number;
  /** How often the metrics-cost comparison scrapes each node. */
  scrapeMs: number;
  /** The metrics-cost comparison's off arm: the endpoint with the gates off, or no `stats` at all. */
  metricsBaseline: 'endpoint' | 'none';
  /** Run only one of the parts. */
  only?: 'table' | 'metrics' | 'handshakes';
  /** Repetitions of the handshake-rate comparison (0: not run), its offered rates, step length and initiators. */
  handshakeReps: number;
  handshakeRates: number[];
  handshakeStepMs: number;
  handshakeInitiators: number;
}

const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

function parse(argv: string[]): Options {
  const o: Options = { seconds: 3, reps: 2, ciphers: ['aes', 'chachapoly'], routines: [1, 2], impls: ['go', 'ts'], tests: new Set(ALL_TESTS), metricsReps: 6, scrapeMs: SCRAPE_INTERVAL_MS, metricsBaseline: 'endpoint', handshakeReps: 2, handshakeRates: [...DEFAULT_RATES], handshakeStepMs: DEFAULT_STEP_MS, handshakeInitiators: DEFAULT_INITIATORS };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const flag = argv[i]!;
    if (flag === '--quick') {
      Object.assign(o, { reps: 1, ciphers: ['aes'], routines: [1], metricsReps: 1, handshakeReps: 1 });
      continue;
    }
    i++;
    if (flag === '--seconds') o.seconds = Math.min(60, Math.max(1, Number(v)));
    else if (flag === '--reps') o.reps = Math.min(20, Math.max(1, Number(v)));
    else if (flag === '--ciphers') o.ciphers = list(v).map((c) => (c === 'chachapoly' ? 'chachapoly' : 'aes'));
    else if (flag === '--routines') o.routines = list(v).map((r) => Math.max(1, Number(r)));
    else if (flag === '--impls') o.impls = list(v);
    else if (flag === '--tests') o.tests = new Set(list(v).filter((t): t is TestName => (ALL_TESTS as readonly string[]).includes(t)));
    else if (flag === '--json') o.json = v;
    else if (flag === '--baseline') o.baseline = path.resolve(v ?? '.');
    else if (flag === '--metrics-reps') o.metricsReps = Math.min(50, Math.max(0, Number(v)));
    else if (flag === '--scrape-ms') o.scrapeMs = Math.min(60_000, Math.max(100, Number(v)));
    else if (flag === '--metrics-baseline') {
      if (v !== 'endpoint' && v !== 'none') throw new Error(`--metrics-baseline takes endpoint or none, got ${String(v)}`);
      o.metricsBaseline = v;
    } else if (flag === '--only') {
      if (v !== 'table' && v !== 'metrics' && v !== 'handshakes') throw new Error(`--only takes table, metrics or handshakes, got ${String(v)}`);
      o.only = v;
    } else if (flag === '--handshake-reps') o.handshakeReps = Math.min(20, Math.max(0, Number(v)));
    else if (flag === '--handshake-rates') o.handshakeRates = list(v).map(Number);
    else if (flag === '--handshake-step-ms') o.handshakeStepMs = Math.min(60_000, Math.max(200, Number(v)));
    else if (flag === '--handshake-initiators') o.handshakeInitiators = Math.min(4000, Math.max(1, Number(v)));
    else throw new Error(`unknown option ${flag}`);
  }
  if (o.baseline && !o.impls.includes('base')) o.impls.push('base');
  return o;
}

function implFor(label: string, o: Options): Impl {
  const root = path.resolve(__dirname, '..', '..');
  switch (label) {
    case 'go':
      return { label, client: 'go', server: 'go', root };
    case 'ts':
      return { label, client: 'ts', server: 'ts', root };
    case 'mix':
      return { label, client: 'ts', server: 'go', root };
    case 'offload':
      // nebula-ts with the tun offloads on (tun.offloads, docs/performance.md "Change 3").
      return { label, client: 'ts', server: 'ts', root, config: { tun: { offloads: true } } };
    case 'offload-mix':
      // nebula-ts with tun.offloads as the client of a Go server: what a Go peer sees of the offloads.
      return { label, client: 'ts', server: 'go', root, config: { tun: { offloads: true } } };
    case 'base':
      if (!o.baseline) throw new Error('implementation base needs --baseline DIR');
      return { label, client: 'ts', server: 'ts', root: o.baseline };
    default:
      throw new Error(`unknown implementation ${label} (go, ts, offload, mix, offload-mix, base)`);
  }
}

async function has(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`], 5000).then(
    () => true,
    () => false,
  );
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stdout.write('The benchmark builds network namespaces: run it as root.\n');
    return 1;
  }
  const doTable = o.only === undefined || o.only === 'table';
  const doHandshakes = (o.only === undefined || o.only === 'handshakes') && o.handshakeReps > 0;
  // The metrics-cost part runs nebula-ts alone: Go nebula is needed only for the table and the handshake rate.
  const needs = [...(doTable || doHandshakes ? ['nebula'] : []), ...(o.only === 'handshakes' ? [] : ['iperf3', 'ping'])];
  for (const cmd of needs) {
    if (!(await has(cmd))) {
      process.stdout.write(`The benchmark needs ${cmd} (apt-get install nebula iperf3 iputils-ping).\n`);
      return 1;
    }
  }
  const perf = await run('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter', '--', 'true'], 10_000).then(
    () => true,
    () => false,
  );
  const impls = o.impls.map((l) => implFor(l, o));
  const load0 = os.loadavg();
  const machine = `MTU 1300, ${os.cpus().length} CPUs, load average ${load0.map((l) => l.toFixed(1)).join(' ')}`;
  process.stdout.write(
    doTable
      ? `nebula-ts vs Go nebula 1.6.1: ${o.reps} repetition(s) x ${o.seconds} s, ciphers ${o.ciphers.join(',')}, routines ${o.routines.join(',')}, ` +
          `implementations ${o.impls.join(',')}, ${machine}${perf ? '' : ' (no usable perf: no syscall counts)'}\n`
      : o.only === 'handshakes'
        ? `handshake rate only: ${machine}\n`
        : `metrics cost only: ${o.seconds} s per test, ${machine}\n`,
  );
  const runs: RunRecord[] = [];
  for (let rep = 0; doTable && rep < o.reps; rep++) {
    for (const cipher of o.ciphers) {
      for (const routines of o.routines) {
        // A/B then B/A: neither implementation always runs first (warmer caches, a load that drifts).
        const order = rep % 2 === 0 ? impls : [...impls].reverse();
        for (const impl of order) {
          const rec: RunRecord = { impl: impl.label, cipher, routines, rep, load1: os.loadavg()[0]!, metrics: {} };
          try {
            rec.metrics = await runOnce({ impl, cipher, routines, seconds: o.seconds, tests: o.tests, perf });
          } catch (err) {
            rec.error = err instanceof Error ? err.message : String(err);
          }
          runs.push(rec);
          process.stdout.write(runLine(rec));
        }
      }
    }
  }
  const summary = summarize(runs.filter((r) => !r.error));
  const doMetrics = (o.only === undefined || o.only === 'metrics') && o.metricsReps > 0;
  const baseline = o.metricsBaseline === 'endpoint' ? 'prometheus with both gates off' : 'nebula-ts without stats';
  if (doMetrics) process.stdout.write(`\nmetrics cost: ${baseline} vs prometheus with message_metrics and lighthouse_metrics, scraped every ${o.scrapeMs} ms (aes, routines 1), ${o.metricsReps} repetition(s)\n`);
  const metricsRuns = doMetrics ? await runMetricsPhase({ reps: o.metricsReps, seconds: o.seconds, root: path.resolve(__dirname, '..', '..'), scrapeIntervalMs: o.scrapeMs, baseline: o.metricsBaseline, write: (t) => process.stdout.write(t) }) : [];
  const cost = metricsCost(metricsRuns);
  // Go and nebula-ts only: the handshake responder is the same code in every nebula-ts variant.
  const hsImpls = o.impls.filter((i): i is 'go' | 'ts' => i === 'go' || i === 'ts');
  if (doHandshakes) {
    process.stdout.write(`\nhandshake rate: ${o.handshakeInitiators} initiators with distinct certificates, offered ${o.handshakeRates.join(',')} stage 1/s for ${o.handshakeStepMs} ms each (last 2/3 measured), ${o.handshakeReps} repetition(s), ${hsImpls.join(',')}\n`);
  }
  const hsRuns: HandshakeRun[] = doHandshakes
    ? await runHandshakePhase({ reps: o.handshakeReps, impls: hsImpls, root: path.resolve(__dirname, '..', '..'), rates: o.handshakeRates, stepMs: o.handshakeStepMs, initiators: o.handshakeInitiators, verifyPerStep: DEFAULT_VERIFY_PER_STEP, write: (t) => process.stdout.write(t) })
    : [];
  const load1 = os.loadavg();
  for (const routines of doTable ? o.routines : []) {
    process.stdout.write(`\nroutines ${routines}, medians of ${o.reps}; ratios > 1 are better than ${o.impls[0]}:\n\n`);
    process.stdout.write(table(summary, o.impls, o.ciphers, routines) + '\n');
  }
  if (doMetrics) {
    const loads = metricsRuns.map((r) => r.load1);
    process.stdout.write(`\nmetrics cost, medians of ${o.metricsReps} (load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}); cost > 0 means slower or dearer with metrics on:\n\n`);
    process.stdout.write(costTable(cost) + '\n');
  }
  if (doHandshakes) {
    const loads = hsRuns.map((r) => r.load1);
    process.stdout.write(`\nhandshake rate, medians of ${o.handshakeReps} (load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}); ratios > 1 are better than ${hsImpls[0]}:\n\n`);
    process.stdout.write(handshakeTable(hsRuns, hsImpls) + '\n');
  }
  process.stdout.write(`\nload average at the end: ${load1.map((l) => l.toFixed(1)).join(' ')}\n`);
  if (o.json) {
    const doc = { date: new Date().toISOString(), kernel: os.release(), cpus: os.cpus().length, loadavgStart: load0, loadavgEnd: load1, options: { ...o, tests: [...o.tests] }, runs, summary, metricsCost: { runs: metricsRuns, rows: cost }, handshakes: hsRuns };
    writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
    process.stdout.write(`results written to ${o.json}\n`);
  }
  return [...runs, ...metricsRuns, ...hsRuns].some((r) => r.error) ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
