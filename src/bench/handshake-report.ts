/**
 * The handshake-rate benchmark's numbers (pure: no mesh, no sockets): what one load step measured, the handshakes it
 * completed, what bounded the responder in it, a run's metrics from its steps, and the side-by-side table.
 *
 * A step offers stage 1s at a fixed rate (open loop) and counts, in its measured window (the step after a warm-up
 * share), the stage 2s that arrived. A reply counts only as far as verification confirms it: `matched` replies
 * look like stage 2s to one of our attempts, a sample of them is completed as the initiator would, and the step's
 * completed handshakes are matched × verified / sampled (exact when every reply was sampled).
 */
import { median } from './probes';
import type { RunRecord } from './report';

export interface StepResult {
  /** Stage 1s offered per second. */
  rate: number;
  /** Length of the measured window, s. */
  windowS: number;
  /** Stage 1s sent in the window, and sends the socket refused. */
  sent: number;
  sendErrors: number;
  /** Replies in the window shaped as a stage 2 to a distinct attempt of ours, in time for its initiator. */
  matched: number;
  /** Replies in the window that came after an initiator would have given up (INITIATOR_GIVES_UP_MS): not counted. */
  late: number;
  /** Of those, how many were completed as the initiator would, and how many of these succeeded. */
  sampled: number;
  verified: number;
  /** Why sampled replies failed, by reason. */
  failures: Record<string, number>;
  /** Median time from a stage 1 leaving to its stage 2 arriving, ms (NaN: no reply). */
  latencyMs: number;
  /** CPU-seconds in the window: the responder's whole process tree (/proc stat), and the generator's. */
  responderCpuS: number;
  generatorCpuS: number;
  /** Seconds the responder's threads ran, and waited runnable for a CPU (schedstat; the machine is shared). */
  responderRunS: number;
  responderWaitS: number;
  /** nebula-ts: the same for the supervisor's main thread, the event loop that does every handshake. */
  supervisorRunS?: number;
  supervisorWaitS?: number;
  /** Datagrams dropped in the window at the responder's underlay socket and at the generator's sockets (full receive buffers). */
  responderSocketDrops: number;
  generatorSocketDrops: number;
  /** Packets the kernel dropped from its input backlogs in the window (machine-wide: the veths queue there). */
  backlogDrops: number;
  /**
   * nebula-ts, from control-socket counters over the window: stage 1s received, shed by the handshake limiter,
   * tunnels refused by a full host map. Absent when a reading came back late (a saturated supervisor answers
   * after its backlog: the numbers would belong to another moment); `countersLate` then says so.
   */
  handshakesRx?: number;
  limited?: number;
  refused?: number;
  countersLate?: boolean;
}

/** Handshakes the step completed in its window. */
export function completed(s: StepResult): number {
  return s.sampled > 0 ? (s.matched * s.verified) / s.sampled : 0;
}

export function completedPerSecond(s: StepResult): number {
  return s.windowS > 0 ? completed(s) / s.windowS : NaN;
}

/** Share of the window's stage 1s answered with a completing stage 2. */
export function answeredShare(s: StepResult): number {
  return s.sent > 0 ? completed(s) / s.sent : NaN;
}

const pct = (part: number, whole: number): string => `${Math.round((100 * part) / Math.max(1, whole))} %`;
/** A CPU this busy (cores over the window) is taken as the limit of a single-threaded path. */
const BUSY_CORE = 0.85;
/** Below this share answered, a step is saturated. */
const SATURATED = 0.9;
/** A loss path that took at least this share of the stage 1s is named. */
const NOTABLE = 0.05;
/** A median answer this late means stage 1s wait in a queue before the handshake code. */
const QUEUED_MS = 500;

/**
 * What bounded the responder in a step, from the evidence the step carries: every loss path that took a notable
 * share of the stage 1s, and the CPUs that were full. Not saturated when nearly every stage 1 was answered.
 */
