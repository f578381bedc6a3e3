/**
 * What the handshake-rate benchmark's parent (handshake-phase.ts) hands its load generator process
 * (handshake-loadgen.ts) as a JSON file, and what the generator prints back; plus the address plan both sides share.
 */
import type { CipherName } from '../shared/crypto';
import type { StepResult } from './handshake-report';

export interface LoadPlan {
  /** The mesh CA (PEM) and its Ed25519 private key (hex): the generator signs its initiators' certificates. */
  caCertPem: string;
  caKeyHex: string;
  cipher: CipherName;
  /** The responder's underlay address. */
  target: { ip: string; port: number };
  /** Underlay source address of each initiator (one socket each): many hosts, not one. */
  sources: string[];
  /** The first initiator's VPN address and the prefix length of the initiators' certificate network. */
  firstVpnIp: string;
  vpnPrefix: number;
  /** Offered stage 1s per second, one step each, in this order. */
  rates: number[];
  stepMs: number;
  /** Share of each step before its measured window (queues and token buckets settle). */
  warmFraction: number;
  /** At most this many replies per step are completed cryptographically (the rest counted by the sample's share). */
  verifyPerStep: number;
  /** Ephemeral keys made beforehand, used in turn. */
  ephemerals: number;
  /** The responder's first process (its tree is measured) and, for nebula-ts, its control socket (counters). */
  responderPid: number;
  controlSocket?: string;
  /** The responder's underlay port, whose socket's drops are read. */
  responderPort: number;
}

export interface LoadResult {
  /** Seconds spent before the first step (certificates, keys, every stage 1) and the generator's CPU for it. */
  prepareS: number;
  prepareCpuS: number;
  steps: StepResult[];
  /** Datagrams received that were no stage 2 of ours (e.g. the responder's test packets on the new tunnels). */
  otherReplies: number;
  /** Second replies to one attempt (not counted). */
  duplicateReplies: number;
  /** nebula-ts: its counters from before the first step to after the last (exact, unlike a late per-step reading). */
  runCounters?: { sent: number; handshakesRx: number; limited: number; refused: number };
}

/** The generator's source networks: routed to its namespace from the responder's. */
export const SOURCE_NET = '10.98.0.0/16';

/** Source address i (0-based): 10.98.1.1, 10.98.1.2, … 250 per third octet, no .0 or .255. */
export function sourceAddress(i: number): string {
  return `10.98.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** Stage 1s step `rate` sends over `stepMs`. */
export function attemptsOfStep(rate: number, stepMs: number): number {
  return Math.ceil((rate * stepMs) / 1000);
}

/** Bounds the generator holds to: its attempts (every stage 1 is built beforehand) and initiators (sockets). */
export const MAX_ATTEMPTS = 250_000;
export const MAX_INITIATORS = 4000;

/** Why a plan cannot run, or undefined. */
export function planError(p: Pick<LoadPlan, 'rates' | 'stepMs' | 'sources' | 'warmFraction'>): string | undefined {
  if (p.rates.length === 0 || p.rates.some((r) => !Number.isFinite(r) || r <= 0)) return 'rates must be positive numbers';
  if (!(p.stepMs >= 200 && p.stepMs <= 60_000)) return 'a step lasts 200 ms to 60 s';
  if (!(p.warmFraction >= 0 && p.warmFraction < 0.9)) return 'the warm-up share is below 0.9';
  if (p.sources.length < 1 || p.sources.length > MAX_INITIATORS) return `1 to ${MAX_INITIATORS} initiators`;
  const attempts = p.rates.reduce((a, r) => a + attemptsOfStep(r, p.stepMs), 0);
  if (attempts > MAX_ATTEMPTS) return `${attempts} stage 1s in all: at most ${MAX_ATTEMPTS} (fewer or shorter steps)`;
  return undefined;
}
