/**
 * Shared machinery for the fuzz tests: a seeded PRNG, byte/text/protobuf mutators and a tally that records what a
 * decoder did with each input (accepted, rejected with its typed error, or something it must never do).
 *
 * Knobs (environment):
 *   NEBULA_TS_FUZZ_SEED   base seed (decimal or 0x-hex); each fuzz target derives its own stream from it and its name
 *   NEBULA_TS_FUZZ_SCALE  multiplies every input count (e.g. 100 for a long run; fractions allowed)
 * Every test prints the seed and scale in a comment, so a failure is reproduced by re-running with the same values.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Test } from 'tap';

export const DEFAULT_SEED = 0x6e656275; // "nebu"

/** A tap test (the helpers only comment and assert). */
export type TapLike = Pick<Test, 'comment' | 'equal' | 'ok' | 'match'>;

function parseSeed(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return DEFAULT_SEED;
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`NEBULA_TS_FUZZ_SEED must be a uint32, got ${text}`);
  return n;
}

function parseScale(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 1;
  const n = Number(text.trim());
  if (!Number.isFinite(n) || n <= 0) throw new Error(`NEBULA_TS_FUZZ_SCALE must be a positive number, got ${text}`);
  return n;
}

/** FNV-1a over a string: turns a target name into a seed offset. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: small, fast, good enough to drive mutations; fully determined by the seed. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (n <= 0) return 0;
    return Math.floor((this.u32() / 0x100000000) * n);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  /** A size biased towards small values (most interesting bugs live at 0..16), up to `max`. */
  size(max: number): number {
    const r = this.int(4);
    if (r === 0) return this.int(Math.min(max, 4) + 1);
    if (r === 1) return this.int(Math.min(max, 24) + 1);
    return this.int(max + 1);
  }
}

export interface FuzzRun {
  /** The base seed (what to put in NEBULA_TS_FUZZ_SEED to reproduce). */
  seed: number;
  scale: number;
  /** Number of inputs for this target: `base` × scale. */
  count: number;
  rng: Rng;
}

/**
 * Sets up one fuzz target: its PRNG (base seed mixed with the target name) and its input count, and prints both.
 */
export function fuzzRun(t: TapLike, target: string, baseCount: number): FuzzRun {
  const seed = parseSeed(process.env.NEBULA_TS_FUZZ_SEED);
  const scale = parseScale(process.env.NEBULA_TS_FUZZ_SCALE);
  const count = Math.max(1, Math.round(baseCount * scale));
  const rng = new Rng((seed ^ fnv1a(target)) >>> 0);
  t.comment(`fuzz ${target}: NEBULA_TS_FUZZ_SEED=0x${seed.toString(16)} NEBULA_TS_FUZZ_SCALE=${scale} inputs=${count}`);
  return { seed, scale, count, rng };
}

// ---------------------------------------------------------------------------------------------------------------
// Varints and protobuf-aware mutation

/** Values that break naive length/size handling: beyond uint32, beyond 2^53, near 2^64, sign bits. */
export const HUGE_VALUES: readonly bigint[] = [
  0xffffffffn,
  0x100000000n,
  0x80000000n,
  0x7fffffffn,
  1n << 35n,
  (1n << 53n) + 1n,
  1n << 60n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];

export function encodeVarint(value: bigint): Buffer {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** A longer-than-needed (but valid, ≤ 10 bytes) encoding of `value`: Go and we must both accept it. */
export function encodeOverlongVarint(value: bigint, extra: number): Buffer {
  const canon = encodeVarint(value);
  const len = Math.min(10, canon.length + extra);
  if (len === canon.length) return canon;
  const out = Buffer.alloc(len, 0x80);
  canon.copy(out);
  out[canon.length - 1]! |= 0x80;
  out[len - 1] = 0x00;
  return out;
}

/** Where a varint sits in a buffer, and what kind it is. */
export interface VarintSite {
  start: number;
  end: number;
  kind: 'tag' | 'length' | 'value';
  value: bigint;
}

function readVarintAt(buf: Buffer, pos: number): { value: bigint; end: number } | undefined {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= buf.length) return undefined;
    const b = buf[pos + i]!;
    v |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return { value: BigInt.asUintN(64, v), end: pos + i + 1 };
  }
  return undefined;
}

