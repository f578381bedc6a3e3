/**
 * The handshake-rate benchmark (issue 13): how many Noise IX handshakes a node completes per second as responder,
 * with many initiators holding distinct certificates, the way a lighthouse or hub is loaded; nebula-ts next to Go
 * nebula 1.6.1, each in a fresh mesh with its default config, the implementations alternating A/B then B/A.
 *
 * A run: a hub namespace, the responder's (192.168.100.1, certificate network /16: room for the initiators) and the
 * generator's, whose eth0 also holds one source address per initiator (10.98.0.0/16, routed to it from the
 * responder's namespace, so the responder sees many hosts, not one: a per-source limiter meets each host's share).
 * The generator (handshake-loadgen.ts) steps the offered rate up and reports each step; the mesh is destroyed after,
 * whatever happened. Needs root and Go nebula (`nebula`) for the Go arm.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CipherName } from '../shared/crypto';
import { makeHostCert } from '../testbed/mesh-pki';
import { Mesh, type NodeKind } from '../testbed/netns-mesh';
import { nodeCommand } from '../testbed/runner-hooks';
import { boundOf, handshakeMetrics, handshakeRunLine, type HandshakeRun } from './handshake-report';
import { SOURCE_NET, sourceAddress, type LoadPlan, type LoadResult } from './handshake-plan';
import { run } from './probes';

export interface HandshakePhaseOptions {
  reps: number;
  impls: NodeKind[];
  /** Project root whose dist/ the nebula-ts responder (and the generator) run. */
  root: string;
  rates: number[];
  stepMs: number;
  initiators: number;
  verifyPerStep: number;
  write: (text: string) => void;
}

/** Offered stage 1s per second, step by step: from what both answer in full to well past either's capacity. */
export const DEFAULT_RATES: readonly number[] = [250, 1000, 2000, 4000, 8000];
export const DEFAULT_STEP_MS = 1000;
export const DEFAULT_INITIATORS = 500;
export const DEFAULT_VERIFY_PER_STEP = 100;

const CIPHER: CipherName = 'aes';
const PORT = 4242;
const RESPONDER_VPN_IP = '192.168.100.1';
/** The initiators' VPN addresses: from here up, inside the responder's /16. */
const FIRST_INITIATOR_VPN_IP = '192.168.101.1';
/** Share of each step before its measured window. */
const WARM_FRACTION = 1 / 3;
/** Ephemeral keys the generator makes beforehand (prime: initiator and ephemeral pairings keep changing). */
const EPHEMERALS = 1021;
/** The generator's time beyond its steps: certificates, stage 1s, verification, start-up. */
const GENERATOR_SLACK_MS = 120_000;

export async function runHandshakePhase(o: HandshakePhaseOptions): Promise<HandshakeRun[]> {
  const runs: HandshakeRun[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    for (const kind of rep % 2 === 0 ? o.impls : [...o.impls].reverse()) {
      const rec: HandshakeRun = { impl: kind, cipher: CIPHER, routines: 1, rep, load1: os.loadavg()[0]!, metrics: {} };
      try {
        const result = await handshakeRun(kind, o);
        rec.steps = result.steps;
        rec.metrics = handshakeMetrics(result.steps);
        rec.bound = result.steps.length > 0 ? boundOf(result.steps[result.steps.length - 1]!) + runNote(result) : undefined;
        rec.generator = { prepareS: result.prepareS, prepareCpuS: result.prepareCpuS, otherReplies: result.otherReplies, duplicateReplies: result.duplicateReplies, ...result.runCounters };
      } catch (err) {
        rec.error = err instanceof Error ? err.message : String(err);
      }
      runs.push(rec);
      o.write(handshakeRunLine(rec));
    }
  }
  return runs;
}

/** nebula-ts: what its counters say over the whole run (exact even when per-step readings came late). */
function runNote(result: LoadResult): string {
  const c = result.runCounters;
  if (!c) return '';
  const share = (n: number): string => `${Math.round((100 * n) / Math.max(1, c.handshakesRx))} %`;
  return `; over the run the handshake limiter shed ${share(c.limited)} of ${c.handshakesRx} stage 1s received${c.refused > 0 ? `, a full host map refused ${c.refused} tunnels` : ''}`;
}

async function handshakeRun(kind: NodeKind, o: HandshakePhaseOptions): Promise<LoadResult> {
  const mesh = new Mesh({ projectRoot: o.root, cipher: CIPHER });
  try {
    await mesh.init();
    // Each node's default config: nothing added but what the testbed gives every node.
    const responder = await mesh.add({ name: 'responder', kind, overlayIp: RESPONDER_VPN_IP });
    const loadgen = await mesh.add({ name: 'loadgen', kind: 'ts', overlayIp: '192.168.100.2' }); // never started
    // The testbed's certificates are /24; a hub's network holds all its hosts, so the responder's is a /16.
    makeHostCert(responder.dir, mesh.ca, { name: responder.name, ip: `${RESPONDER_VPN_IP}/16` });
    mesh.writeConfigs();
    const sources = Array.from({ length: o.initiators }, (_, i) => sourceAddress(i));
    const batch = path.join(mesh.dir, 'sources.ip');
    writeFileSync(batch, sources.map((s) => `address add ${s}/32 dev eth0\n`).join(''));
    await run('ip', ['-n', loadgen.ns, '-batch', batch], 30_000);
    await run('ip', ['-n', responder.ns, 'route', 'add', SOURCE_NET, 'via', loadgen.underlayIp], 10_000);
    await mesh.start('responder');
    const plan: LoadPlan = {
      caCertPem: mesh.ca.cert.toPem(),
      caKeyHex: mesh.ca.privateKey.toString('hex'),
      cipher: CIPHER,
      target: { ip: responder.underlayIp, port: PORT },
      sources,
      firstVpnIp: FIRST_INITIATOR_VPN_IP,
      vpnPrefix: 16,
      rates: o.rates,
      stepMs: o.stepMs,
      warmFraction: WARM_FRACTION,
      verifyPerStep: o.verifyPerStep,
      ephemerals: EPHEMERALS,
      responderPid: responder.process!.pid!,
      responderPort: PORT,
      ...(kind === 'ts' ? { controlSocket: responder.controlSocket } : {}),
    };
    const planPath = path.join(mesh.dir, 'handshake-plan.json');
    writeFileSync(planPath, JSON.stringify(plan), { mode: 0o600 });
    const result = await runGenerator(loadgen.ns, planPath, o.rates.length * o.stepMs + GENERATOR_SLACK_MS);
    if (responder.process!.exitCode !== null) throw new Error(`the responder exited (${responder.process!.exitCode}) during the run:\n${responder.output.slice(-20).join('\n')}`);
    return result;
  } finally {
    await mesh.destroy();
  }
}

/** Runs the generator in namespace `ns`; its one JSON line, or an error with its stderr. Killed after `timeoutMs`. */
function runGenerator(ns: string, planPath: string, timeoutMs: number): Promise<LoadResult> {
  const script = path.join(__dirname, 'handshake-loadgen.js');
  const child = spawn('ip', ['netns', 'exec', ns, ...nodeCommand(), script, planPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close', not 'exit': after 'exit' the result may still be in the pipe.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve(JSON.parse(line) as LoadResult);
      else reject(new Error(`load generator ${signal ? `killed (${signal}${signal === 'SIGKILL' ? ', timed out' : ''})` : `exited ${code}`}: ${err.trim() || 'no output'}`));
    });
  });
}
