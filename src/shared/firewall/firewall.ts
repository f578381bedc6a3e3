/**
 * One immutable firewall rule set plus the address checks that precede it (nebula-spec §7.2, §7.5).
 * Conntrack is not here: it lives in shared memory, owned by another layer, which calls `allows` on a miss and
 * `matchesRules` to re-verify an entry stamped with an older `rulesVersion` after a reload.
 */
import { createHash } from 'node:crypto';
import { IPv4Net, formatCidr, netContains, parseCidr } from '../util/ipv4';
import { FirewallPacket } from './packet';
import { FirewallRule, PORT_FRAGMENT, PROTO_TCP, PROTO_UDP } from './rule';
import { FirewallPeer, LocalDefault, RuleTable } from './table';

export type FirewallDirection = 'in' | 'out';
export type FirewallVerdict = 'allow' | 'drop_remote_ip' | 'drop_local_ip' | 'drop_no_rule';
/**
 * What happens to a refused packet (`firewall.inbound_action` / `outbound_action`, Nebula 1.7+): dropped silently,
 * or dropped and answered with a TCP RST / ICMP unreachable (reject-packet.ts).
 */
export type FirewallAction = 'drop' | 'reject';

/** Our own cert's addresses: a packet's local IP must be one of them (or inside a subnet). */
export interface FirewallLocal {
  ips: readonly number[];
  /** Our cert's unsafe networks. */
  subnets: readonly IPv4Net[];
  /**
   * Our VPN networks (cert IP with its mask): what a rule without local_cidr accepts when we have unsafe networks
   * and default_local_cidr_any is false. Absent: each of `ips` as a /32.
   */
  networks?: readonly IPv4Net[];
}

/** Conntrack timeouts in milliseconds (config `firewall.conntrack.*`). */
export interface ConntrackTimeouts {
  tcp_timeout: number;
  udp_timeout: number;
  default_timeout: number;
}

export interface FirewallOptions {
  inbound: readonly FirewallRule[];
  outbound: readonly FirewallRule[];
  local: FirewallLocal;
  conntrack?: Partial<ConntrackTimeouts>;
  /** Starting version; the owner sets `bumpRulesVersion(old.rulesVersion)` for a reloaded rule set. */
  rulesVersion?: number;
  /**
   * `firewall.default_local_cidr_any` (default true here and in the config, as in Nebula 1.9; 1.10 made it false):
   * whether a rule without local_cidr also covers our unsafe networks. See LocalDefault in table.ts.
   */
  defaultLocalCidrAny?: boolean;
  /** `firewall.inbound_action` / `outbound_action` (absent: drop). */
  inboundAction?: FirewallAction;
  outboundAction?: FirewallAction;
}

const DEFAULT_TIMEOUTS: ConntrackTimeouts = { tcp_timeout: 12 * 60_000, udp_timeout: 3 * 60_000, default_timeout: 10 * 60_000 };

/** Next 16-bit rules version. 0 after a wrap means "conntrack must be reset" (Nebula logs an overflow warning). */
export function bumpRulesVersion(previous: number): number {
  return (previous + 1) & 0xffff;
}

function ruleLine(incoming: boolean, r: FirewallRule): string {
  // Same field order and %v-style rendering as Nebula's rule description; only logged, so identity is best effort.
  const net = r.cidr === '' ? undefined : parseCidr(r.cidr);
  const ip = net === undefined ? '' : formatCidr({ ip: (net.ip & net.mask) >>> 0, mask: net.mask });
  // Nebula 1.9+ always adds `localIp: <local_cidr>`; only a rule that has one says it here, so the hash of a rule
  // set without local_cidr stays the one Nebula 1.6.1 logs.
  const local = r.localCidr === undefined || r.localCidr === '' ? '' : `, localIp: ${r.localCidr}`;
  return (
    `incoming: ${incoming}, proto: ${r.proto}, startPort: ${r.startPort}, endPort: ${r.endPort}, ` +
    `groups: [${r.groups.join(' ')}], host: ${r.host}, ip: ${ip}${local}, caName: ${r.caName}, caSha: ${r.caSha}\n`
  );
}

