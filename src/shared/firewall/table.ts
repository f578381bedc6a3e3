/**
 * Compiled rule table for one direction (nebula-spec §7.2), shaped like Nebula 1.10's
 * FirewallTable → firewallPort → FirewallCA → FirewallRule → firewallLocalCIDR, except that port ranges are kept as
 * sorted segments instead of one map entry per port (a `1-65535` rule would otherwise create 65535 entries).
 *
 * Both address families (Go 1.11.1 firewall.go, whose CIDR tables are per family): an IPv4 `cidr` / `local_cidr`
 * only ever matches an IPv4 packet's address and an IPv6 one an IPv6 packet's (`0.0.0.0/0` is every IPv4 address,
 * `::/0` every IPv6 one); `any`, groups and hosts match both.
 *
 * Everything here is built once per rule set; matching only reads arrays, Maps and Sets, so it allocates nothing.
 */
import { IPv4Net, netContains } from '../util/ipv4';
import { IPv6Net, IPv6Words } from '../util/ipv6';
import type { FirewallPacket } from './packet';
import { FirewallRule, PORT_ANY, PORT_FRAGMENT, PROTO_ANY, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, parseRuleCidr } from './rule';
import { LOCAL_ANY, LocalCidrs, RemoteCidrs, type LocalDefault } from './rule-cidr';

export { LOCAL_ANY, type LocalDefault };

/** What the rule matcher needs to know about the peer (built once per tunnel, not per packet). */
export interface FirewallPeer {
  /** Peer cert name. */
  name: string;
  /** Peer cert groups. */
  groups: ReadonlySet<string>;
  /** Fingerprint (sha256 hex) of the CA that issued the peer cert (the cert's `issuer` field). */
  issuer: string;
  /** Name of the CA in our pool that signed the peer cert. */
  caName: string;
  /** Peer cert IPs (uint32). */
  ips: readonly number[];
  /** Peer cert subnets (unsafe routes behind the peer). */
  subnets: readonly IPv4Net[];
  /** Peer cert IPv6 VPN addresses (each network's address, host bits kept). */
  ips6: readonly IPv6Words[];
  /** Peer cert IPv6 unsafe networks. */
  subnets6: readonly IPv6Net[];
}

/**
 * Nebula's FirewallRule: the identity part of all merged rules for one (proto, port, CA selector), each identity
 * entry (any, a group set, a host, a remote CIDR) with the local addresses its rules accept: a packet matches when
 * some entry matches the peer AND its local CIDRs contain the packet's local address (Nebula 1.10).
 */
class IdentityRules {
  /** Rules matching any peer, for both families: no identity at all, group / host / cidr `any`. */
  anyIdentity: LocalCidrs | undefined;
  /**
   * Nebula 1.6.1's quirk, kept for IPv4 packets: an IPv4 cidr containing 0.0.0.0 (not only /0) makes the whole rule
   * "any". Go 1.11 has no such quirk, and an IPv4 cidr never matches an IPv6 packet there, so for IPv6 packets such
   * a rule only counts through its groups and host (added to those entries as well).
   */
  anyIdentityV4: LocalCidrs | undefined;
  groupSets: Array<{ groups: string[]; local: LocalCidrs }> = [];
  hosts = new Map<string, LocalCidrs>();
  /** Entries by the peer's address (rule `cidr`), per family. */
  remoteCidrs = new RemoteCidrs();

  add(rule: FirewallRule, def: LocalDefault): void {
    const cidr = rule.cidr === '' ? undefined : parseRuleCidr(rule.cidr);
    const isAny =
      (rule.groups.length === 0 && rule.host === '' && cidr === undefined) ||
      rule.groups.includes('any') ||
      rule.host === 'any' ||
      cidr?.family === 'any';
    if (isAny) {
      (this.anyIdentity ??= new LocalCidrs()).add(rule, def);
      return;
    }
    const v4Any = cidr?.family === 4 && netContains(cidr.net, 0);
    // For IPv4 packets this entry covers the rule's groups, host and cidr entries below (they only narrow it).
    if (v4Any) (this.anyIdentityV4 ??= new LocalCidrs()).add(rule, def);
    if (rule.groups.length > 0) this.groupSets.push({ groups: [...rule.groups], local: new LocalCidrs().add(rule, def) });
    if (rule.host !== '') {
      let local = this.hosts.get(rule.host);
      if (local === undefined) this.hosts.set(rule.host, (local = new LocalCidrs()));
      local.add(rule, def);
    }
    if (cidr !== undefined && !v4Any) this.remoteCidrs.add(cidr, rule, def);
  }

  match(pkt: FirewallPacket, peer: FirewallPeer): boolean {
    if (this.anyIdentity !== undefined && this.anyIdentity.match(pkt)) return true;
    const v6 = pkt.version === 6;
    if (!v6 && this.anyIdentityV4 !== undefined && this.anyIdentityV4.match(pkt)) return true;
    const sets = this.groupSets;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i]!.groups;
      let all = true;
      for (let j = 0; j < set.length; j++) {
        if (!peer.groups.has(set[j]!)) {
          all = false;
          break;
        }
      }
      if (all && sets[i]!.local.match(pkt)) return true;
    }
    const host = this.hosts.get(peer.name);
    if (host !== undefined && host.match(pkt)) return true;
    return this.remoteCidrs.match(pkt);
  }
}

/** Nebula's FirewallCA: rules without CA constraint, then by issuer fingerprint, then by CA name. */
class CASelector {
  anyCA: IdentityRules | undefined;
  bySha = new Map<string, IdentityRules>();
  byName = new Map<string, IdentityRules>();

  constructor(private readonly def: LocalDefault) {}

