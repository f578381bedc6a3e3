/**
 * Underlay address allow lists (`lighthouse.remote_allow_list`, `lighthouse.remote_allow_ranges`), with the
 * semantics of Nebula 1.6.1's allow_list.go:
 *
 * - An allow list maps CIDRs to true (allow) / false (deny); an address takes the value of the MOST SPECIFIC CIDR
 *   that contains it (longest-prefix match).
 * - Each address family gets a default rule (0.0.0.0/0, ::/0) unless the list sets one: when every rule of that
 *   family has the same value, the default is the opposite value ("all allow" means "deny the rest" and vice
 *   versa); a family without any rule defaults to allow. Mixed values without a default are refused when the config
 *   is validated (src/shared/config/schema.ts), as Go refuses them.
 * - An absent list allows everything.
 * - `remote_allow_ranges` maps inside (VPN) CIDRs to allow lists: for a peer whose VPN IP lies in one of them (the
 *   most specific one wins), its list must allow the address AND so must `remote_allow_list` (Go's
 *   RemoteAllowList.Allow). Before the VPN IP is known (the first look at a stage-1 handshake) only
 *   `remote_allow_list` applies (AllowUnknownVpnIp).
 *
 * The underlay is IPv4 only in nebula-ts (a remote address is a uint32), so IPv6 rules are kept, count for their
 * family's default, and never match, exactly as a v6 rule never matches a v4 address in Go.
 *
 * Where it is enforced today: incoming handshakes (both stages), roaming (the supervisor refuses to move a tunnel
 * to a denied address), and the static_host_map addresses we send handshakes to (Go drops denied static remotes
 * when it adds them). NOTE for the lighthouse client, which does not exist yet: every address learned from a
 * lighthouse (HostQueryReply, HostUpdateNotification) must go through `allow(vpnIp, ip)` before it is added to a
 * host's remote list, as Go's lighthouse.unlockedShouldAddV4 does (which also drops addresses inside our own VPN
 * network). `lighthouse.local_allow_list`, which filters the addresses we REPORT to lighthouses, belongs to that
 * client too; until it exists the config refuses it (src/shared/config/unsupported.ts).
 */
import { isIP } from 'node:net';
import { netContains, parseCidr, type IPv4Net } from './util/ipv4';

/** The config form: CIDR text -> allow (src/shared/config/types.ts AllowList). */
export type AllowListConfig = Readonly<Record<string, boolean>>;

interface Rule4 {
  net: IPv4Net;
  prefix: number;
  allow: boolean;
}

function prefixOf(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf('/') + 1));
}

/** One allow list, compiled. */
export class AllowList {
  /** IPv4 rules, most specific first (the family default, a /0, last). */
  private readonly v4: readonly Rule4[];
  /** IPv6 rules as written (kept for completeness; never consulted for an IPv4 address). */
  readonly v6: Readonly<Record<string, boolean>>;

  /** Compiles a validated allow list. Throws on a CIDR it cannot read or on mixed rules without a default. */
  constructor(list: AllowListConfig, what = 'allow list') {
    const v4 = new Map<string, Rule4>();
    const v6: Record<string, boolean> = {};
    const fam = { v4: { values: new Set<boolean>(), defaultSet: false }, v6: { values: new Set<boolean>(), defaultSet: false } };
    for (const [cidr, allow] of Object.entries(list)) {
      const slash = cidr.indexOf('/');
      const isV6 = slash > 0 && isIP(cidr.slice(0, slash)) === 6;
      const f = isV6 ? fam.v6 : fam.v4;
      f.values.add(allow);
      if (prefixOf(cidr) === 0) f.defaultSet = true;
      if (isV6) {
        v6[cidr] = allow;
        continue;
      }
      const net = parseCidr(cidr);
      if (net === undefined) throw new Error(`${what} has invalid CIDR: ${cidr}`);
      // Go's tree keys on the network (host bits cleared): the same network written twice keeps the last value.
      const key = `${(net.ip & net.mask) >>> 0}/${net.mask}`;
      v4.set(key, { net, prefix: prefixOf(cidr), allow });
    }
    for (const [name, f, zero] of [['0.0.0.0/0', fam.v4, 'v4'], ['::/0', fam.v6, 'v6']] as const) {
      if (f.defaultSet) continue;
      if (f.values.size > 1) throw new Error(`${what} contains both true and false rules, but no default set for ${name}`);
      // No rule of this family: default allow (Go: !false). All rules the same: the opposite.
      const def = f.values.size === 0 ? true : !f.values.values().next().value;
      if (zero === 'v4') v4.set('default', { net: { ip: 0, mask: 0 }, prefix: 0, allow: def });
      else v6['::/0'] = def;
    }
    this.v4 = [...v4.values()].sort((a, b) => b.prefix - a.prefix);
    this.v6 = v6;
  }