/**
 * Every varint (tags, lengths, varint values) of a protobuf message and of the nested messages that parse cleanly,
 * found by an independent lenient scanner. Returns what it could find before the first malformed spot.
 */
export function protoVarintSites(buf: Buffer, base = 0, depth = 0, out: VarintSite[] = []): VarintSite[] {
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarintAt(buf, pos);
    if (!tag) break;
    out.push({ start: base + pos, end: base + tag.end, kind: 'tag', value: tag.value });
    pos = tag.end;
    const wire = Number(tag.value & 7n);
    if (wire === 0) {
      const v = readVarintAt(buf, pos);
      if (!v) break;
      out.push({ start: base + pos, end: base + v.end, kind: 'value', value: v.value });
      pos = v.end;
    } else if (wire === 2) {
      const l = readVarintAt(buf, pos);
      if (!l) break;
      out.push({ start: base + pos, end: base + l.end, kind: 'length', value: l.value });
      pos = l.end;
      if (l.value > BigInt(buf.length - pos)) break;
      const len = Number(l.value);
      if (depth < 4 && len > 0) protoVarintSites(buf.subarray(pos, pos + len), base + pos, depth + 1, out);
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else break;
  }
  return out;
}

/**
 * Rewrites one varint of a protobuf message and fixes the lengths of the messages enclosing it, so a mutation deep
 * inside (say, a certificate's IP list inside a handshake payload) is not just a broken outer frame.
 */
export function replaceVarint(buf: Buffer, site: VarintSite, replacement: Buffer): Buffer {
  let out = Buffer.concat([buf.subarray(0, site.start), replacement, buf.subarray(site.end)]);
  let delta = BigInt(replacement.length - (site.end - site.start));
  if (delta === 0n) return out;
  // Innermost first: an enclosing length sits before the payload it covers, so fixing an inner one never moves
  // the bytes of an outer one; each fix may itself change size, which the outer ones absorb.
  const enclosing = protoVarintSites(buf)
    .filter((s) => s.kind === 'length' && s.start !== site.start && s.end <= site.start && BigInt(s.end) + s.value >= BigInt(site.end))
    .sort((a, b) => b.start - a.start);
  for (const s of enclosing) {
    const fixed = encodeVarint(s.value + delta);
    out = Buffer.concat([out.subarray(0, s.start), fixed, out.subarray(s.end)]);
    delta += BigInt(fixed.length - (s.end - s.start));
  }
  return out;
}

