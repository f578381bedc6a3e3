/**
 * Go's time.ParseDuration ("8760h", "1h30m", "1.5h", "-10s", "300ms"), returning nanoseconds as a bigint.
 * Throws on malformed input; the flag parser turns that into Go's "parse error" wording.
 */

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5
  'μs': 1_000n, // U+03BC
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_INT64 = (1n << 63n) - 1n;

export function parseGoDuration(text: string): bigint {
  let s = text;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new Error(`time: invalid duration "${text}"`);
  let total = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?([^\d.]*)/.exec(s)!;
    const [all, intPart = '', fracPart, unitText = ''] = m;
    if (intPart === '' && (fracPart === undefined || fracPart === '')) throw new Error(`time: invalid duration "${text}"`);
    if (unitText === '') throw new Error(`time: missing unit in duration "${text}"`);
    const unit = UNITS[unitText];
    if (unit === undefined) throw new Error(`time: unknown unit "${unitText}" in duration "${text}"`);
    let v = BigInt(intPart || '0') * unit;
    if (fracPart) v += (BigInt(fracPart) * unit) / 10n ** BigInt(fracPart.length);
    total += v;
    if (total > MAX_INT64 + (neg ? 1n : 0n)) throw new Error(`time: invalid duration "${text}"`);
    s = s.slice(all.length);
  }
  return neg ? -total : total;
}

/** Go's time.Duration.String() ("8760h0m0s", "1h30m0s", "1.5s", "300ms", "0s"), for usage texts. */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  const sign = neg ? '-' : '';
  const frac = (value: bigint, digits: number): string => {
    const text = value.toString().padStart(digits, '0').replace(/0+$/, '');
    return text === '' ? '' : `.${text}`;
  };
  if (u < 1_000_000_000n) {
    const [unit, scale, digits] = u < 1_000n ? ['ns', 1n, 0] : u < 1_000_000n ? ['µs', 1_000n, 3] : ['ms', 1_000_000n, 6];
    return `${sign}${u / scale}${digits ? frac(u % scale, digits) : ''}${unit}`;
  }
  const seconds = `${(u / 1_000_000_000n) % 60n}${frac(u % 1_000_000_000n, 9)}s`;
  u /= 1_000_000_000n;
  if (u < 60n) return `${sign}${seconds}`;
  const minutes = (u / 60n) % 60n;
  const hours = u / 3600n;
  return hours > 0n ? `${sign}${hours}h${minutes}m${seconds}` : `${sign}${minutes}m${seconds}`;
}
