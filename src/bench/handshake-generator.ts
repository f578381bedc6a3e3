/**
 * The handshake-rate benchmark's load generator (run as its own process by handshake-loadgen.ts, so its CPU is
 * measured apart from the responder's and a reader can see whether it saturated).
 *
 * Before the first step it makes every initiator (certificate, static key, a UDP socket on its own source
 * address), a pool of ephemeral keys and every stage 1 it will send. Then, step by step, it sends stage 1s at the
 * step's rate (open loop: a slow responder does not slow it; sends are paced each millisecond), initiators in turn,
 * and notes when each reply arrives, matched to its attempt by the initiator index. Each step's window is measured
 * between two readings of the responder (handshake-sampler.ts). After the steps a sample of each window's replies
 * is completed cryptographically (handshake-initiators.ts), so only replies that make a tunnel count.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { loadCAPool, unmarshalCertFromPem } from '../shared/pki';
import { parseIPv4 } from '../shared/util/ipv4';
import { buildStage1, makeEphemerals, makeInitiators, matchStage2, Stage2Verifier, type Ephemeral, type Initiator } from './handshake-initiators';
import { attemptsOfStep, planError, type LoadPlan, type LoadResult } from './handshake-plan';
import { median } from './probes';
import type { StepResult } from './handshake-report';
import { COUNTERS, counterDelta, PROMPT_ANSWER_MS, Sampler, type CounterReading, type Sample } from './handshake-sampler';

/** Initiator indexes of attempt a are BASE + a: nonzero, and far from any a responder would make up. */
const INDEX_BASE = 0x40000000;
/** How long after the last step replies are still read (never counted: they are outside every window). */
const DRAIN_MS = 200;
/**
 * A reply later than this makes no tunnel: Go nebula's initiator gives up after handshakes.retries (10) tries
 * try_interval (100 ms) times the try number apart, 5.5 s in all (nebula-ts' initiator the same).
 */
export const INITIATOR_GIVES_UP_MS = 5500;

/** One step's window as it was measured, before verification. */
interface Window {
  rate: number;
  /** Attempts sent in the window: [firstSent, endSent). */
  firstSent: number;
  endSent: number;
  from: number;
  to: number;
  a: Sample;
  b: Sample;
}

class LoadGenerator {
  readonly stage1: Buffer[] = [];
  private readonly sentAt: Float64Array;
  private readonly repliedAt: Float64Array;
  private readonly replies = new Map<number, Buffer>();
  private readonly sendFailed: Uint8Array;
  private sockets: dgram.Socket[] = [];
  otherReplies = 0;
  duplicateReplies = 0;
  totalSent = 0;

  constructor(
    private readonly plan: LoadPlan,
    private readonly initiators: Initiator[],
    private readonly ephemerals: Ephemeral[],
  ) {
    const total = plan.rates.reduce((a, r) => a + attemptsOfStep(r, plan.stepMs), 0);
    // Strictly increasing Times: each handshake of a host is newer than its last one, so the responder takes it.
    const time0 = BigInt(Date.now()) * 1_000_000n;
    for (let a = 0; a < total; a++) this.stage1.push(buildStage1(this.initiatorOf(a), this.ephemeralOf(a), INDEX_BASE + a, time0 + BigInt(a)));
    this.sentAt = new Float64Array(total);
    this.repliedAt = new Float64Array(total);
    this.sendFailed = new Uint8Array(total);
  }

  initiatorOf(a: number): Initiator {
    return this.initiators[a % this.initiators.length]!;
  }

  ephemeralOf(a: number): Ephemeral {
    return this.ephemerals[a % this.ephemerals.length]!;
  }