/** Protobuf-aware mutations: huge lengths/values, overlong encodings, tag rewrites, unknown fields. */
export function mutateProto(rng: Rng, buf: Buffer): Buffer {
  const sites = protoVarintSites(buf);
  const op = rng.int(6);
  if (sites.length === 0 || op === 5) {
    // Append (or prepend) a field this schema does not know, with a random wire type.
    const field = BigInt(rng.pick([6, 7, 8, 15, 16, 100, 19000, 536870911, 536870912, 2147483647, 2147483648]));
    const wire = BigInt(rng.pick([0, 1, 2, 5, 3, 4, 6, 7]));
    const parts: Buffer[] = [encodeVarint((field << 3n) | wire)];
    if (wire === 0n) parts.push(encodeVarint(BigInt(rng.u32())));
    else if (wire === 1n) parts.push(rng.bytes(8));
    else if (wire === 5n) parts.push(rng.bytes(4));
    else if (wire === 2n) {
      const data = rng.bytes(rng.size(8));
      parts.push(encodeVarint(BigInt(data.length)), data);
    }
    const extra = Buffer.concat(parts);
    return rng.chance(0.5) ? Buffer.concat([buf, extra]) : Buffer.concat([extra, buf]);
  }
  const site = rng.pick(sites);
  switch (op) {
    case 0: // a huge value in place (length → truncation checks; value → range checks)
      return replaceVarint(buf, site, encodeVarint(rng.pick(HUGE_VALUES)));
    case 1: // the same value, overlong: must decode identically
      return replaceVarint(buf, site, encodeOverlongVarint(site.value, rng.range(1, 9)));
    case 2: // off-by-a-little lengths/values
      return replaceVarint(buf, site, encodeVarint(site.value + BigInt(rng.pick([-2, -1, 1, 2, 7, 8]))));
    case 3: {
      // a tag with another wire type or field number
      if (site.kind !== 'tag') return replaceVarint(buf, site, encodeVarint(BigInt(rng.u32())));
      const field = site.value >> 3n;
      const newTag = rng.chance(0.5)
        ? (field << 3n) | BigInt(rng.int(8))
        : (BigInt(rng.pick([0, 1, 2, 3, 4, 5, 9, 10, 0x1fffffff, 0x7fffffff, 0xffffffff])) << 3n) | (site.value & 7n);
      return replaceVarint(buf, site, encodeVarint(newTag));
    }
    default: {
      // an unterminated varint (all continuation bits), or one with an 11th byte
      const bad = rng.chance(0.5) ? Buffer.alloc(rng.range(1, 10), 0xff) : Buffer.alloc(11, 0x81);
      return Buffer.concat([buf.subarray(0, site.start), bad, rng.chance(0.5) ? buf.subarray(site.end) : Buffer.alloc(0)]);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Generic byte mutations

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x0a, 0x0d, 0x20, 0x2d, 0x3a, 0x3d, 0x40];

export function flipBits(rng: Rng, b: Buffer): Buffer {
  if (b.length === 0) return b;
  const out = Buffer.from(b);
  const n = rng.range(1, 8);
  for (let i = 0; i < n; i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
}

export function replaceBytes(rng: Rng, b: Buffer): Buffer {
  if (b.length === 0) return b;
  const out = Buffer.from(b);
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) out[rng.int(out.length)] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.u32() & 0xff;
  return out;
}

export function truncate(rng: Rng, b: Buffer): Buffer {
  return b.subarray(0, rng.int(b.length + 1));
}

export function extend(rng: Rng, b: Buffer): Buffer {
  return Buffer.concat([b, rng.bytes(rng.range(1, 32))]);
}

export function insertBytes(rng: Rng, b: Buffer): Buffer {
  const at = rng.int(b.length + 1);
  return Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 8)), b.subarray(at)]);
}

export function deleteRange(rng: Rng, b: Buffer): Buffer {
  if (b.length === 0) return b;
  const at = rng.int(b.length);
  const n = rng.range(1, Math.min(16, b.length - at));
  return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
}

export function duplicateRange(rng: Rng, b: Buffer): Buffer {
  if (b.length === 0) return b;
  const from = rng.int(b.length);
  const n = rng.range(1, Math.min(32, b.length - from));
  const at = rng.int(b.length + 1);
  return Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)]);
}

/** Head of `a` + tail of `b`. */
export function splice(rng: Rng, a: Buffer, b: Buffer): Buffer {
  return Buffer.concat([a.subarray(0, rng.int(a.length + 1)), b.subarray(rng.int(b.length + 1))]);
}

/** A varint encoding of a huge value dropped at a random spot (for inputs where the structure is unknown). */
export function hugeVarintAnywhere(rng: Rng, b: Buffer): Buffer {
  const at = rng.int(b.length + 1);
  const v = encodeVarint(rng.pick(HUGE_VALUES));
  return Buffer.concat([b.subarray(0, at), v, b.subarray(Math.min(b.length, at + (rng.chance(0.5) ? v.length : 0)))]);
}

export interface MutateOptions {
  /** Valid inputs to splice with. */
  corpus: readonly Buffer[];
  /** Add protobuf-aware mutations. */
  proto?: boolean;
  /** Extra, format-specific mutators. */
  extra?: ReadonlyArray<(rng: Rng, b: Buffer) => Buffer>;
  /** Inputs longer than this are cut (keeps the run time flat). */
  maxLen?: number;
}

