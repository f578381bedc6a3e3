/**
 * A histogram with go-metrics' semantics (rcrowley/go-metrics StandardHistogram over NewExpDecaySample(1028, 0.015)),
 * as Nebula 1.6.1 keeps its `handshakes` durations: `count` is every value ever recorded, the other statistics are
 * over a forward-decaying reservoir of at most 1028 values biased towards the last few minutes. Until the reservoir
 * is full it holds every value, so the statistics are then exact.
 *
 * Nebula's Prometheus bridge exports a histogram as one gauge with a `type` label (nebula-spec §9.1); `snapshot()`
 * gives those values, keyed by the label.
 */

export const HISTOGRAM_TYPES = ['count', 'max', 'min', 'mean', 'stddev', 'perc75', 'perc95', 'perc99', 'perc999', 'sum', 'variance'] as const;
export type HistogramType = (typeof HISTOGRAM_TYPES)[number];
/** The label values, plus the median: go-metrics' graphite exporter sends the 50th percentile too (graphite.ts). */
export type HistogramSnapshot = Record<HistogramType, number> & { perc50: number };

const RESERVOIR = 1028;
const ALPHA = 0.015;
/** go-metrics rescales the priorities every hour so they stay finite. */
const RESCALE_MS = 3_600_000;

interface Sampled {
  priority: number;
  value: number;
}

export class Histogram {
  private count = 0;
  private readonly sample: Sampled[] = [];
  private t0: number;
  private nextRescale: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.t0 = now();
    this.nextRescale = this.t0 + RESCALE_MS;
  }

  update(value: number): void {
    const t = this.now();
    this.count++;
    if (this.sample.length === RESERVOIR) this.removeLowestPriority();
    // go-metrics: priority = e^(alpha·(t - t0)) / u, u uniform in (0, 1]; the lowest priority leaves first.
    const u = 1 - this.random();
    this.sample.push({ priority: Math.exp(((t - this.t0) / 1000) * ALPHA) / u, value });
    if (t > this.nextRescale) {
      const factor = Math.exp((-ALPHA * (t - this.t0)) / 1000);
      for (const s of this.sample) s.priority *= factor;
      this.t0 = t;
      this.nextRescale = t + RESCALE_MS;
    }
  }

  snapshot(): HistogramSnapshot {
    const values = this.sample.map((s) => s.value).sort((a, b) => a - b);
    const n = values.length;
    let sum = 0;
    for (const v of values) sum += v;
    const mean = n === 0 ? 0 : sum / n;
    let squares = 0;
    for (const v of values) squares += (v - mean) ** 2;
    const variance = n === 0 ? 0 : squares / n;
    return {
      count: this.count,
      max: n === 0 ? 0 : values[n - 1]!,
      min: n === 0 ? 0 : values[0]!,
      mean,
      stddev: Math.sqrt(variance),
      perc50: percentile(values, 0.5),
      perc75: percentile(values, 0.75),
      perc95: percentile(values, 0.95),
      perc99: percentile(values, 0.99),
      perc999: percentile(values, 0.999),
      sum,
      variance,
    };
  }

  private removeLowestPriority(): void {
    let low = 0;
    for (let i = 1; i < this.sample.length; i++) if (this.sample[i]!.priority < this.sample[low]!.priority) low = i;
    this.sample[low] = this.sample[this.sample.length - 1]!;
    this.sample.pop();
  }
}

/** go-metrics' SamplePercentiles: position p·(n+1), linear interpolation between the neighbouring values. */
function percentile(sorted: number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const pos = p * (n + 1);
  if (pos < 1) return sorted[0]!;
  if (pos >= n) return sorted[n - 1]!;
  const lower = sorted[Math.floor(pos) - 1]!;
  const upper = sorted[Math.floor(pos)]!;
  return lower + (pos - Math.floor(pos)) * (upper - lower);
}
