/**
 * Go nebula's ssh console commands (ssh.go, control.go), run over the control socket: nebula-ctl sends a command
 * name and its arguments as typed, this parses them against the shared table (src/shared/console-commands.ts) and
 * answers with the text to print, Go's wording and JSON shapes (console-views.ts). A bad argument, or an action that
 * cannot be done (no such tunnel, tunnel already up), is an error reply of one line: nebula-ctl exits non-zero with
 * it, where Go's console printed it as ordinary output.
 *
 * The commands act through the parts that own the state (tunnels.ts closes and moves tunnels, the handshake manager
 * starts handshakes); nothing here keeps state of its own. Commands built with other parts (lighthouse, relays,
 * stats) are handed in as `extra` handlers, beside their entry in the shared table.
 */
import { formatAddr6 } from '../shared/protocol/vpn-addr';
import { commandHelp, findCommand, parseCommandArgs, UsageError, type ParsedArgs } from '../shared/console-commands';
import { parseLogLevel, type Logger } from '../shared/log';
import { certToJsonValue, certToText } from '../shared/pki';
import { isPortText, splitHostPort } from '../shared/util/host-port';
import { formatCidr, parseIPv4 } from '../shared/util/ipv4';
import type { Endpoint } from '../shared/util/endpoint';
import {
  addressesWith,
  conntrackEntryJson,
  conntrackText,
  controlHostInfo,
  goJson,
  hostLine,
  routinesText,
  type ConntrackReport,
  type ControlHostInfo,
} from './console-views';
import type { HandshakeManager } from './handshake-manager';
import type { HostInfo, HostMap } from './hostmap';
import type { LiveConfig } from './live-config';
import type { RoutinePool } from './routines';
import type { SharedRegion } from './shared-region';
import { routineRows } from './status';
import type { Tunnels } from './tunnels';

/** What the commands read and act on; the running node's ReportedParts (status.ts) is one. */
export interface ConsoleParts {
  log: Logger;
  live: Pick<LiveConfig, 'pki' | 'vpnIp' | 'vpnMask'>;
  insideName: string;
  hostmap: Pick<HostMap, 'hosts' | 'get' | 'sendCounter'>;
  handshakes: Pick<HandshakeManager, 'start' | 'isPending' | 'pendingHandshakes' | 'knownAddresses' | 'knownAddresses6'>;
  tunnels: Pick<Tunnels, 'teardown' | 'moveTo'>;
  routines: Pick<RoutinePool, 'pids' | 'restarts' | 'startedAt'>;
  region: Pick<SharedRegion, 'routineCounter' | 'conntrackCount' | 'conntrackEntries' | 'capacities'>;
}

export type ConsoleReply = { ok: true; output: string } | { ok: false; error: string };

/** Runs one parsed command; returns what nebula-ctl prints, or throws ConsoleError / UsageError. */
export type ConsoleHandler<P extends ConsoleParts = ConsoleParts> = (a: ParsedArgs, p: P) => string;

/** The command could not be done; its message is one line. */
export class ConsoleError extends Error {}

const LOG_LEVELS = '[panic fatal error warning info debug trace]';
/** conntrack -limit: at most this many entries in one answer (about 20 MB of JSON), whatever the table holds. */
const MAX_CONNTRACK_LISTED = 100_000;

/** Go's checks on a vpn ip argument, in Go's words. */
function vpnIpArg(text: string | undefined): number {
  if (text === undefined) throw new ConsoleError('No vpn ip was provided');
  const ip = parseIPv4(text);
  if (ip === undefined || ip === 0) throw new ConsoleError(`The provided vpn ip could not be parsed: ${text}`);
  return ip;
}

/** udp.NewAddrFromString: an IPv4 address and a port (no names: the console never resolves). */
function addressArg(text: string): Endpoint {
  const parts = splitHostPort(text.trim());
  const ip = parts ? parseIPv4(parts.host) : undefined;
  if (!parts || ip === undefined || !isPortText(parts.port, 1)) throw new ConsoleError(`Address could not be parsed: ${text}`);
  return { ip, port: Number(parts.port) };
}