/** One to three stacked mutations of `input`. */
export function mutate(rng: Rng, input: Buffer, opts: MutateOptions): Buffer {
  const ops: Array<(b: Buffer) => Buffer> = [
    (b) => flipBits(rng, b),
    (b) => replaceBytes(rng, b),
    (b) => truncate(rng, b),
    (b) => extend(rng, b),
    (b) => insertBytes(rng, b),
    (b) => deleteRange(rng, b),
    (b) => duplicateRange(rng, b),
    (b) => splice(rng, b, rng.pick(opts.corpus)),
    (b) => splice(rng, rng.pick(opts.corpus), b),
    (b) => hugeVarintAnywhere(rng, b),
  ];
  if (opts.proto) for (let i = 0; i < 6; i++) ops.push((b) => mutateProto(rng, b));
  for (const m of opts.extra ?? []) ops.push((b) => m(rng, b));
  let out = input;
  const n = rng.chance(0.6) ? 1 : rng.range(2, 3);
  for (let i = 0; i < n; i++) out = rng.pick(ops)(out);
  const max = opts.maxLen ?? 4096;
  return out.length > max ? out.subarray(0, max) : out;
}

/**
 * The i-th fuzz input: mostly mutated seeds, some pure random bytes of random length, and (so the accepting path is
 * always exercised) a few unmutated seeds.
 */
export function nextInput(rng: Rng, seeds: readonly Buffer[], opts: MutateOptions & { randomMax?: number }): Buffer {
  const r = rng.int(100);
  if (r < 3) return rng.pick(seeds);
  if (r < 13) return rng.bytes(rng.size(opts.randomMax ?? 64));
  return mutate(rng, rng.pick(seeds), opts);
}

/** True when two views share memory (a decoded value that should be a copy is still a view of the input). */
export function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length > 0 &&
    b.length > 0 &&
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.length &&
    b.byteOffset < a.byteOffset + a.length
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Outcome accounting

type ErrorClass = abstract new (...args: never[]) => Error;

/** What a decoder did with the inputs, plus every contract violation (capped, with the offending input). */
export class Tally {
  accepted = 0;
  rejected = 0;
  violations = 0;
  private readonly kept: { size: number; text: string }[] = [];
  readonly rejectMessages = new Map<string, number>();

  constructor(
    readonly name: string,
    private readonly allowed: readonly ErrorClass[],
  ) {}

  /**
   * Runs `decode(input)`. A throw of an allowed class with a non-empty message counts as rejected; any other throw
   * is a violation. Returns the decoded value when accepted.
   */
  run<T>(input: Buffer | string, decode: () => T): { ok: true; value: T } | { ok: false } {
    try {
      const value = decode();
      this.accepted++;
      return { ok: true, value };
    } catch (err) {
      if (this.allowed.some((c) => err instanceof c) && err instanceof Error && err.message.length > 0) {
        this.rejected++;
        const key = err.message.split('\n')[0]!.replace(/\d+/g, 'N').slice(0, 60);
        this.rejectMessages.set(key, (this.rejectMessages.get(key) ?? 0) + 1);
        return { ok: false };
      }
      this.violation(`escaped ${describeError(err)}`, input);
      return { ok: false };
    }
  }

  /** For decoders that answer "nothing here" with undefined and must never throw: undefined counts as rejected. */
  runOptional<T>(input: Buffer | string, decode: () => T | undefined): T | undefined {
    let value: T | undefined;
    try {
      value = decode();
    } catch (err) {
      this.violation(`threw ${describeError(err)}`, input);
      return undefined;
    }
    if (value === undefined) this.rejected++;
    else this.accepted++;
    return value;
  }

  /** Records a broken property (round trip, bounds, ...) for `input`; the shortest offending inputs are kept. */
  violation(what: string, input: Buffer | string): void {
    this.violations++;
    this.kept.push({ size: input.length, text: `${what}; input ${showInput(input)}` });
    this.kept.sort((a, b) => a.size - b.size);
    if (this.kept.length > 8) this.kept.pop();
  }

  /** The (up to 8) shortest inputs that broke a property, each with what broke. */
  get examples(): string[] {
    return this.kept.map((k) => k.text);
  }

  /** Checks a property; records a violation when false. */
  check(cond: boolean, what: string, input: Buffer | string): void {
    if (!cond) this.violation(what, input);
  }

