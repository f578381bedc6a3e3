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