function tunnelFor(p: ConsoleParts, text: string | undefined): HostInfo {
  const h = p.hostmap.get(vpnIpArg(text));
  if (!h) throw new ConsoleError(`Could not find tunnel for vpn ip: ${text}`);
  return h;
}

function hostInfo(p: ConsoleParts, h: HostInfo): ControlHostInfo {
  const current = { ip: h.remoteIp, port: h.remotePort };
  return controlHostInfo({
    vpnIp: h.vpnIp,
    localIndex: h.localIndex,
    remoteIndex: h.remoteIndex,
    remoteAddrs: addressesWith(p.handshakes.knownAddresses(h.vpnIp), current),
    cert: h.cert,
    messageCounter: p.hostmap.sendCounter(h),
    currentRemote: current,
  });
}

/** A listing: Go's json (-json, -pretty) or its text lines. */
function listing(a: ParsedArgs, value: unknown, text: () => string): string {
  return a.bool('json') || a.bool('pretty') ? goJson(value, a.bool('pretty')) : text();
}

const byVpnIp = (x: { vpnIp: number }, y: { vpnIp: number }): number => x.vpnIp - y.vpnIp;

const listHostmap: ConsoleHandler = (a, p) => {
  const hosts = [...p.hostmap.hosts()].sort(byVpnIp).map((h) => hostInfo(p, h));
  return listing(a, hosts, () => hosts.map((h) => hostLine(h) + '\n').join(''));
};

const listPendingHostmap: ConsoleHandler = (a, p) => {
  const pending = [...p.handshakes.pendingHandshakes()].sort(byVpnIp).map((h) => {
    const info = controlHostInfo({
      vpnIp: h.vpnIp,
      localIndex: h.localIndex,
      remoteIndex: 0,
      remoteAddrs: addressesWith(h.target6 ? p.handshakes.knownAddresses6(h.target6) : p.handshakes.knownAddresses(h.vpnIp), h.knownAddress),
      messageCounter: 0,
    });
    // First contact by IPv6 address: the host has no IPv4 VPN IP yet, it is named by the address asked for.
    return h.target6 ? { ...info, vpnIp: formatAddr6(h.target6) } : info;
  });
  return listing(a, pending, () => pending.map((h) => hostLine(h) + '\n').join(''));
};

const printCert: ConsoleHandler = (a, p) => {
  const cert = a.args.length > 0 ? tunnelFor(p, a.args[0]).cert : p.live.pki.cert;
  // Go checks -json first: with both, -json wins over -raw.
  if (a.bool('json') || a.bool('pretty')) return goJson(certToJsonValue(cert), a.bool('pretty'));
  if (a.bool('raw')) return cert.toPem();
  return certToText(cert) + '\n';
};

const printTunnel: ConsoleHandler = (a, p) => {
  return goJson(hostInfo(p, tunnelFor(p, a.args[0])), a.bool('pretty'));
};

const changeRemote: ConsoleHandler = (a, p) => {
  if (a.args.length === 0) throw new ConsoleError('No vpn ip was provided');
  const flag = a.string('address');
  if (flag !== undefined && a.args.length > 1) throw new UsageError('give the address either with -address or as the second argument, not both');
  const text = flag ?? a.args[1];
  if (!text) throw new ConsoleError('No address was provided');
  const to = addressArg(text);
  const h = tunnelFor(p, a.args[0]);
  // As Go's SetRemote: the operator's choice, not checked against the remote allow list.
  p.tunnels.moveTo(h, to.ip, to.port);
  return 'Changed\n';
};

const closeTunnel: ConsoleHandler = (a, p) => {
  const h = tunnelFor(p, a.args[0]);
  p.tunnels.teardown(h, !a.bool('local-only'));
  return 'Closed\n';
};

const createTunnel: ConsoleHandler = (a, p) => {
  const vpnIp = vpnIpArg(a.args[0]);
  if (vpnIp === p.live.vpnIp) throw new ConsoleError(`${a.args[0]} is this node's own vpn ip`);
  if (p.hostmap.get(vpnIp)) throw new ConsoleError('Tunnel already exists');
  if (p.handshakes.isPending(vpnIp)) throw new ConsoleError('Tunnel already handshaking');
  const text = a.string('address');
  const address = text === undefined ? undefined : addressArg(text);
  p.handshakes.start(vpnIp, address);
  return 'Created\n';
};