  /** Runs `fn`, which must not throw at all (e.g. re-decoding a canonical re-encoding); undefined on a throw. */
  mustNotThrow<T>(input: Buffer | string, what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.violation(`${what} threw ${describeError(err)}`, input);
      return undefined;
    }
  }

  /** Deep equality with a violation describing both sides. */
  same(found: unknown, wanted: unknown, what: string, input: Buffer | string): void {
    if (!isDeepStrictEqual(found, wanted)) this.violation(`${what}: ${short(found)} != ${short(wanted)}`, input);
  }

  /**
   * The final assertions: no violations, and both paths exercised (so a decoder replaced by a constant throw or a
   * no-op fails). `minEach` is the least number of accepted and of rejected inputs expected.
   */
  assert(t: TapLike, minEach = 1): void {
    const top = [...this.rejectMessages.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
    t.comment(
      `${this.name}: ${this.accepted + this.rejected} inputs, ${this.accepted} accepted, ${this.rejected} rejected` +
        (top.length ? `; top rejections: ${top.map(([m, n]) => `${n}× ${m}`).join(' | ')}` : ''),
    );
    t.equal(this.violations, 0, `${this.name}: no contract violations`, { examples: this.examples });
    t.ok(this.accepted >= minEach, `${this.name}: some inputs accepted (${this.accepted})`);
    t.ok(this.rejected >= minEach, `${this.name}: some inputs rejected (${this.rejected})`);
  }
}

/** For decoders that answer with a boolean: counts true/false, and any throw is a violation. */
export class BoolTally extends Tally {
  constructor(name: string) {
    super(name, []);
  }

  runBool(input: Buffer | string, decode: () => boolean): boolean | undefined {
    let r: boolean;
    try {
      r = decode();
    } catch (err) {
      this.violation(`threw ${describeError(err)}`, input);
      return undefined;
    }
    if (typeof r !== 'boolean') {
      this.violation(`returned ${typeof r}, not a boolean`, input);
      return undefined;
    }
    if (r) this.accepted++;
    else this.rejected++;
    return r;
  }
}

/** Asserts that `fn` throws an instance of `cls` (not just any error) whose message matches `message`. */
export function throwsTyped(t: TapLike, fn: () => unknown, cls: ErrorClass, message: RegExp, name: string): void {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof cls, `${name}: throws ${cls.name}`, { got: describeError(err) });
    t.match(err instanceof Error ? err.message : '', message, `${name}: message`);
    return;
  }
  t.ok(false, `${name}: throws ${cls.name}`, { got: 'no exception' });
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message.slice(0, 200)}`;
  return `non-Error ${typeof err}: ${String(err).slice(0, 100)}`;
}

function showInput(input: Buffer | string): string {
  if (typeof input === 'string') return JSON.stringify(input.length > 600 ? input.slice(0, 600) + '…' : input);
  const hex = input.subarray(0, 300).toString('hex');
  return `hex(${input.length}) ${hex}${input.length > 300 ? '…' : ''}`;
}

function short(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  } catch {
    s = String(v);
  }
  return s === undefined ? String(v) : s.slice(0, 300);
}

// ---------------------------------------------------------------------------------------------------------------
// Text helpers (PEM, YAML)

/** Applies `fn` to the lines of `text` (keeping the line terminators as they were). */
export function mapLines(text: string, fn: (lines: string[]) => string[]): string {
  const parts = text.split(/(?<=\n)/);
  return fn(parts).join('');
}

/** Line-level mutations: delete, duplicate, swap, move, or splice lines from another text. */
export function mutateLines(rng: Rng, text: string, corpus: readonly string[]): string {
  return mapLines(text, (lines) => {
    const out = [...lines];
    if (out.length === 0) return [rng.pick(corpus)];
    const i = rng.int(out.length);
    switch (rng.int(5)) {
      case 0:
        out.splice(i, 1);
        break;
      case 1:
        out.splice(i, 0, out[i]!);
        break;
      case 2: {
        const j = rng.int(out.length);
        [out[i], out[j]] = [out[j]!, out[i]!];
        break;
      }
      case 3: {
        const [line] = out.splice(i, 1);
        out.splice(rng.int(out.length + 1), 0, line!);
        break;
      }
      default: {
        const other = rng.pick(corpus).split(/(?<=\n)/);
        out.splice(i, 0, ...other.slice(rng.int(other.length)).slice(0, rng.range(1, 6)));
      }
    }
    return out;
  });
}
