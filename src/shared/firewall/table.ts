/**
 * Compiled rule table for one direction (nebula-spec §7.2), shaped like Nebula 1.10's
 * FirewallTable → firewallPort → FirewallCA → FirewallRule → firewallLocalCIDR, except that port ranges are kept as
 * sorted segments instead of one map entry per port (a `1-65535` rule would otherwise create 65535 entries).
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

/**
 * What a rule WITHOUT `local_cidr` means for the local address (Nebula 1.10's firewallLocalCIDR.addRule): any local
 * address (the address check in firewall.ts already limits it to ours and our unsafe networks) when our cert has no
 * unsafe networks or `firewall.default_local_cidr_any` is true; otherwise only our VPN networks, so such a rule does
 * not open the unsafe networks we route to.
 */
export interface LocalDefault {
  any: boolean;
  /** Our VPN networks (cert IP with its mask); used when `any` is false. */
  networks: readonly IPv4Net[];
}

/** The default when nothing says otherwise: any local address (Nebula before 1.9 had no local_cidr at all). */
export const LOCAL_ANY: LocalDefault = { any: true, networks: [] };

/** Nebula's firewallLocalCIDR: the local addresses the merged rules of one identity entry accept. */
class LocalCidrs {
  any = false;
  nets: IPv4Net[] = [];

  add(rule: FirewallRule, def: LocalDefault): this {
    if (this.any) return this;
    const text = rule.localCidr ?? '';
    if (text === 'any' || (text === '' && def.any)) {
      this.any = true;
      this.nets = [];
    } else if (text === '') this.nets.push(...def.networks);
    else this.nets.push(parseCidr(text)!);
    return this;
  }

  match(localIp: number): boolean {
    if (this.any) return true;
    const nets = this.nets;
    for (let i = 0; i < nets.length; i++) if (netContains(nets[i], localIp)) return true;
    return false;
  }
}

/**
 * Nebula's FirewallRule: the identity part of all merged rules for one (proto, port, CA selector), each identity
 * entry (any, a group set, a host, a remote CIDR) with the local addresses its rules accept: a packet matches when
 * some entry matches the peer AND its local CIDRs contain the packet's local address (Nebula 1.10).
 */
class IdentityRules {
  anyIdentity: LocalCidrs | undefined;
  groupSets: Array<{ groups: string[]; local: LocalCidrs }> = [];
  hosts = new Map<string, LocalCidrs>();
  cidrs: Array<{ net: IPv4Net; local: LocalCidrs }> = [];

  add(rule: FirewallRule, def: LocalDefault): void {
    const net = rule.cidr === '' ? undefined : parseCidr(rule.cidr);
    const isAny =
      (rule.groups.length === 0 && rule.host === '' && net === undefined) ||
      rule.groups.includes('any') ||
      rule.host === 'any' ||
      // Quirk kept from Nebula: any CIDR containing 0.0.0.0 (not only /0) means "any".
      (net !== undefined && netContains(net, 0));
    if (isAny) {
      (this.anyIdentity ??= new LocalCidrs()).add(rule, def);
      return;
    }
    if (rule.groups.length > 0) this.groupSets.push({ groups: [...rule.groups], local: new LocalCidrs().add(rule, def) });
    if (rule.host !== '') {
      let local = this.hosts.get(rule.host);
      if (local === undefined) this.hosts.set(rule.host, (local = new LocalCidrs()));
      local.add(rule, def);
    }
    if (net !== undefined) {
      const same = this.cidrs.find((c) => c.net.mask === net.mask && ((c.net.ip & c.net.mask) >>> 0) === ((net.ip & net.mask) >>> 0));
      if (same !== undefined) same.local.add(rule, def);
      else this.cidrs.push({ net, local: new LocalCidrs().add(rule, def) });
    }
  }

  match(localIp: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (this.anyIdentity !== undefined && this.anyIdentity.match(localIp)) return true;
    const sets = this.groupSets;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i].groups;
      let all = true;
      for (let j = 0; j < set.length; j++) {
        if (!peer.groups.has(set[j])) {
          all = false;
          break;
        }
      }
      if (all && sets[i].local.match(localIp)) return true;
    }
    const host = this.hosts.get(peer.name);
    if (host !== undefined && host.match(localIp)) return true;
    const cidrs = this.cidrs;
    for (let i = 0; i < cidrs.length; i++) if (netContains(cidrs[i].net, remoteIp) && cidrs[i].local.match(localIp)) return true;
    return false;
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

  match(localIp: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (this.anyCA !== undefined && this.anyCA.match(localIp, remoteIp, peer)) return true;
    const sha = this.bySha.get(peer.issuer);
    if (sha !== undefined && sha.match(localIp, remoteIp, peer)) return true;
    const name = this.byName.get(peer.caName);
    return name !== undefined && name.match(localIp, remoteIp, peer);
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
  match(port: number, localIp: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (port === PORT_FRAGMENT) {
      if (this.fragment !== undefined && this.fragment.match(localIp, remoteIp, peer)) return true;
    } else {
      const sel = this.lookup(port);
      if (sel !== undefined && sel.match(localIp, remoteIp, peer)) return true;
    }
    return this.anyPort !== undefined && this.anyPort.match(localIp, remoteIp, peer);
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

  /** `def`: what a rule without local_cidr means (LocalDefault). */
  constructor(rules: readonly FirewallRule[], def: LocalDefault = LOCAL_ANY) {
    this.anyProto = new PortTable(rules.filter((r) => r.proto === PROTO_ANY), def);
    this.tcp = new PortTable(rules.filter((r) => r.proto === PROTO_TCP), def);
    this.udp = new PortTable(rules.filter((r) => r.proto === PROTO_UDP), def);
    this.icmp = new PortTable(rules.filter((r) => r.proto === PROTO_ICMP), def);
  }

  /**
   * `port` is already chosen by the caller: -1 for fragments, local port inbound, remote port outbound. `localIp`
   * is our side of the packet (destination inbound, source outbound), what local_cidr is matched against.
   */
  match(proto: number, port: number, localIp: number, remoteIp: number, peer: FirewallPeer): boolean {
    if (this.anyProto.match(port, localIp, remoteIp, peer)) return true;
    switch (proto) {
      case PROTO_TCP:
        return this.tcp.match(port, localIp, remoteIp, peer);
      case PROTO_UDP:
        return this.udp.match(port, localIp, remoteIp, peer);
      case PROTO_ICMP:
        return this.icmp.match(port, localIp, remoteIp, peer);
      default:
        return false;
    }
  }
}
