/**
 * Schema building blocks with Nebula's leniency and our error wording.
 *
 * Every scalar is `z.unknown().transform(...)` rather than `z.number()` etc. because Nebula reads values with %v
 * (so `mtu: "1300"` works there) and absent or `null` keys (`tun:` with nothing under it) mean "default"; we keep
 * that, but unlike Nebula an unparseable value is an error instead of a silent default. Messages are ours so they
 * read `listen.port: must be an integer between 0 and 65535` rather than zod's generic text.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCidr, parseIPv4 } from '../util/ipv4';
import { isPortText, splitHostPort } from '../util/host-port';
import { parseGoDuration } from './duration';

/** A failed conversion; any other return value is the converted value. */
export class Bad {
  /** `path` is relative to the value being converted (used by nested converters such as allow lists). */
  constructor(
    readonly message: string,
    readonly path: (string | number)[] = [],
  ) {}
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'a list' : 'a map';
}

/** Wraps a converter into a schema; `undefined`/`null` input yields `def` (or the converter decides if omitted). */
export function scalar<T>(convert: (v: unknown) => T | Bad, def?: () => T): z.ZodType<T, unknown> {
  return z.unknown().optional().transform((v, ctx): T => {
    if ((v === undefined || v === null) && def !== undefined) return def();
    const r = convert(v);
    if (r instanceof Bad) {
      ctx.addIssue({ code: 'custom', message: r.message, path: r.path, input: v });
      return z.NEVER;
    }
    return r;
  });
}

const TRUE_WORDS = new Set(['true', 'yes', 'y', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'n', 'off', '0']);

export function toBool(v: unknown): boolean | Bad {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' || typeof v === 'number') {
    const t = String(v).toLowerCase();
    if (TRUE_WORDS.has(t)) return true;
    if (FALSE_WORDS.has(t)) return false;
  }
  return new Bad(`must be true or false, got ${show(v)}`);
}

