/**
 * Runs the metrics-cost comparison (metrics-cost.ts): nebula-ts with the Prometheus endpoint and both gates off (or,
 * with baseline 'none', without `stats`), then with both gates on, in one
 * repetition after another, the order flipped each repetition (A/B then B/A) as the main comparison does. Each run
 * is a fresh two-node mesh (aes, one routine), scraped every `scrapeIntervalMs` (default: each second) in both arms,
 * measuring TCP with one stream and the 64-byte UDP flood.
 */
import os from 'node:os';
import { METRICS_OFF, METRICS_ON } from './metrics-cost';
import { runLine, type RunRecord } from './report';
import { runOnce, type Impl, type TestName } from './scenario';

export interface MetricsPhaseOptions {
  reps: number;
  seconds: number;
  /** Project root whose dist/ both arms run. */
  root: string;
  scrapeIntervalMs: number;
  /** The off arm: the endpoint with the gates off ('endpoint'), or no `stats` section ('none'). */
  baseline: 'endpoint' | 'none';
  write: (text: string) => void;
}

const CIPHER = 'aes';
const ROUTINES = 1;
const TESTS: ReadonlySet<TestName> = new Set<TestName>(['tcp1', 'udp']);

export async function runMetricsPhase(o: MetricsPhaseOptions): Promise<RunRecord[]> {
  const off: Impl = { label: METRICS_OFF, client: 'ts', server: 'ts', root: o.root, ...(o.baseline === 'endpoint' ? { stats: 'gates-off' as const } : {}) };
  const on: Impl = { ...off, label: METRICS_ON, stats: 'gates-on' };
  const runs: RunRecord[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    for (const impl of rep % 2 === 0 ? [off, on] : [on, off]) {
      const rec: RunRecord = { impl: impl.label, cipher: CIPHER, routines: ROUTINES, rep, load1: os.loadavg()[0]!, metrics: {} };
      try {
        // No perf: its tracepoint counting would add a per-syscall cost to both arms and noise to the difference.
        rec.metrics = await runOnce({ impl, cipher: CIPHER, routines: ROUTINES, seconds: o.seconds, tests: TESTS, perf: false, scrapeIntervalMs: o.scrapeIntervalMs });
      } catch (err) {
        rec.error = err instanceof Error ? err.message : String(err);
      }
      runs.push(rec);
      o.write(runLine(rec));
    }
  }
  return runs;
}
