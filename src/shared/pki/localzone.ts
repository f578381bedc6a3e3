/**
 * The local time-zone abbreviation Go would print (time.Time.String's "MST" element, e.g. "UTC", "CET", "-03").
 * JS only offers locale-dependent names ("GMT+1"), so the abbreviation is read from the TZif file Go itself would
 * load: $TZ (name or absolute path) or /etc/localtime. The UTC offset comes from the JS Date, which follows $TZ.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

interface ZoneInfo {
  transitions: number[];
  typeIdx: number[];
  types: { offset: number; abbr: string; isDst: boolean }[];
  footer: string;
}

let cached: ZoneInfo | null | undefined;

function zoneFile(): string | null {
  const tz = process.env.TZ;
  if (tz === undefined) return '/etc/localtime';
  let name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name === '' || name === 'UTC') return null;
  if (name.startsWith('/')) return name;
  if (name.includes('..')) return null;
  const dir = process.env.ZONEINFO ?? '/usr/share/zoneinfo';
  name = path.join(dir, name);
  return name;
}

function parseTzif(buf: Buffer): ZoneInfo | null {
  if (buf.length < 44 || buf.toString('latin1', 0, 4) !== 'TZif') return null;
  const version = buf[4]!;
  let off = 0;
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((i) => buf.readUInt32BE(at + 20 + i * 4));
  let [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt] = counts(0) as [number, number, number, number, number, number];
  let timeSize = 4;
  if (version >= 0x32) {
    // Skip the 32-bit block and use the 64-bit one that follows.
    off = 44 + timecnt * 4 + timecnt + typecnt * 6 + charcnt + leapcnt * 8 + isstdcnt + isutcnt;
    [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt] = counts(off) as [number, number, number, number, number, number];
    timeSize = 8;
  }
  let p = off + 44;
  const transitions: number[] = [];
  for (let i = 0; i < timecnt; i++, p += timeSize) {
    transitions.push(timeSize === 8 ? Number(buf.readBigInt64BE(p)) : buf.readInt32BE(p));
  }
  const typeIdx: number[] = [];
  for (let i = 0; i < timecnt; i++) typeIdx.push(buf[p++]!);
  const rawTypes: { offset: number; isDst: boolean; idx: number }[] = [];
  for (let i = 0; i < typecnt; i++, p += 6) rawTypes.push({ offset: buf.readInt32BE(p), isDst: buf[p + 4] === 1, idx: buf[p + 5]! });
  const chars = buf.subarray(p, p + charcnt);
  p += charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt;
  const types = rawTypes.map((t) => {
    const end = chars.indexOf(0, t.idx);
    return { offset: t.offset, isDst: t.isDst, abbr: chars.toString('latin1', t.idx, end < 0 ? chars.length : end) };
  });
  let footer = '';
  if (version >= 0x32 && buf[p] === 0x0a) {
    const end = buf.indexOf(0x0a, p + 1);
    footer = buf.toString('latin1', p + 1, end < 0 ? buf.length : end);
  }
  return { transitions, typeIdx, types, footer };
}

function loadZone(): ZoneInfo | null {
  if (cached !== undefined) return cached;
  const file = zoneFile();
  try {
    cached = file ? parseTzif(readFileSync(file)) : null;
  } catch {
    cached = null;
  }
  return cached;
}

/** Abbreviations named in a POSIX TZ footer such as "CET-1CEST,M3.5.0,M10.5.0/3" or "<-03>3". */
function footerAbbrs(footer: string): { std?: { abbr: string; offset: number }; dst?: string } {
  const m = /^(<[^>]*>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?)(<[^>]*>|[A-Za-z]{3,})?/.exec(footer);
  if (!m) return {};
  const strip = (s: string): string => (s.startsWith('<') ? s.slice(1, -1) : s);
  const [h = '0', mi = '0', se = '0'] = m[2]!.replace(/^[+-]/, '').split(':');
  const sign = m[2]!.startsWith('-') ? 1 : -1; // POSIX offsets are west-positive
  const offset = sign * (Number(h) * 3600 + Number(mi) * 60 + Number(se));
  return { std: { abbr: strip(m[1]!), offset }, dst: m[3] ? strip(m[3]) : undefined };
}

/** Go's numeric stand-in when a zone has no abbreviation: "-07" or "-0730". */
function numericAbbr(offsetSeconds: number): string {
  const sign = offsetSeconds < 0 ? '-' : '+';
  const abs = Math.abs(offsetSeconds);
  const h = String(Math.floor(abs / 3600)).padStart(2, '0');
  const m = Math.floor((abs % 3600) / 60);
  return m === 0 ? `${sign}${h}` : `${sign}${h}${String(m).padStart(2, '0')}`;
}

/** Zone abbreviation for Unix time `t` (seconds) whose local UTC offset is `offsetSeconds`. */
export function zoneAbbreviation(t: number, offsetSeconds: number): string {
  const zone = loadZone();
  if (!zone) return offsetSeconds === 0 ? 'UTC' : numericAbbr(offsetSeconds);
  const n = zone.transitions.length;
  if (n > 0 && t >= zone.transitions[0]! && t < zone.transitions[n - 1]!) {
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (zone.transitions[mid]! <= t) lo = mid;
      else hi = mid;
    }
    const type = zone.types[zone.typeIdx[lo]!];
    if (type && type.offset === offsetSeconds) return type.abbr;
  }
  const f = footerAbbrs(zone.footer);
  if (f.std && f.std.offset === offsetSeconds) return f.std.abbr;
  if (f.dst && f.std && f.std.offset !== offsetSeconds) return f.dst;
  for (let i = zone.types.length - 1; i >= 0; i--) if (zone.types[i]!.offset === offsetSeconds) return zone.types[i]!.abbr;
  return numericAbbr(offsetSeconds);
}