export function toInt(v: unknown, min: number, max: number): number | Bad {
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer between ${min} and ${max}`;
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) n = Number(v);
  if (n === undefined || !Number.isInteger(n) || n < min || n > max) return new Bad(`must be ${range}, got ${show(v)}`);
  return n;
}

export function toStr(v: unknown): string | Bad {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return new Bad(`must be a string, got ${show(v)}`);
}

export const bool = (def: boolean) => scalar(toBool, () => def);
export const optBool = () => scalar<boolean | undefined>(toBool, () => undefined);
export const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => scalar((v) => toInt(v, min, max), () => def);
export const optInt = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  scalar<number | undefined>((v) => toInt(v, min, max), () => undefined);
export const str = (def: string) => scalar(toStr, () => def);

/** A string that must be present and non-empty (pki paths/PEM). */
export const requiredStr = () =>
  scalar((v) => {
    if (v === undefined || v === null || v === '') return new Bad('required');
    return toStr(v);
  });

export function oneOf<T extends string>(def: T, values: readonly T[]) {
  return scalar((v): T | Bad => {
    const s = toStr(v);
    if (!(s instanceof Bad) && (values as readonly string[]).includes(s)) return s as T;
    return new Bad(`must be one of ${values.join(', ')}, got ${show(v)}`);
  }, () => def);
}

export function toDuration(v: unknown): number | Bad {
  if (v === 0) return 0;
  if (typeof v !== 'string') return new Bad(`must be a duration such as "10s" or "100ms", got ${show(v)}`);
  const r = parseGoDuration(v.trim());
  if (typeof r === 'string') return new Bad(r);
  if (r < 0) return new Bad(`must not be negative, got ${show(v)}`);
  return r;
}

/** Go duration → milliseconds. */
export const duration = (defMs: number) => scalar(toDuration, () => defMs);
export const optDuration = () => scalar<number | undefined>(toDuration, () => undefined);

/** Keys Nebula reads with GetInt as seconds; we also accept a Go duration string. Result in milliseconds. */
export const seconds = (defSeconds: number) =>
  scalar((v): number | Bad => {
    if (typeof v === 'number' || (typeof v === 'string' && /^\s*\d+\s*$/.test(v))) {
      const n = toInt(v, 0, 1e9);
      return n instanceof Bad ? new Bad(`must be a number of seconds or a duration, got ${show(v)}`) : n * 1000;
    }
    return toDuration(v);
  }, () => defSeconds * 1000);

export function toIPv4(v: unknown): string | Bad {
  if (typeof v === 'string' && parseIPv4(v.trim()) !== undefined) return v.trim();
  return new Bad(`${show(v)} is not an IPv4 address`);
}

/** IPv4 CIDR (the overlay is IPv4 only). */
export function toCidr4(v: unknown): string | Bad {
  if (typeof v === 'string' && parseCidr(v.trim()) !== undefined) return v.trim();
  return new Bad(`${show(v)} is not an IPv4 CIDR`);
}

/** IPv4 or IPv6 CIDR (underlay addresses, allow lists). */
export function isCidr46(text: string): boolean {
  if (parseCidr(text) !== undefined) return true;
  const slash = text.indexOf('/');
  if (slash < 0 || isIP(text.slice(0, slash)) !== 6) return false;
  const p = text.slice(slash + 1);
  return /^\d{1,3}$/.test(p) && Number(p) <= 128;
}

/**
 * "host:port" or "[v6]:port". Hosts may be DNS names (Nebula resolves them at load); the port must be numeric.
 * `minPort` is 1 for remotes we send to, 0 where 0 means "our listen port".
 */
export function toHostPort(v: unknown, minPort: number): string | Bad {
  const bad = new Bad(`${show(v)} is not a host:port address`);
  if (typeof v !== 'string') return bad;
  const s = v.trim();
  const parts = splitHostPort(s);
  // A bracketed host is an IPv6 address (splitHostPort checked it); anything else must look like a name or IPv4.
  if (!parts || (isIP(parts.host) !== 6 && !/^[A-Za-z0-9.\-_]+$/.test(parts.host))) return bad;
  if (!isPortText(parts.port, minPort)) return new Bad(`${show(v)} has an invalid port (must be ${minPort}-65535)`);
  return s;
}

/** Known keys of each map schema, for the unknown-key walk (see unknown.ts). */
export const SECTION_SHAPES = new WeakMap<z.ZodType, Record<string, z.ZodType>>();

/**
 * A map of known keys. Absent/null means all defaults (Nebula treats `tun:` with nothing under it like no `tun`).
 * `fromScalar` lets a legacy scalar form stand for the map (e.g. `punchy: true`).
 */
export function section<S extends Record<string, z.ZodType>>(shape: S, fromScalar?: (v: unknown) => unknown) {
  const schema = z.preprocess(
    (v) => {
      if (v === undefined || v === null) return {};
      if (fromScalar !== undefined && (typeof v !== 'object' || Array.isArray(v))) return fromScalar(v);
      return v;
    },
    z.object(shape, { error: (iss) => `must be a map, got ${show(iss.input)}` }),
  );
  SECTION_SHAPES.set(schema, shape);
  return schema;
}

/** Item schema of each list schema, for the unknown-key walk. */
export const LIST_ITEMS = new WeakMap<z.ZodType, z.ZodType>();

/** A list; absent/null means empty. */
export function list<T extends z.ZodType>(item: T) {
  const schema = z.preprocess(
    (v) => (v === undefined || v === null ? [] : v),
    z.array(item, { error: (iss) => `must be a list, got ${show(iss.input)}` }),
  );
  LIST_ITEMS.set(schema, item);
  return schema;
}

/** A list whose items are converted by `convert`; with `acceptSingle` a lone scalar counts as a one-item list. */
export function listOf<T>(convert: (v: unknown) => T | Bad, acceptSingle = false): z.ZodType<T[], unknown> {
  const inner = list(scalar(convert));
  if (!acceptSingle) return inner;
  return z.preprocess((v) => (v !== null && v !== undefined && typeof v !== 'object' ? [v] : v), inner);
}

/**
 * A map with free-form keys (VPN IPs, CIDRs, regexes): each key checked by `checkKey` (returns a problem or
 * undefined), each value converted by `convert`. Absent/null means empty. Issues carry the key in their path.
 */
export function record<T>(checkKey: (k: string) => string | undefined, convert: (v: unknown) => T | Bad) {
  return z.unknown().optional().transform((v, ctx): Record<string, T> => {
    const out: Record<string, T> = {};
    if (v === undefined || v === null) return out;
    if (typeof v !== 'object' || Array.isArray(v)) {
      ctx.addIssue({ code: 'custom', message: `must be a map, got ${show(v)}`, input: v });
      return z.NEVER;
    }
    let ok = true;
    for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
      const problem = checkKey(k);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem, path: [k], input: k });
        ok = false;
        continue;
      }
      const r = convert(raw);
      if (r instanceof Bad) {
        ctx.addIssue({ code: 'custom', message: r.message, path: [k, ...r.path], input: raw });
        ok = false;
      } else out[k] = r;
    }
    return ok ? out : z.NEVER;
  });
}
