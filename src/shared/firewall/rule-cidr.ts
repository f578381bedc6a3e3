/**
 * The address side of compiled firewall rules (table.ts), per family as Go 1.11.1's firewall.go keeps its CIDR
 * tables: the local addresses a rule accepts (`local_cidr`, Nebula 1.10's firewallLocalCIDR) and the remote
 * addresses it names (`cidr`). An IPv4 network only ever matches an IPv4 packet's address and an IPv6 one an IPv6
 * packet's.
 *
 * Built once per rule set; matching only walks arrays, so it allocates nothing.
 */
import { IPv4Net, netContains } from '../util/ipv4';
import { IPv6Net, net6Contains } from '../util/ipv6';
import type { FirewallPacket } from './packet';
import { FirewallRule, RuleCidr, parseRuleCidr } from './rule';

/**
 * What a rule WITHOUT `local_cidr` means for the local address (Nebula 1.10's firewallLocalCIDR.addRule): any local
 * address (the address check in firewall.ts already limits it to ours and our unsafe networks) when our cert has no
 * unsafe networks or `firewall.default_local_cidr_any` is true; otherwise only our VPN networks, so such a rule does
 * not open the unsafe networks we route to.
 */
export interface LocalDefault {
  any: boolean;
  /** Our IPv4 VPN networks (cert IP with its mask); used when `any` is false. */
  networks: readonly IPv4Net[];
  /** Our IPv6 VPN networks; used when `any` is false (Go inserts every assigned network, both families). */
  networks6?: readonly IPv6Net[];
}

/** The default when nothing says otherwise: any local address (Nebula before 1.9 had no local_cidr at all). */
export const LOCAL_ANY: LocalDefault = { any: true, networks: [] };

function sameNet6(a: IPv6Net, b: IPv6Net): boolean {
  return a.bits === b.bits && net6Contains(a, b.words[0], b.words[1], b.words[2], b.words[3]);
}

/** Nebula's firewallLocalCIDR: the local addresses the merged rules of one identity entry accept. */
export class LocalCidrs {
  any = false;
  nets: IPv4Net[] = [];
  nets6: IPv6Net[] = [];

  add(rule: FirewallRule, def: LocalDefault): this {
    if (this.any) return this;
    const text = rule.localCidr ?? '';
    if (text === 'any' || (text === '' && def.any)) {
      this.any = true;
      this.nets = [];
      this.nets6 = [];
    } else if (text === '') {
      this.nets.push(...def.networks);
      this.nets6.push(...(def.networks6 ?? []));
    } else {
      const parsed = parseRuleCidr(text)!;
      if (parsed.family === 4) this.nets.push(parsed.net);
      else if (parsed.family === 6) this.nets6.push(parsed.net);
    }
    return this;
  }

  match(pkt: FirewallPacket): boolean {
    if (this.any) return true;
    if (pkt.version === 6) {
      const nets6 = this.nets6;
      const l = pkt.local6;
      for (let i = 0; i < nets6.length; i++) if (net6Contains(nets6[i]!, l[0]!, l[1]!, l[2]!, l[3]!)) return true;
      return false;
    }
    const nets = this.nets;
    const localIp = pkt.localIp;
    for (let i = 0; i < nets.length; i++) if (netContains(nets[i]!, localIp)) return true;
    return false;
  }
}

/**
 * The remote-address entries of one identity table (rule `cidr`), one per network and family, each with the local
 * addresses its merged rules accept: a packet matches when its remote address is in an entry of its own family whose
 * local CIDRs contain its local address.
 */
export class RemoteCidrs {
  private readonly v4: Array<{ net: IPv4Net; local: LocalCidrs }> = [];
  private readonly v6: Array<{ net: IPv6Net; local: LocalCidrs }> = [];

  /** Adds `rule` under `cidr`, merged into an entry for the same network; `any` is no remote entry (ignored). */
  add(cidr: RuleCidr, rule: FirewallRule, def: LocalDefault): void {
    if (cidr.family === 4) {
      const net = cidr.net;
      const same = this.v4.find((c) => c.net.mask === net.mask && ((c.net.ip & c.net.mask) >>> 0) === ((net.ip & net.mask) >>> 0));
      if (same !== undefined) same.local.add(rule, def);
      else this.v4.push({ net, local: new LocalCidrs().add(rule, def) });
    } else if (cidr.family === 6) {
      const net6 = cidr.net;
      const same = this.v6.find((c) => sameNet6(c.net, net6));
      if (same !== undefined) same.local.add(rule, def);
      else this.v6.push({ net: net6, local: new LocalCidrs().add(rule, def) });
    }
  }

  match(pkt: FirewallPacket): boolean {
    if (pkt.version === 6) {
      const cidrs6 = this.v6;
      const r = pkt.remote6;
      for (let i = 0; i < cidrs6.length; i++) {
        if (net6Contains(cidrs6[i]!.net, r[0]!, r[1]!, r[2]!, r[3]!) && cidrs6[i]!.local.match(pkt)) return true;
      }
      return false;
    }
    const cidrs = this.v4;
    const remoteIp = pkt.remoteIp;
    for (let i = 0; i < cidrs.length; i++) if (netContains(cidrs[i]!.net, remoteIp) && cidrs[i]!.local.match(pkt)) return true;
    return false;
  }
}
