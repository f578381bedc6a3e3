/**
 * How the console commands (console.ts) render what they read: Go nebula's JSON shapes, field for field, so scripts
 * written against Go's ssh console parse ours (ControlHostInfo of control.go, udp.Addr, cert MarshalJSON,
 * firewall.Packet), Go's encoder escaping and indentation, and the text forms (Go's where Go has one, small aligned
 * tables for our own commands).
 */
import { certToJsonValue, type Certificate } from '../shared/pki';
import type { ConntrackEntry } from '../shared/state/conntrack';
import { formatIPv4 } from '../shared/util/ipv4';
import { formatIPv6 } from '../shared/util/ipv6';
import { formatEndpoint, type Endpoint } from '../shared/util/endpoint';

/** Go's json.Encoder output: <, > and & (and U+2028/9) escaped, 4-space indent with -pretty, a newline at the end. */
export function goJson(value: unknown, pretty: boolean): string {
  const text = JSON.stringify(value, null, pretty ? 4 : undefined);
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

/** udp.Addr's MarshalJSON. */
export interface UdpAddrJson {
  ip: string;
  port: number;
}

export function udpAddrJson(e: Endpoint): UdpAddrJson {
  return { ip: formatIPv4(e.ip), port: e.port };
}

/** control.go's ControlHostInfo, in its field order (Go marshals a struct in declaration order). */
export interface ControlHostInfo {
  vpnIp: string;
  localIndex: number;
  remoteIndex: number;
  remoteAddrs: UdpAddrJson[];
  cachedPackets: number;
  cert: Record<string, unknown> | null;
  messageCounter: number;
  currentRemote: UdpAddrJson | null;
  currentRelaysToMe: string[];
  currentRelaysThroughMe: string[];
}

export interface HostInfoFacts {
  vpnIp: number;
  localIndex: number;
  remoteIndex: number;
  remoteAddrs: readonly Endpoint[];
  cert?: Certificate;
  messageCounter: number;
  currentRemote?: Endpoint;
}

/**
 * One host as control.go's copyHostInfo gives it. Packets waiting for a tunnel are parked in the routines, not here,
 * so cachedPackets is 0; nebula-ts has no relays yet, so the relay lists are empty.
 */
export function controlHostInfo(f: HostInfoFacts): ControlHostInfo {
  return {
    vpnIp: formatIPv4(f.vpnIp),
    localIndex: f.localIndex,
    remoteIndex: f.remoteIndex,
    remoteAddrs: f.remoteAddrs.map(udpAddrJson),
    cachedPackets: 0,
    cert: f.cert ? certToJsonValue(f.cert) : null,
    messageCounter: f.messageCounter,
    currentRemote: f.currentRemote ? udpAddrJson(f.currentRemote) : null,
    currentRelaysToMe: [],
    currentRelaysThroughMe: [],
  };
}

/** list-hostmap's text line: `fmt.Sprintf("%s: %s", VpnIp, RemoteAddrs)`, e.g. "10.1.0.2: [192.0.2.2:4242]". */
export function hostLine(h: ControlHostInfo): string {
  return `${h.vpnIp}: [${h.remoteAddrs.map((a) => `${a.ip}:${a.port}`).join(' ')}]`;
}

/** `addresses` then `current` if it is not among them (no duplicates): what remoteAddrs lists. */
export function addressesWith(addresses: readonly Endpoint[], current?: Endpoint): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const a of current ? [...addresses, current] : addresses) {
    const key = formatEndpoint(a);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function textTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

/** Seconds as Go's time.Duration prints whole seconds: "45s", "3m20s", "26h0m5s". */
export function durationText(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${m}m${s % 60}s`;
  if (m > 0) return `${m}m${s % 60}s`;
  return `${s}s`;
}

export interface RoutineRow {
  routine: number;
  pid: number | null;
  uptimeSeconds: number | null;
  restarts: number;
  insideRx: number;
  insideTx: number;
  outsideRx: number;
  outsideTx: number;
}

export function routinesText(rows: RoutineRow[]): string {
  return textTable(
    ['ROUTINE', 'PID', 'UPTIME', 'RESTARTS', 'INSIDE_RX', 'INSIDE_TX', 'OUTSIDE_RX', 'OUTSIDE_TX'],
    rows.map((r) => [r.routine, r.pid ?? '-', r.uptimeSeconds === null ? '-' : durationText(r.uptimeSeconds), r.restarts, r.insideRx, r.insideTx, r.outsideRx, r.outsideTx]),
  );
}

/** firewall.Packet's MarshalJSON (keys sorted, as Go marshals a map), plus what the entry itself holds. */
export interface ConntrackEntryJson {
  Fragment: boolean;
  LocalIP: string;
  LocalPort: number;
  Protocol: string;
  RemoteIP: string;
  RemotePort: number;
  incoming: boolean;
  rulesVersion: number;
  expiresInSeconds: number;
}

function protoName(proto: number): string {
  switch (proto) {
    case 6:
      return 'tcp';
    case 17:
      return 'udp';
    case 1:
      return 'icmp';
    case 58:
      return 'icmpv6'; // Go 1.11 firewall/packet.go MarshalJSON
    default:
      return `unknown ${proto}`;
  }
}

/** IPv6 addresses as netip.Addr.String() prints them (Go 1.11's LocalAddr / RemoteAddr), IPv4 as before. */
export function conntrackEntryJson(e: ConntrackEntry): ConntrackEntryJson {
  const v6 = e.version === 6;
  return {
    Fragment: e.fragment,
    LocalIP: v6 ? formatIPv6(e.local6) : formatIPv4(e.localIp),
    LocalPort: e.localPort,
    Protocol: protoName(e.proto),
    RemoteIP: v6 ? formatIPv6(e.remote6) : formatIPv4(e.remoteIp),
    RemotePort: e.remotePort,
    incoming: e.incoming,
    rulesVersion: e.rulesVersion,
    expiresInSeconds: e.expiresIn,
  };
}

export interface ConntrackReport {
  count: number;
  capacity: number;
  /** True when more entries exist than were listed (-limit). */
  truncated: boolean;
  entries: ConntrackEntryJson[];
}

/** addr:port, an IPv6 address in brackets (as netip.AddrPort prints it). */
function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function conntrackText(r: ConntrackReport): string {
  const head = `Conntrack entries: ${r.count} (capacity ${r.capacity})${r.truncated ? `, first ${r.entries.length} listed` : ''}\n`;
  if (r.entries.length === 0) return head;
  return (
    head +
    textTable(
      ['PROTO', 'LOCAL', 'REMOTE', 'DIRECTION', 'RULES', 'EXPIRES'],
      r.entries.map((e) => [
        e.Protocol + (e.Fragment ? ' (fragment)' : ''),
        hostPort(e.LocalIP, e.LocalPort),
        hostPort(e.RemoteIP, e.RemotePort),
        e.incoming ? 'in' : 'out',
        `v${e.rulesVersion}`,
        durationText(e.expiresInSeconds),
      ]),
    )
  );
}
