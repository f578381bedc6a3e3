/**
 * One immutable firewall rule set plus the address checks that precede it (nebula-spec §7.2, §7.5).
 * Conntrack is not here: it lives in shared memory, owned by another layer, which calls `allows` on a miss and
 * `matchesRules` to re-verify an entry stamped with an older `rulesVersion` after a reload.
 */
import { createHash } from 'node:crypto';
import { IPv4Net, formatCidr, netContains } from '../util/ipv4';
import { IPv6Net, IPv6Words, formatCidr6, net6Contains } from '../util/ipv6';
import { FirewallPacket } from './packet';
import { FirewallRule, PORT_ANY, PORT_FRAGMENT, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, parseRuleCidr } from './rule';
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
  /** Our cert's IPv6 VPN addresses (absent: none). */
  ips6?: readonly IPv6Words[];
  /** Our cert's IPv6 unsafe networks (absent: none). */
  subnets6?: readonly IPv6Net[];
  /**
   * Our IPv6 VPN networks (each cert network with its prefix). Used as `networks` is, and for Go 1.11's peer check:
   * a peer's IPv6 VPN address outside all of them is refused (hostmap.go buildNetworks: NetworkTypeVPNPeer).
   * Absent: each of `ips6` as a /128, so pass it whenever we have IPv6 networks.
   */
  networks6?: readonly IPv6Net[];
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
  const cidr = r.cidr === '' ? undefined : parseRuleCidr(r.cidr);
  let ip = '';
  if (cidr?.family === 4) ip = formatCidr({ ip: (cidr.net.ip & cidr.net.mask) >>> 0, mask: cidr.net.mask });
  else if (cidr?.family === 6) ip = formatCidr6(maskedNet6(cidr.net));
  else if (cidr?.family === 'any') ip = 'any';
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
  private readonly localIps6: readonly IPv6Words[];
  private readonly localSubnets6: readonly IPv6Net[];
  private readonly localNetworks6: readonly IPv6Net[];

  constructor(opts: FirewallOptions) {
    this.localIps6 = [...(opts.local.ips6 ?? [])];
    this.localSubnets6 = [...(opts.local.subnets6 ?? [])];
    this.localNetworks6 = [...(opts.local.networks6 ?? this.localIps6.map((words) => ({ words, bits: 128 })))];
    const local: LocalDefault = {
      // Go: `len(f.unsafeNetworks) == 0 || f.defaultLocalCIDRAny`, unsafe networks of both families.
      any: (opts.defaultLocalCidrAny ?? true) || (opts.local.subnets.length === 0 && this.localSubnets6.length === 0),
      networks: opts.local.networks ?? opts.local.ips.map((ip) => ({ ip, mask: 0xffffffff })),
      networks6: this.localNetworks6,
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
    if (packet.version === 6) {
      if (!this.remoteAllowed6(packet.remote6, peer)) return 'drop_remote_ip';
      if (!inAddresses6(packet.local6, this.localIps6, this.localSubnets6)) return 'drop_local_ip';
    } else {
      if (!inAddresses(packet.remoteIp, peer.ips, peer.subnets)) return 'drop_remote_ip';
      if (!inAddresses(packet.localIp, this.localIps, this.localSubnets)) return 'drop_local_ip';
    }
    return this.matchesRules(direction, packet, peer) ? 'allow' : 'drop_no_rule';
  }

  /**
   * Go 1.11.1 Firewall.Drop over HostInfo.networks (longest prefix first): one of the peer's IPv6 VPN addresses is
   * accepted when it lies in one of our IPv6 VPN networks (NetworkTypeVPN) and refused otherwise (NetworkTypeVPNPeer,
   * ErrPeerRejected); any other address must be inside one of its IPv6 unsafe networks.
   */
  private remoteAllowed6(r: Uint32Array, peer: FirewallPeer): boolean {
    const r0 = r[0]!, r1 = r[1]!, r2 = r[2]!, r3 = r[3]!;
    const ips = peer.ips6;
    for (let i = 0; i < ips.length; i++) {
      const w = ips[i]!;
      if (w[0] === r0 && w[1] === r1 && w[2] === r2 && w[3] === r3) return inNets6(this.localNetworks6, r0, r1, r2, r3);
    }
    return inNets6(peer.subnets6, r0, r1, r2, r3);
  }

  /**
   * Rules only, no address checks. Conntrack re-verification passes the entry's ORIGINAL direction, not the
   * direction of the packet that hit it (nebula-spec §7.5).
   */
  matchesRules(direction: FirewallDirection, packet: FirewallPacket, peer: FirewallPeer): boolean {
    const incoming = direction === 'in';
    let port = packet.fragment ? PORT_FRAGMENT : incoming ? packet.localPort : packet.remotePort;
    // Go 1.11 firewallPort.match: ICMP and ICMPv6 only ever match any-port rules (their "port" is the echo id, kept
    // for conntrack). IPv4 keeps 1.6.1's behaviour, which has no such branch (its ICMP ports are 0 anyway).
    if (packet.version === 6 && (packet.proto === PROTO_ICMPV6 || packet.proto === PROTO_ICMP)) port = PORT_ANY;
    return (incoming ? this.inRules : this.outRules).match(packet, port, peer);
  }

  /** Conntrack expiry for a packet of this protocol (ICMP and everything else use the default timeout). */
  timeoutFor(proto: number): number {
    if (proto === PROTO_TCP) return this.timeouts.tcp_timeout;
    if (proto === PROTO_UDP) return this.timeouts.udp_timeout;
    return this.timeouts.default_timeout;
  }
}

function inNets6(nets: readonly IPv6Net[], w0: number, w1: number, w2: number, w3: number): boolean {
  for (let i = 0; i < nets.length; i++) if (net6Contains(nets[i]!, w0, w1, w2, w3)) return true;
  return false;
}

function inAddresses6(a: Uint32Array, ips: readonly IPv6Words[], subnets: readonly IPv6Net[]): boolean {
  const a0 = a[0]!, a1 = a[1]!, a2 = a[2]!, a3 = a[3]!;
  for (let i = 0; i < ips.length; i++) {
    const w = ips[i]!;
    if (w[0] === a0 && w[1] === a1 && w[2] === a2 && w[3] === a3) return true;
  }
  return inNets6(subnets, a0, a1, a2, a3);
}

/** The network part of `n` (host bits cleared), as Go's net.IPNet prints it. */
function maskedNet6(n: IPv6Net): IPv6Net {
  const w = n.words.map((word, i) => {
    const inWord = n.bits - i * 32;
    const mask = inWord <= 0 ? 0 : inWord >= 32 ? 0xffffffff : (0xffffffff << (32 - inWord)) >>> 0;
    return (word & mask) >>> 0;
  });
  return { words: [w[0]!, w[1]!, w[2]!, w[3]!], bits: n.bits };
}

function inAddresses(ip: number, ips: readonly number[], subnets: readonly IPv4Net[]): boolean {
  for (let i = 0; i < ips.length; i++) if (ips[i] === ip >>> 0) return true;
  for (let i = 0; i < subnets.length; i++) if (netContains(subnets[i], ip)) return true;
  return false;
}