export function boundOf(s: StepResult): string {
  if (answeredShare(s) >= SATURATED) return 'not saturated (offered rate answered)';
  const why: string[] = [];
  if (s.limited !== undefined && s.limited >= NOTABLE * s.sent) why.push(`handshake limiter (shed ${pct(s.limited, s.sent)})`);
  if (s.refused !== undefined && s.refused > 0) why.push(`host map full, tunnels.max (${s.refused} refused)`);
  if (s.responderSocketDrops >= NOTABLE * s.sent) why.push(`responder socket overflowed (${pct(s.responderSocketDrops, s.sent)} dropped: not read fast enough)`);
  if (s.backlogDrops >= NOTABLE * s.sent) why.push(`kernel input backlog dropped ${s.backlogDrops} (softirqs starved: machine overloaded)`);
  const cores = (run: number, wait: number): string => `ran ${(run / s.windowS).toFixed(2)} + waited ${(wait / s.windowS).toFixed(2)} cores`;
  if (s.supervisorRunS !== undefined && s.supervisorWaitS !== undefined) {
    if ((s.supervisorRunS + s.supervisorWaitS) / s.windowS >= BUSY_CORE) why.push(`supervisor event loop saturated (${cores(s.supervisorRunS, s.supervisorWaitS)})`);
  } else if ((s.responderRunS + s.responderWaitS) / s.windowS >= BUSY_CORE) why.push(`responder CPU (${cores(s.responderRunS, s.responderWaitS)})`);
  if (s.late >= NOTABLE * s.sent) why.push(`${s.late} replies came after their initiator would have given up`);
  if (s.latencyMs >= QUEUED_MS) why.push(`stage 1s queue before the handshake code (median answer after ${(s.latencyMs / 1000).toFixed(1)} s)`);
  if (s.generatorSocketDrops >= NOTABLE * s.sent) why.push(`generator socket overflowed (${pct(s.generatorSocketDrops, s.sent)})`);
  if (s.generatorCpuS / s.windowS >= BUSY_CORE) why.push('generator CPU (the measurement itself)');
  if (s.sampled > s.verified) why.push(`replies failing verification (${s.sampled - s.verified} of ${s.sampled} sampled)`);
  if (s.sendErrors >= NOTABLE * s.sent) why.push(`sends refused (${s.sendErrors})`);
  if (why.length === 0) why.push(`${pct(s.sent - completed(s), s.sent)} unanswered, cause not seen (CPU shared with other load?)`);
  return why.join('; ');
}

/**
 * A run's metrics. The headline is the top step (the highest offered rate: the responder saturated, bursts a token
 * bucket allows long spent) as the sustained rate; the peak over all steps, and costs at the lowest step (every
 * stage 1 answered: the cost of a handshake without overload), are context.
 */
export function handshakeMetrics(steps: readonly StepResult[]): Record<string, number> {
  if (steps.length === 0) return {};
  const top = steps[steps.length - 1]!;
  const low = steps[0]!;
  const per1000 = (s: StepResult): number => (s.responderCpuS / Math.max(1, completed(s))) * 1000;
  const m: Record<string, number> = {
    hs_per_s: completedPerSecond(top),
    hs_peak_per_s: Math.max(...steps.map(completedPerSecond).filter(Number.isFinite)),
    hs_answered_top: answeredShare(top),
    hs_cpu_s_per_1000: per1000(top),
    hs_cpu_s_per_1000_low: per1000(low),
    hs_latency_ms_low: low.latencyMs,
    hs_latency_ms_top: top.latencyMs,
    hs_responder_cpus_top: top.responderCpuS / top.windowS,
    hs_responder_wait_top: top.responderWaitS / top.windowS,
    hs_generator_cpus_top: top.generatorCpuS / top.windowS,
  };
  if (top.supervisorRunS !== undefined) m.hs_supervisor_cpus_top = top.supervisorRunS / top.windowS;
  const sampled = steps.reduce((a, s) => a + s.sampled, 0);
  m.hs_verified_share = sampled > 0 ? steps.reduce((a, s) => a + s.verified, 0) / sampled : NaN;
  return m;
}

interface RowDef {
  key: string;
  label: string;
  better: 'higher' | 'lower' | 'none';
  digits: number;
}