const logLevel: ConsoleHandler = (a, p) => {
  const wanted = a.args[0];
  if (wanted !== undefined) {
    const level = parseLogLevel(wanted);
    if (!level) throw new ConsoleError(`Unknown log level ${wanted}. Possible log levels: ${LOG_LEVELS}`);
    p.log.configure({ level });
  }
  return `Log level is: ${p.log.level}\n`;
};

const logFormat: ConsoleHandler = (a, p) => {
  const wanted = a.args[0]?.toLowerCase();
  if (wanted !== undefined) {
    if (wanted !== 'text' && wanted !== 'json') throw new ConsoleError(`unknown log format \`${wanted}\`. possible formats: [text json]`);
    p.log.configure({ format: wanted });
  }
  return `Log format is: ${p.log.format}\n`;
};

const deviceInfo: ConsoleHandler = (a, p) => {
  const info = { name: p.insideName, cidr: [formatCidr({ ip: p.live.vpnIp, mask: p.live.vpnMask })] };
  return listing(a, info, () => `name=${info.name} cidr=[${info.cidr.join(' ')}]\n`);
};

const routines: ConsoleHandler = (a, p) => {
  const rows = routineRows(p);
  return listing(a, rows, () => routinesText(rows));
};

const conntrack: ConsoleHandler = (a, p) => {
  const limit = a.int('limit', 1000);
  if (limit > MAX_CONNTRACK_LISTED) throw new UsageError(`-limit is at most ${MAX_CONNTRACK_LISTED}`);
  // One more than asked: tells a full listing from a cut one.
  const entries = p.region.conntrackEntries(limit + 1);
  const report: ConntrackReport = {
    count: p.region.conntrackCount(),
    capacity: p.region.capacities.conntrack,
    truncated: entries.length > limit,
    entries: entries.slice(0, limit).map(conntrackEntryJson),
  };
  return listing(a, report, () => conntrackText(report));
};

/**
 * The commands over the parts `parts()` returns. `P` is what extra handlers get: the node passes its ReportedParts,
 * so a command built with another part (the lighthouse) reads it from there, e.g.
 * `new NodeConsole(() => node.reportedParts(), VERSION, { 'query-lighthouse': (a, p) => ... p.lighthouse ... })`.
 */
export class NodeConsole<P extends ConsoleParts = ConsoleParts> {
  private readonly handlers: ReadonlyMap<string, ConsoleHandler<P>>;

  /** @param parts read at every command (the running node's parts); throws while the node is not started */
  constructor(
    private readonly parts: () => P,
    version: string,
    extra: Readonly<Record<string, ConsoleHandler<P>>> = {},
  ) {
    this.handlers = new Map<string, ConsoleHandler<P>>([
      ['list-hostmap', listHostmap],
      ['list-pending-hostmap', listPendingHostmap],
      ['print-cert', printCert],
      ['print-tunnel', printTunnel],
      ['change-remote', changeRemote],
      ['close-tunnel', closeTunnel],
      ['create-tunnel', createTunnel],
      ['log-level', logLevel],
      ['log-format', logFormat],
      ['version', () => `${version}\n`],
      ['device-info', deviceInfo],
      ['routines', routines],
      ['conntrack', conntrack],
      ...Object.entries(extra),
    ]);
  }

  /** Runs `cmd` with `argv` (the arguments as typed after it); unknown commands and bad arguments are error replies. */
  run(cmd: string, argv: unknown = []): ConsoleReply {
    const spec = findCommand(cmd);
    const handler = this.handlers.get(cmd);
    if (!spec || !handler) return { ok: false, error: `unknown command ${JSON.stringify(cmd)} (nebula-ctl help lists the commands)` };
    if (!Array.isArray(argv) || !argv.every((x): x is string => typeof x === 'string')) {
      return { ok: false, error: 'the request\'s "args" must be a list of strings' };
    }
    try {
      const a = parseCommandArgs(spec, argv);
      if (a.help) return { ok: true, output: commandHelp(spec) };
      return { ok: true, output: handler(a, this.parts()) };
    } catch (err) {
      if (err instanceof ConsoleError || err instanceof UsageError) return { ok: false, error: err.message };
      throw err;
    }
  }
}