  add(rule: FirewallRule): void {
    if (rule.caSha === '' && rule.caName === '') {
      (this.anyCA ??= new IdentityRules()).add(rule, this.def);
      return;
    }
    if (rule.caSha !== '') getOrCreate(this.bySha, rule.caSha).add(rule, this.def);
    if (rule.caName !== '') getOrCreate(this.byName, rule.caName).add(rule, this.def);
  }

  match(pkt: FirewallPacket, peer: FirewallPeer): boolean {
    if (this.anyCA !== undefined && this.anyCA.match(pkt, peer)) return true;
    const sha = this.bySha.get(peer.issuer);
    if (sha !== undefined && sha.match(pkt, peer)) return true;
    const name = this.byName.get(peer.caName);
    return name !== undefined && name.match(pkt, peer);
  }
}

function getOrCreate(map: Map<string, IdentityRules>, key: string): IdentityRules {
  let v = map.get(key);
  if (v === undefined) {
    v = new IdentityRules();
    map.set(key, v);
  }
  return v;
}

/** Nebula's firewallPort for one protocol: exact/range entries, the fragment entry and the any-port entry. */
class PortTable {
  private anyPort: CASelector | undefined;
  private fragment: CASelector | undefined;
  /** Segment i covers ports [starts[i], starts[i+1]); selectors[i] is undefined where no rule applies. */
  private starts: number[] = [];
  private selectors: (CASelector | undefined)[] = [];

  constructor(rules: readonly FirewallRule[], def: LocalDefault) {
    const ranged: FirewallRule[] = [];
    for (const r of rules) {
      if (r.startPort === PORT_ANY) (this.anyPort ??= new CASelector(def)).add(r);
      else if (r.startPort === PORT_FRAGMENT) (this.fragment ??= new CASelector(def)).add(r);
      else ranged.push(r);
    }
    if (ranged.length === 0) return;
    const bounds = new Set<number>();
    for (const r of ranged) {
      bounds.add(r.startPort);
      bounds.add(r.endPort + 1);
    }
    this.starts = [...bounds].sort((a, b) => a - b);
    for (let i = 0; i < this.starts.length; i++) {
      const lo = this.starts[i];
      const covering = i + 1 < this.starts.length ? ranged.filter((r) => r.startPort <= lo && r.endPort >= lo) : [];
      if (covering.length === 0) {
        this.selectors.push(undefined);
        continue;
      }
      const sel = new CASelector(def);
      for (const r of covering) sel.add(r);
      this.selectors.push(sel);
    }
  }

  /** `port` is -1 for fragments. Fragments match fragment rules and any-port rules, like Nebula. */
  match(port: number, pkt: FirewallPacket, peer: FirewallPeer): boolean {
    if (port === PORT_FRAGMENT) {
      if (this.fragment !== undefined && this.fragment.match(pkt, peer)) return true;
    } else {
      const sel = this.lookup(port);
      if (sel !== undefined && sel.match(pkt, peer)) return true;
    }
    return this.anyPort !== undefined && this.anyPort.match(pkt, peer);
  }

  private lookup(port: number): CASelector | undefined {
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= port) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.selectors[found];
  }
}

/** All rules of one direction: `any`-protocol rules first, then the packet's own protocol. */
export class RuleTable {
  private readonly anyProto: PortTable;
  private readonly tcp: PortTable;
  private readonly udp: PortTable;
  private readonly icmp: PortTable;
  /**
   * The ICMP rules as Go 1.11 compiles them (AddFirewallRulesFromConfig / AddRule): `port` / `code` coerced to any,
   * for ICMP carried in IPv6 packets. IPv4 packets keep 1.6.1's table, where a `code:` rule never matches.
   */
  private readonly icmpAnyPort: PortTable;

  /** `def`: what a rule without local_cidr means (LocalDefault). */
  constructor(rules: readonly FirewallRule[], def: LocalDefault = LOCAL_ANY) {
    this.anyProto = new PortTable(rules.filter((r) => r.proto === PROTO_ANY), def);
    this.tcp = new PortTable(rules.filter((r) => r.proto === PROTO_TCP), def);
    this.udp = new PortTable(rules.filter((r) => r.proto === PROTO_UDP), def);
    const icmp = rules.filter((r) => r.proto === PROTO_ICMP);
    this.icmp = new PortTable(icmp, def);
    this.icmpAnyPort = new PortTable(icmp.map((r) => ({ ...r, startPort: PORT_ANY, endPort: PORT_ANY })), def);
  }

  /**
   * `port` is already chosen by the caller (Firewall.matchesRules): -1 for fragments, local port inbound, remote
   * port outbound, PORT_ANY for ICMP over IPv6. The packet's local side (destination inbound, source outbound) is
   * what local_cidr is matched against, its remote side what cidr is; its protocol picks the table.
   */
  match(pkt: FirewallPacket, port: number, peer: FirewallPeer): boolean {
    if (this.anyProto.match(port, pkt, peer)) return true;
    switch (pkt.proto) {
      case PROTO_TCP:
        return this.tcp.match(port, pkt, peer);
      case PROTO_UDP:
        return this.udp.match(port, pkt, peer);
      case PROTO_ICMP:
        return pkt.version === 6 ? this.icmpAnyPort.match(port, pkt, peer) : this.icmp.match(port, pkt, peer);
      case PROTO_ICMPV6:
        // Go 1.11 sends ICMPv6 to the ICMP table (`proto: icmp` covers it); IPv4 keeps 1.6.1's ICMP-only table.
        return pkt.version === 6 && this.icmpAnyPort.match(port, pkt, peer);
      default:
        return false;
    }
  }
}