export const HANDSHAKE_ROWS: readonly RowDef[] = [
  { key: 'hs_per_s', label: 'handshakes completed per s, sustained (top offered rate)', better: 'higher', digits: 0 },
  { key: 'hs_peak_per_s', label: 'handshakes completed per s, best step', better: 'higher', digits: 0 },
  { key: 'hs_cpu_s_per_1000', label: 'responder CPU-s per 1000 handshakes (top rate)', better: 'lower', digits: 2 },
  { key: 'hs_cpu_s_per_1000_low', label: 'responder CPU-s per 1000 handshakes (lowest rate)', better: 'lower', digits: 2 },
  { key: 'hs_latency_ms_low', label: 'stage 1 → stage 2, median ms (lowest rate)', better: 'lower', digits: 2 },
  { key: 'hs_latency_ms_top', label: 'stage 1 → stage 2, median ms (top rate)', better: 'lower', digits: 0 },
  { key: 'hs_answered_top', label: 'share of stage 1s answered (top rate)', better: 'none', digits: 2 },
  { key: 'hs_responder_cpus_top', label: 'responder CPUs used (top rate, all processes)', better: 'none', digits: 2 },
  { key: 'hs_supervisor_cpus_top', label: '… of which the supervisor\'s event loop (nebula-ts)', better: 'none', digits: 2 },
  { key: 'hs_responder_wait_top', label: 'CPUs the responder waited for in run queues (top rate)', better: 'none', digits: 2 },
  { key: 'hs_generator_cpus_top', label: 'load generator\'s CPUs (top rate)', better: 'none', digits: 2 },
  { key: 'hs_verified_share', label: 'sampled replies that completed the handshake', better: 'none', digits: 2 },
];

/** A handshake run: the usual record (cipher and routines are the mesh's) with its steps and bound. */
export interface HandshakeRun extends RunRecord {
  steps?: StepResult[];
  /** What bounded the top step. */
  bound?: string;
  /** The generator's own figures: preparation time and CPU, datagrams that were no stage 2 of ours, duplicates. */
  generator?: Record<string, number>;
}

/** Medians per implementation, ratios to the first (> 1 better), and what bounded each implementation's top step. */
export function handshakeTable(runs: readonly HandshakeRun[], impls: readonly string[]): string {
  const ok = runs.filter((r) => !r.error);
  const med = (impl: string, key: string): number => median(ok.filter((r) => r.impl === impl).map((r) => r.metrics[key] ?? NaN));
  const [ref, ...others] = impls;
  const header = ['', ...impls, ...others.map((o) => `${o}/${ref}`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const def of HANDSHAKE_ROWS) {
    const values = impls.map((i) => med(i, def.key));
    if (!values.some(Number.isFinite)) continue;
    const refValue = values[0]!;
    const ratios = values.slice(1).map((v) => {
      const r = def.better === 'none' ? NaN : def.better === 'higher' ? v / refValue : refValue / v;
      return Number.isFinite(r) ? r.toFixed(2) : '–';
    });
    lines.push(`| ${def.label} | ${[...values.map((v) => (Number.isFinite(v) ? v.toFixed(def.digits) : '–')), ...ratios].join(' | ')} |`);
  }
  for (const impl of impls) {
    const bounds = ok.filter((r) => r.impl === impl && r.bound).map((r) => r.bound!);
    if (bounds.length > 0) lines.push(`\n${impl} top step bounded by: ${[...new Set(bounds)].join(' | ')}`);
  }
  return lines.join('\n');
}

/** One run as a progress line: completed per s at each offered rate, then the bound of its top step. */
export function handshakeRunLine(r: HandshakeRun): string {
  const head = `  rep ${r.rep + 1} ${r.impl} (load ${r.load1.toFixed(1)}): `;
  if (r.error) return `${head}FAILED: ${r.error.split('\n')[0]}\n`;
  const steps = (r.steps ?? []).map((s) => `${s.rate}→${completedPerSecond(s).toFixed(0)}`).join(' ');
  const cpu = r.metrics.hs_cpu_s_per_1000;
  return `${head}offered→completed/s ${steps}; ${cpu !== undefined ? `${cpu.toFixed(2)} CPU-s/1000; ` : ''}top bounded by ${r.bound ?? '?'}\n`;
}
