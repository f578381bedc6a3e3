/**
 * What the five modes share: their I/O, required-flag checks, error wrapping with nebula-cert's context prefixes,
 * Go's time arithmetic, and the curve names the -curve flags accept. Each mode (ca.ts, keygen.ts, sign.ts,
 * print.ts, verify.ts) follows nebula-cert 1.11's order of checks, so the first error reported for a bad
 * invocation is the one nebula-cert reports.
 */
import { CertError, type Curve } from '../shared/pki';
import { CliError, HelpError } from './errors';
import type { FlagSet } from './flags';

export interface Output {
  /** Standard output (buffered and written at exit). */
  out: (text: string) => void;
  /** Standard error (prompts). */
  err: (text: string) => void;
}

export type ModeHandler = (args: string[], io: Output) => void;

export interface Mode {
  summary: string;
  /** The mode's flags, with their usage texts (the parser and the help text come from the same definitions). */
  flags: () => FlagSet;
  run: ModeHandler;
}

export const HOUR_NS = 3_600_000_000_000n;
const NS_PER_S = 1_000_000_000n;

export function mustFlag(flags: FlagSet, name: string): string {
  const v = flags.getString(name);
  if (v === '') throw new HelpError(`-${name} is required`);
  return v;
}

/** QR output needs a QR/PNG encoder, which this drop-in deliberately does not carry. */
export function refuseQr(flags: FlagSet): void {
  if (flags.getString('out-qr') !== '') throw new CliError('-out-qr is not supported by nebula-ts-cert');
}

/** Turns a library error into the CLI's message with nebula-cert's context prefix. */
export function wrap<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CertError) throw new CliError(`${prefix}${err.message}`);
    throw err;
  }
}

/** Go: time.Now().Add(d) as Unix seconds (floor). */
export function nowPlus(nowMs: number, durationNs: bigint): number {
  const ns = BigInt(nowMs) * 1_000_000n + durationNs;
  const q = ns / NS_PER_S;
  return Number(ns < 0n && q * NS_PER_S !== ns ? q - 1n : q);
}

/** Go: time.Until(t) - 1s, in nanoseconds, for Unix seconds `t`. */
export function untilMinusOneSecond(nowMs: number, t: number): bigint {
  return BigInt(t) * NS_PER_S - BigInt(nowMs) * 1_000_000n - NS_PER_S;
}

/** The -curve spellings of ca.go and keygen.go; undefined for anything else ("invalid curve: ..."). */
export function parseCurve(text: string): Curve | undefined {
  if (['25519', 'X25519', 'Curve25519', 'CURVE25519'].includes(text)) return 'CURVE25519';
  if (text === 'P256') return 'P256';
  return undefined;
}

/** -version of ca and sign: 1 or 2 (sign also takes 0, "as the CA"); anything else is a usage error. */
export function checkVersion(version: bigint, allowZero: boolean): 0 | 1 | 2 {
  if (version === 1n || version === 2n || (allowZero && version === 0n)) return Number(version) as 0 | 1 | 2;
  throw new HelpError('-version must be either 1 or 2');
}
