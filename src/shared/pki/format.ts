/**
 * Go-compatible text renderings used by `nebula-cert print` output and error messages: net.IPNet.String(),
 * time.Time.String() and RFC 3339 (time.Time.MarshalJSON), both in the local zone as Go prints them.
 */
import { formatIPv4, prefixFromMask, type IPv4Net } from '../util/ipv4';
import { zoneAbbreviation } from './localzone';

/** net.IPNet.String(): "10.1.2.3/16", or a hex mask ("10.0.0.1/ff00ff00") when the mask is not a prefix. */
export function formatNet(net: IPv4Net): string {
  const prefix = prefixFromMask(net.mask);
  return `${formatIPv4(net.ip)}/${prefix ?? (net.mask >>> 0).toString(16).padStart(8, '0')}`;
}

const pad = (n: number, w = 2): string => String(Math.abs(n)).padStart(w, '0');

interface LocalParts {
  date: string;
  time: string;
  offset: number;
}

/** Local wall-clock parts for Unix seconds `t`; the offset follows $TZ like JS Date does. */
function localParts(t: number): LocalParts {
  const d = new Date(t * 1000);
  const offset = -d.getTimezoneOffset() * 60;
  const year = d.getFullYear();
  const yearText = year < 0 ? `-${pad(year, 4)}` : pad(year, 4);
  return {
    date: `${yearText}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
    offset,
  };
}

function offsetText(offset: number, colon: boolean): string {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${sign}${pad(Math.floor(abs / 3600))}${colon ? ':' : ''}${pad(Math.floor((abs % 3600) / 60))}`;
}

/** Go's time.Time.String() for a whole-second local time: "2026-11-24 22:45:01 +0100 CET". */
export function goTimeString(t: number): string {
  const p = localParts(t);
  return `${p.date} ${p.time} ${offsetText(p.offset, false)} ${zoneAbbreviation(t, p.offset)}`;
}

/** Go's RFC 3339 (time.MarshalJSON) in the local zone: "2026-11-24T21:44:53Z" or "...T18:45:01-03:00". */
export function goRfc3339(t: number): string {
  const p = localParts(t);
  return `${p.date}T${p.time}${p.offset === 0 ? 'Z' : offsetText(p.offset, true)}`;
}