/** The text description of a rule set (outbound first, then inbound) and its SHA-256, as Nebula logs them. */
export function describeRules(outbound: readonly FirewallRule[], inbound: readonly FirewallRule[]): { text: string; hash: string } {
  let text = '';
  for (const r of outbound) text += ruleLine(false, r);
  for (const r of inbound) text += ruleLine(true, r);
  return { text, hash: createHash('sha256').update(text).digest('hex') };
}

export class Firewall {
  readonly rulesText: string;
  /** Lowercase hex SHA-256 of `rulesText` (logged as firewallHash). */
  readonly rulesHash: string;
  /** 16-bit counter stamped on conntrack entries; the owner bumps it on reload. */
  rulesVersion: number;
  readonly timeouts: Readonly<ConntrackTimeouts>;
  /** Whether a refused inbound packet is answered to its sender through the tunnel (inbound_action: reject). */
  readonly rejectInbound: boolean;
  /** Whether a refused outbound packet is answered to the local sender on the inside (outbound_action: reject). */
  readonly rejectOutbound: boolean;
  private readonly inRules: RuleTable;
  private readonly outRules: RuleTable;
  private readonly localIps: readonly number[];
  private readonly localSubnets: readonly IPv4Net[];

  constructor(opts: FirewallOptions) {
    const local: LocalDefault = {
      any: (opts.defaultLocalCidrAny ?? true) || opts.local.subnets.length === 0,
      networks: opts.local.networks ?? opts.local.ips.map((ip) => ({ ip, mask: 0xffffffff })),
    };
    this.inRules = new RuleTable(opts.inbound, local);
    this.outRules = new RuleTable(opts.outbound, local);
    const { text, hash } = describeRules(opts.outbound, opts.inbound);
    this.rulesText = text;
    this.rulesHash = hash;
    this.rulesVersion = (opts.rulesVersion ?? 0) & 0xffff;
    this.timeouts = Object.freeze({ ...DEFAULT_TIMEOUTS, ...opts.conntrack });
    this.rejectInbound = opts.inboundAction === 'reject';
    this.rejectOutbound = opts.outboundAction === 'reject';
    this.localIps = [...opts.local.ips];
    this.localSubnets = [...opts.local.subnets];
  }

  /** Full check after a conntrack miss: remote IP vs peer cert, local IP vs own cert, then the rules. */
  allows(direction: FirewallDirection, packet: FirewallPacket, peer: FirewallPeer): FirewallVerdict {
    if (!inAddresses(packet.remoteIp, peer.ips, peer.subnets)) return 'drop_remote_ip';
    if (!inAddresses(packet.localIp, this.localIps, this.localSubnets)) return 'drop_local_ip';
    return this.matchesRules(direction, packet, peer) ? 'allow' : 'drop_no_rule';
  }

  /**
   * Rules only, no address checks. Conntrack re-verification passes the entry's ORIGINAL direction, not the
   * direction of the packet that hit it (nebula-spec §7.5).
   */
  matchesRules(direction: FirewallDirection, packet: FirewallPacket, peer: FirewallPeer): boolean {
    const incoming = direction === 'in';
    const port = packet.fragment ? PORT_FRAGMENT : incoming ? packet.localPort : packet.remotePort;
    return (incoming ? this.inRules : this.outRules).match(packet.proto, port, packet.localIp, packet.remoteIp, peer);
  }

  /** Conntrack expiry for a packet of this protocol (ICMP and everything else use the default timeout). */
  timeoutFor(proto: number): number {
    if (proto === PROTO_TCP) return this.timeouts.tcp_timeout;
    if (proto === PROTO_UDP) return this.timeouts.udp_timeout;
    return this.timeouts.default_timeout;
  }
}

function inAddresses(ip: number, ips: readonly number[], subnets: readonly IPv4Net[]): boolean {
  for (let i = 0; i < ips.length; i++) if (ips[i] === ip >>> 0) return true;
  for (let i = 0; i < subnets.length; i++) if (netContains(subnets[i], ip)) return true;
  return false;
}
