/**
 * What we know of one host's underlay addresses (Go nebula's RemoteList, nebula-spec §5.3-5.5), kept per "owner":
 * the VPN IP that told us. The host itself owns what we learned from its tunnel (the real UDP source, so the
 * NAT-mapped address) and what it reported in a HostUpdateNotification; a lighthouse owns what it answered to our
 * HostQuery; we own our static_host_map entries (so a lighthouse never serves them). Reported lists are capped at
 * MAX_REMOTES per owner; callers filter (remote allow list, VPN network) before they set.
 *
 * `addresses()` is the list a handshake or a punch tries: every owner's learned and reported IPv4 addresses,
 * deduplicated, minus the ones a wrong host answered on, ordered as Go orders them: `preferred_ranges` first, then
 * public before private (RFC 1918), then by address, then by port. IPv6 addresses are kept so a lighthouse passes
 * them on to Go peers that can use them, but never tried: the nebula-ts underlay is IPv4.
 */
import type { Ip6AndPort } from '../shared/protocol/lighthouse';
import type { Endpoint } from '../shared/util/endpoint';
import { netContains, type IPv4Net } from '../shared/util/ipv4';

/** Go's MaxRemotes: a reported list keeps at most this many addresses per owner. */
export const MAX_REMOTES = 10;

export interface OwnerCache {
  learned?: Endpoint;
  reported: Endpoint[];
  learned6?: Ip6AndPort;
  reported6: Ip6AndPort[];
  relays: number[];
}

const PRIVATE: readonly IPv4Net[] = [
  { ip: 0x0a000000, mask: 0xff000000 },
  { ip: 0xac100000, mask: 0xfff00000 },
  { ip: 0xc0a80000, mask: 0xffff0000 },
];

function isPrivate(ip: number): boolean {
  return PRIVATE.some((n) => netContains(n, ip));
}

const same = (a: Endpoint, b: Endpoint): boolean => a.ip === b.ip && a.port === b.port;

export class RemoteList {
  private readonly cache = new Map<number, OwnerCache>();
  /** Addresses a handshake reached the wrong host on: never tried again for this host (Go's badRemotes). */
  private readonly bad: Endpoint[] = [];

  /** The owners and what each told us (nebula-ctl list-lighthouse-addrmap, the lighthouse's answers). */
  owners(): ReadonlyMap<number, Readonly<OwnerCache>> {
    return this.cache;
  }

  ownedBy(owner: number): Readonly<OwnerCache> | undefined {
    return this.cache.get(owner);
  }

  /** The tunnel to the host itself came up on, or roamed to, `ep`. */
  learn(owner: number, ep: Endpoint): void {
    this.entry(owner).learned = { ip: ep.ip, port: ep.port };
  }

  /** Replaces what `owner` reported (an update or a query reply); lists beyond MAX_REMOTES are cut. */
  setReported(owner: number, v4: readonly Endpoint[], v6: readonly Ip6AndPort[], relays: readonly number[]): void {
    const c = this.entry(owner);
    c.reported = v4.slice(0, MAX_REMOTES).map((e) => ({ ip: e.ip, port: e.port }));
    c.reported6 = v6.slice(0, MAX_REMOTES);
    c.relays = relays.slice(0, MAX_REMOTES);
  }

  /** A static_host_map address, put first in our own reported list, which keeps MAX_REMOTES (Go's unlockedPrependV4). */
  prependStatic(owner: number, ep: Endpoint): void {
    const c = this.entry(owner);
    if (c.reported.some((e) => same(e, ep))) return;
    c.reported.unshift({ ip: ep.ip, port: ep.port });
    if (c.reported.length > MAX_REMOTES) c.reported.length = MAX_REMOTES;
  }

  /** Forgets what `owner` told us (a static entry that left the config). */
  forget(owner: number): void {
    this.cache.delete(owner);
  }

  /** A handshake sent to `ep` was answered by another host. */
  block(ep: Endpoint): void {
    if (!this.bad.some((b) => same(b, ep))) this.bad.push({ ip: ep.ip, port: ep.port });
  }

  /** Every usable IPv4 address, deduplicated and ordered (see the module comment). */
  addresses(preferred: readonly IPv4Net[] = []): Endpoint[] {
    const out: Endpoint[] = [];
    const add = (e: Endpoint): void => {
      if (!this.bad.some((b) => same(b, e)) && !out.some((o) => same(o, e))) out.push(e);
    };
    for (const c of this.cache.values()) {
      if (c.learned) add(c.learned);
      for (const e of c.reported) add(e);
    }
    const pref = (ip: number): boolean => preferred.some((n) => netContains(n, ip));
    return out.sort((a, b) => {
      const pa = pref(a.ip);
      if (pa !== pref(b.ip)) return pa ? -1 : 1;
      const va = isPrivate(a.ip);
      if (va !== isPrivate(b.ip)) return va ? 1 : -1;
      if (a.ip !== b.ip) return a.ip >>> 0 < b.ip >>> 0 ? -1 : 1;
      return a.port - b.port;
    });
  }

  /** The relays the host asked to be reached through (every owner's answer, deduplicated). */
  relays(): number[] {
    const out = new Set<number>();
    for (const c of this.cache.values()) for (const r of c.relays) out.add(r);
    return [...out];
  }

  private entry(owner: number): OwnerCache {
    let c = this.cache.get(owner);
    if (!c) {
      c = { reported: [], reported6: [], relays: [] };
      this.cache.set(owner, c);
    }
    return c;
  }
}