  /** The value of the most specific rule containing `ip` (an IPv4 address as a uint32). */
  allowIPv4(ip: number): boolean {
    const rules = this.v4;
    for (let i = 0; i < rules.length; i++) if (netContains(rules[i]!.net, ip)) return rules[i]!.allow;
    return true; // unreachable: the /0 default always matches
  }
}

/** `lighthouse.remote_allow_list` plus `lighthouse.remote_allow_ranges`. */
export class RemoteAllowList {
  private readonly global: AllowList | undefined;
  /** Inside (VPN) ranges, most specific first. */
  private readonly ranges: ReadonlyArray<{ net: IPv4Net; prefix: number; list: AllowList }>;

  constructor(remoteAllowList: AllowListConfig | undefined, remoteAllowRanges: Readonly<Record<string, AllowListConfig>> = {}) {
    this.global = remoteAllowList === undefined ? undefined : new AllowList(remoteAllowList, 'lighthouse.remote_allow_list');
    const ranges: Array<{ net: IPv4Net; prefix: number; list: AllowList }> = [];
    for (const [cidr, list] of Object.entries(remoteAllowRanges)) {
      const compiled = new AllowList(list, `lighthouse.remote_allow_ranges.${cidr}`);
      const net = parseCidr(cidr);
      // A VPN IP is IPv4: an IPv6 inside range can never contain one (as in Go), so it is not kept.
      if (net !== undefined) ranges.push({ net, prefix: prefixOf(cidr), list: compiled });
    }
    this.ranges = ranges.sort((a, b) => b.prefix - a.prefix);
  }

  /** From the validated config section; an empty remote_allow_list allows everything, as an absent one does. */
  static fromConfig(lh: { remote_allow_list: AllowListConfig; remote_allow_ranges: Readonly<Record<string, AllowListConfig>> }): RemoteAllowList {
    return new RemoteAllowList(lh.remote_allow_list, lh.remote_allow_ranges);
  }

  /** Go's AllowUnknownVpnIp: before the peer's VPN IP is known, only remote_allow_list applies. */
  allowUnknownVpnIp(ip: number): boolean {
    return this.global === undefined || this.global.allowIPv4(ip);
  }

  /** Go's RemoteAllowList.Allow: the peer's range list (if any) and remote_allow_list must both allow `ip`. */
  allow(vpnIp: number, ip: number): boolean {
    const inside = this.insideList(vpnIp);
    if (inside !== undefined && !inside.allowIPv4(ip)) return false;
    return this.allowUnknownVpnIp(ip);
  }

  private insideList(vpnIp: number): AllowList | undefined {
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i++) if (netContains(ranges[i]!.net, vpnIp)) return ranges[i]!.list;
    return undefined;
  }
}

const compiled = new WeakMap<object, RemoteAllowList>();

/**
 * The compiled remote allow list of a (frozen, validated) `lighthouse` config section, compiled once per section
 * object: a reload replaces the config object, so the next call compiles the new lists.
 */
export function remoteAllowListOf(lh: { remote_allow_list: AllowListConfig; remote_allow_ranges: Readonly<Record<string, AllowListConfig>> }): RemoteAllowList {
  let r = compiled.get(lh);
  if (r === undefined) {
    r = RemoteAllowList.fromConfig(lh);
    compiled.set(lh, r);
  }
  return r;
}
