/**
 * Readings the handshake load generator takes at the edges of each step's measured window: the responder's CPU
 * (its whole process tree), how long its threads ran and waited in a run queue, the same for its first process'
 * main thread (nebula-ts' supervisor event loop, where handshakes are done), the generator's own CPU, receive-buffer
 * drops of the responder's underlay socket (UDP and UDP6 tables: Go nebula binds an AF_INET6 socket) and of the
 * generator's sockets (/proc/<pid>/net/* shows the namespace of that process), the kernel's input backlog drops
 * (machine-wide), and for nebula-ts its counters over the control socket.
 *
 * Cheap enough to take while a step runs: the process list is read once, and the counters are asked for without
 * waiting. A saturated supervisor answers late, so each answer carries how long it took; the report uses a reading
 * only when it came back promptly.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { request } from '../ctl/client';
import { cpuSeconds, processTree, schedNs } from './proc-stats';

/** Counters of a nebula-ts responder the benchmark reads (src/shared/state/counters.ts, supervisor counters). */
export const COUNTERS = { rx: 'messages.rx.handshake_ixpsk0', limited: 'routine.dropped.handshake_limited', refused: 'hostmap.refused' } as const;

/** A control-socket answer slower than this no longer describes the moment it was asked at. */
export const PROMPT_ANSWER_MS = 100;
const ANSWER_TIMEOUT_MS = 20_000;

export interface CounterReading {
  values: Record<string, number>;
  /** How long the answer took. */
  answerMs: number;
}

export interface Sample {
  responderCpuS: number;
  /** Every thread of the responder's processes: time run and time waited for a CPU (schedstat). */
  responderRunS: number;
  responderWaitS: number;
  /** The responder's first process' main thread (nebula-ts: the supervisor's event loop). */
  mainThreadRunS: number;
  mainThreadWaitS: number;
  generatorCpuS: number;
  responderDrops: number;
  generatorDrops: number;
  /** Packets the kernel dropped from its per-CPU input backlogs (every namespace: the veths queue there). */
  backlogDrops: number;
  /** nebula-ts: its counters (undefined when the control socket did not answer). */
  counters?: Promise<CounterReading | undefined>;
}

/**
 * Receive-buffer drops summed over the UDP sockets of a /proc/net/udp or udp6 table, only those bound to `port`
 * when given. Lines: `sl local_address rem_address st tx_queue:rx_queue ... drops`, addresses as hex `IP:PORT`.
 */
export function udpDrops(table: string, port?: number): number {
  const suffix = port === undefined ? undefined : `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let drops = 0;
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    if (suffix !== undefined && !f[1]!.endsWith(suffix)) continue;
    drops += Number(f[f.length - 1]) || 0;
  }
  return drops;
}

/** Input backlog drops summed over the CPUs of /proc/net/softnet_stat (second column, hex). */
export function backlogDrops(softnet: string): number {
  let drops = 0;
  for (const line of softnet.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 2) drops += parseInt(f[1]!, 16) || 0;
  }
  return drops;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // the process is gone: its run fails elsewhere
  }
}

/** Run and run-queue wait of one thread, s. */
function threadSched(pid: number, tid: number): { runS: number; waitS: number } {
  const [run, wait] = readText(`/proc/${pid}/task/${tid}/schedstat`).split(' ');
  return { runS: Number(run ?? 0) / 1e9, waitS: Number(wait ?? 0) / 1e9 };
}

export class Sampler {
  private readonly responderPids: number[];

  constructor(
    private readonly responderPid: number,
    private readonly responderPort: number,
    private readonly controlSocket: string | undefined,
  ) {
    this.responderPids = processTree(responderPid);
  }

  take(): Sample {
    const cpu = process.cpuUsage();
    const sched = schedNs(this.responderPids);
    const main = threadSched(this.responderPid, this.responderPid);
    const net = `/proc/${this.responderPid}/net`;
    const s: Sample = {
      responderCpuS: cpuSeconds(this.responderPids),
      responderRunS: sched.runNs / 1e9,
      responderWaitS: sched.waitNs / 1e9,
      mainThreadRunS: main.runS,
      mainThreadWaitS: main.waitS,
      generatorCpuS: (cpu.user + cpu.system) / 1e6,
      responderDrops: udpDrops(readText(`${net}/udp`), this.responderPort) + udpDrops(readText(`${net}/udp6`), this.responderPort),
      generatorDrops: udpDrops(readText('/proc/self/net/udp')),
      backlogDrops: backlogDrops(readText('/proc/net/softnet_stat')),
    };
    if (this.controlSocket) s.counters = readCounters(this.controlSocket);
    return s;
  }

  /** The counters now, for totals over a run (undefined for Go, or without an answer). */
  counters(): Promise<CounterReading | undefined> {
    return this.controlSocket ? readCounters(this.controlSocket) : Promise.resolve(undefined);
  }
}

async function readCounters(socketPath: string): Promise<CounterReading | undefined> {
  const asked = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ANSWER_TIMEOUT_MS)));
    const status = await Promise.race([request(socketPath, { cmd: 'status' }), timeout]);
    if (!status) return undefined;
    return { values: status.counters as Record<string, number>, answerMs: performance.now() - asked };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Counter `name` from a to b; undefined when either reading is missing. A counter absent from a reading is 0 (the
 * supervisor lists its own counters from their first increment).
 */
export function counterDelta(a: Record<string, number> | undefined, b: Record<string, number> | undefined, name: string): number | undefined {
  if (!a || !b) return undefined;
  return (b[name] ?? 0) - (a[name] ?? 0);
}
