/**
 * "host:port" and "[v6]:port" strings (static_host_map, stats.listen, lighthouse addresses, ...), taken apart in
 * one place so that what the config validator accepts is exactly what the supervisor later connects to or listens on.
 */
import { isIP } from 'node:net';

export interface HostPortText {
  /** Without brackets: "::1" for "[::1]:4242". */
  host: string;
  /** As written; `isPortText` says whether it is a port. */
  port: string;
}

/**
 * Splits at the port colon. Undefined when the text has no host:port shape: no colon, an empty host, an IPv6
 * address without brackets, or brackets around something that is not an IPv6 address. Whether the host is a valid
 * name is left to the caller.
 */
export function splitHostPort(text: string): HostPortText | undefined {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? { host: bracketed[1]!, port: bracketed[2]! } : undefined;
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = text.slice(0, colon);
  if (host.includes(':')) return undefined;
  return { host, port: text.slice(colon + 1) };
}

/** Digits only, `min`..65535. */
export function isPortText(port: string, min: number): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= min && Number(port) <= 65535;
}

/** Host and numeric port of a value the config already validated (surrounding space ignored, as validation does). */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const parts = splitHostPort(text.trim());
  if (!parts || !isPortText(parts.port, 0)) return undefined;
  return { host: parts.host, port: Number(parts.port) };
}
