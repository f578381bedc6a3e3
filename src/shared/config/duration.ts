/**
 * Go `time.ParseDuration` syntax ("100ms", "1h30m", "1.5s", "-2m", "0"), returned in milliseconds (fractions kept,
 * so "1500us" is 1.5). Nebula reads every duration key through it, so configs written for Nebula must parse here.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Returns milliseconds, or an error message (Go's wording) when the text is not a duration. */
export function parseGoDuration(text: string): number | string {
  const bad = `${JSON.stringify(text)} is not a duration (e.g. 100ms, 10s, 12m, 1h30m)`;
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return bad;
  let total = 0;
  const re = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (m === null) return /^[\d.]+$/.test(s) ? `${JSON.stringify(text)} is missing a unit (ns, us, ms, s, m, h)` : bad;
    const [all, whole, frac, unit] = m;
    if (whole === '' && (frac === undefined || frac === '')) return bad;
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? ''}`.replace(/\.$/, ''));
    total += value * UNIT_MS[unit];
    s = s.slice(all.length);
  }
  return sign * total;
}

/** Formats milliseconds back to Go syntax (used in messages and the `-test` dump). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.abs(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h > 0) parts.push(`${h}h`);
  if (m > 0) parts.push(`${m}m`);
  if (rest > 0 || parts.length === 0) parts.push(rest >= 1000 || h + m > 0 ? `${rest / 1000}s` : `${rest}ms`);
  return (ms < 0 ? '-' : '') + parts.join('');
}