  async open(): Promise<void> {
    for (const address of this.plan.sources) {
      const socket = dgram.createSocket('udp4');
      this.sockets.push(socket);
      socket.on('message', (msg) => this.onReply(msg));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address, port: 0 }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    }
  }

  close(): void {
    for (const s of this.sockets) {
      try {
        s.close();
      } catch {
        // never bound, or already closed
      }
    }
    this.sockets = [];
  }

  private onReply(msg: Buffer): void {
    const a = matchStage2(msg, INDEX_BASE, this.stage1.length);
    if (a < 0 || this.sentAt[a] === 0) {
      this.otherReplies++;
      return;
    }
    if (this.repliedAt[a] !== 0) {
      this.duplicateReplies++;
      return;
    }
    this.repliedAt[a] = performance.now();
    // A copy: the datagram's buffer may be a view of a larger one.
    this.replies.set(a, Buffer.from(msg));
  }

  private send(a: number, now: number): void {
    this.sentAt[a] = now;
    this.totalSent++;
    const { target } = this.plan;
    this.sockets[a % this.sockets.length]!.send(this.stage1[a]!, target.port, target.ip, (err) => {
      if (err) this.sendFailed[a] = 1;
    });
  }

  /** One step: `count` attempts from `first` at `rate`, the window read between the warm-up and the step's end. */
  async step(rate: number, first: number, count: number, sampler: Sampler): Promise<Window> {
    const { stepMs, warmFraction } = this.plan;
    const start = performance.now();
    let sent = 0;
    let opened: Pick<Window, 'firstSent' | 'from' | 'a'> | undefined;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        const due = Math.min(count, Math.floor((rate * (now - start)) / 1000));
        while (sent < due) this.send(first + sent++, now);
        if (!opened && now - start >= warmFraction * stepMs) opened = { a: sampler.take(), from: performance.now(), firstSent: first + sent };
        if (now - start >= stepMs) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const b = sampler.take();
    return { rate, ...opened!, endSent: first + sent, to: performance.now(), b };
  }

  async drain(): Promise<void> {
    await new Promise((r) => setTimeout(r, DRAIN_MS));
    this.close();
  }

  /** A window's counts: replies that arrived in it (to any attempt), a verified sample of them, and the readings. */
  async result(w: Window, verifier: Stage2Verifier, verifyPerStep: number): Promise<StepResult> {
    const arrived: number[] = [];
    let late = 0;
    for (let a = 0; a < this.stage1.length; a++) {
      const t = this.repliedAt[a]!;
      if (t === 0 || t < w.from || t >= w.to) continue;
      if (t - this.sentAt[a]! > INITIATOR_GIVES_UP_MS) late++;
      else arrived.push(a);
    }
    const every = Math.max(1, Math.ceil(arrived.length / Math.max(1, verifyPerStep)));
    const failures: Record<string, number> = {};
    let sampled = 0;
    let verified = 0;
    for (let i = 0; i < arrived.length; i += every) {
      const a = arrived[i]!;
      sampled++;
      const why = verifier.verify(this.initiatorOf(a), this.ephemeralOf(a), this.stage1[a]!, this.replies.get(a)!);
      if (why === undefined) verified++;
      else failures[why] = (failures[why] ?? 0) + 1;
    }
    let sendErrors = 0;
    for (let a = w.firstSent; a < w.endSent; a++) sendErrors += this.sendFailed[a]!;
    const [ca, cb] = await Promise.all([w.a.counters, w.b.counters]);
    const step: StepResult = {
      rate: w.rate,
      windowS: (w.to - w.from) / 1000,
      sent: w.endSent - w.firstSent,
      sendErrors,
      matched: arrived.length,
      late,
      sampled,
      verified,
      failures,
      latencyMs: median(arrived.map((a) => this.repliedAt[a]! - this.sentAt[a]!)),
      responderCpuS: w.b.responderCpuS - w.a.responderCpuS,
      generatorCpuS: w.b.generatorCpuS - w.a.generatorCpuS,
      responderRunS: w.b.responderRunS - w.a.responderRunS,
      responderWaitS: w.b.responderWaitS - w.a.responderWaitS,
      responderSocketDrops: w.b.responderDrops - w.a.responderDrops,
      generatorSocketDrops: w.b.generatorDrops - w.a.generatorDrops,
      backlogDrops: w.b.backlogDrops - w.a.backlogDrops,
    };
    if (this.plan.controlSocket) {
      step.supervisorRunS = w.b.mainThreadRunS - w.a.mainThreadRunS;
      step.supervisorWaitS = w.b.mainThreadWaitS - w.a.mainThreadWaitS;
      const prompt = (r: CounterReading | undefined): boolean => r !== undefined && r.answerMs <= PROMPT_ANSWER_MS;
      step.countersLate = !prompt(ca) || !prompt(cb);
      if (!step.countersLate) {
        step.handshakesRx = counterDelta(ca?.values, cb?.values, COUNTERS.rx);
        step.limited = counterDelta(ca?.values, cb?.values, COUNTERS.limited);
        step.refused = counterDelta(ca?.values, cb?.values, COUNTERS.refused);
      }
    }
    return step;
  }
}

/** Runs `plan` against its responder: prepares, steps through the rates, verifies; throws on a bad plan. */
export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const invalid = planError(plan);
  if (invalid) throw new Error(`bad plan: ${invalid}`);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const ca = unmarshalCertFromPem(plan.caCertPem).cert;
  const firstVpnIp = parseIPv4(plan.firstVpnIp);
  if (firstVpnIp === undefined) throw new Error(`bad plan: firstVpnIp ${plan.firstVpnIp}`);
  const initiators = makeInitiators({ cert: ca, privateKey: Buffer.from(plan.caKeyHex, 'hex') }, plan.sources.length, firstVpnIp, plan.vpnPrefix);
  const gen = new LoadGenerator(plan, initiators, makeEphemerals(Math.max(1, plan.ephemerals)));
  const verifier = new Stage2Verifier(loadCAPool(plan.caCertPem).pool, plan.cipher);
  const sampler = new Sampler(plan.responderPid, plan.responderPort, plan.controlSocket);
  const windows: Window[] = [];
  let first = 0;
  // Totals over the run need no prompt answers: nothing arrives after the last step, so a late answer is final.
  const before = await sampler.counters();
  let cpu1: NodeJS.CpuUsage;
  let prepareS: number;
  try {
    await gen.open();
    cpu1 = process.cpuUsage(cpu0);
    prepareS = (performance.now() - t0) / 1000;
    for (const rate of plan.rates) {
      const count = attemptsOfStep(rate, plan.stepMs);
      windows.push(await gen.step(rate, first, count, sampler));
      first += count;
    }
  } finally {
    await gen.drain();
  }
  const after = await sampler.counters();
  const steps: StepResult[] = [];
  for (const w of windows) steps.push(await gen.result(w, verifier, plan.verifyPerStep));
  const result: LoadResult = { prepareS, prepareCpuS: (cpu1.user + cpu1.system) / 1e6, steps, otherReplies: gen.otherReplies, duplicateReplies: gen.duplicateReplies };
  if (before && after) {
    const total = (name: string): number => counterDelta(before.values, after.values, name) ?? NaN;
    result.runCounters = { handshakesRx: total(COUNTERS.rx), limited: total(COUNTERS.limited), refused: total(COUNTERS.refused), sent: gen.totalSent };
  }
  return result;
}

