/**
 * Compiled rule table for one direction (nebula-spec §7.2), shaped like Nebula's
 * FirewallTable → firewallPort → FirewallCA → FirewallRule, except that port ranges are kept as sorted segments
 * instead of one map entry per port (a `1-65535` rule would otherwise create 65535 entries).
 *
 * Everything here is built once per rule set; matching only reads arrays, Maps and Sets, so it allocates nothing.
 */
import { IPv4Net, netContains, parseCidr } from '../util/ipv4';
import { FirewallRule, PORT_ANY, PORT_FRAGMENT, PROTO_ANY, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from './rule';

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
}

/** Nebula's FirewallRule: the identity part of all merged rules for one (proto, port, CA selector). */
class IdentityRules {
  any = false;
  groupSets: string[][] = [];
  hosts = new Set<string>();
  cidrs: IPv4Net[] = [];

  add(rule: FirewallRule): void {
    if (this.any) return;
    const net = rule.cidr === '' ? undefined : parseCidr(rule.cidr);
    const isAny =
      (rule.groups.length === 0 && rule.host === '' && net === undefined) ||
      rule.groups.includes('any') ||
      rule.host === 'any' ||
      // Quirk kept from Nebula: any CIDR containing 0.0.0.0 (not only /0) means "any".
      (net !== undefined && netContains(net, 0));
    if (isAny) {
      this.any = true;
      this.groupSets = [];
      this.hosts.clear();
      this.cidrs = [];
      return;
    }
    if (rule.groups.length > 0) this.groupSets.push([...rule.groups]);
    if (rule.host !== '') this.hosts.add(rule.host);
    if (net !== undefined) this.cidrs.push(net);
  }

  match(remoteIp: number, peer: FirewallPeer): boolean {
    if (this.any) return true;
    const sets = this.groupSets;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i];
      let all = true;
      for (let j = 0; j < set.length; j++) {
        if (!peer.groups.has(set[j])) {
          all = false;
          break;
        }
      }
      if (all) return true;
    }
    if (this.hosts.has(peer.name)) return true;
    const cidrs = this.cidrs;
    for (let i = 0; i < cidrs.length; i++) if (netContains(cidrs[i], remoteIp)) return true;
    return false;
  }
}

/** Nebula's FirewallCA: rules without CA constraint, then by issuer fingerprint, then by CA name. */
class CASelector {
  anyCA: IdentityRules | undefined;
  bySha = new Map<string, IdentityRules>();
  byName = new Map<string, IdentityRules>();

  add(rule: FirewallRule): void {
    if (rule.caSha === '' && rule.caName === '') {
      (this.anyCA ??= new IdentityRules()).add(rule);
      return;
    }
    if (rule.caSha !== '') getOrCreate(this.bySha, rule.caSha).add(rule);
    if (rule.caName !== '') getOrCreate(this.byName, rule.caName).add(rule);
  }

  match(remoteIp: number, peer: FirewallPeer): boolean {
    if (this.anyCA !== undefined && this.anyCA.match(remoteIp, peer)) return true;
    const sha = this.bySha.get(peer.issuer);
    if (sha !== undefined && sha.match(remoteIp, peer)) return true;
    const name = this.byName.get(peer.caName);
    return name !== undefined && name.match(remoteIp, peer);
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

  constructor(rules: readonly FirewallRule[]) {
    const ranged: FirewallRule[] = [];
    for (const r of rules) {
      if (r.startPort === PORT_ANY) (this.anyPort ??= new CASelector()).add(r);
      else if (r.startPort === PORT_FRAGMENT) (this.fragment ??= new CASelector()).add(r);
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
      const sel = new CASelector();
      for (const r of covering) sel.add(r);
      this.selectors.push(sel);
    }
  }

  /** `port` is -1 for fragments. Fragments match fragment rules and any-port rules, like Nebula. */
  match(port: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (port === PORT_FRAGMENT) {
      if (this.fragment !== undefined && this.fragment.match(remoteIp, peer)) return true;
    } else {
      const sel = this.lookup(port);
      if (sel !== undefined && sel.match(remoteIp, peer)) return true;
    }
    return this.anyPort !== undefined && this.anyPort.match(remoteIp, peer);
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

  constructor(rules: readonly FirewallRule[]) {
    this.anyProto = new PortTable(rules.filter((r) => r.proto === PROTO_ANY));
    this.tcp = new PortTable(rules.filter((r) => r.proto === PROTO_TCP));
    this.udp = new PortTable(rules.filter((r) => r.proto === PROTO_UDP));
    this.icmp = new PortTable(rules.filter((r) => r.proto === PROTO_ICMP));
  }

  /** `port` is already chosen by the caller: -1 for fragments, local port inbound, remote port outbound. */
  match(proto: number, port: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (this.anyProto.match(port, remoteIp, peer)) return true;
    switch (proto) {
      case PROTO_TCP:
        return this.tcp.match(port, remoteIp, peer);
      case PROTO_UDP:
        return this.udp.match(port, remoteIp, peer);
      case PROTO_ICMP:
        return this.icmp.match(port, remoteIp, peer);
      default:
        return false;
    }
  }
}
