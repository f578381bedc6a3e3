/**
 * The lighthouse address map and the client side of the lighthouse protocol (nebula-spec §5.2-5.5; Go's
 * lighthouse.go): which underlay addresses each VPN IP has (remote-list.ts), kept from static_host_map, from the
 * tunnels themselves (learned), from HostUpdateNotifications (a lighthouse) and from HostQueryReplies (a client).
 *
 * - The handshake manager asks `addressesFor(vpnIp)`, and calls `queryServer(vpnIp)` when it knows one address or
 *   none: a HostQuery goes to every lighthouse (at most once per QUERY_INTERVAL_MS per host).
 * - A client sends a HostUpdateNotification (advertise_addrs + local addresses allowed by local_allow_list + relays)
 *   to every lighthouse at start and every `lighthouse.interval`.
 * - Every address learned from the network passes `lighthouse.remote_allow_list` and must lie outside our VPN
 *   network (Go's unlockedShouldAddV4).
 * - An entry goes when its host's tunnel goes (static ones stay); the map is bounded (oldest entry without a tunnel
 *   evicted first, counted as `lighthouse.addrmap.evicted`).
 * - Queries and updates are written per lighthouse for the certificate version of the tunnel to it (meta-version.ts;
 *   Go 1.10+'s innerQueryServer / SendUpdate): v1 as 1.6.1 writes them, v2 with VpnAddr / RelayVpnAddrs (and no
 *   VpnAddr at all in an update). They are built when the tunnel is known (meta-sender.ts).
 * - The map is keyed by IPv4 VPN IP; a message naming a host by another address of its certificate (a Go 1.11 peer
 *   asking about the IPv6 VPN address it pinged) is mapped to that key through `vpnIpOf` (vpn-addr-book.ts).
 * Messages are acted on in lighthouse-handler.ts; everything is read from the live config at each use, so the
 * reloadable keys (hosts, advertise_addrs, allow lists, relays, punchy) apply on reload; `reloaded()` restarts the
 * update timer when `lighthouse.interval` changed.
 */
import { remoteAllowListOf } from '../shared/allow-list';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import type { CertVersion } from '../shared/pki/certificate';
import { encodeMeta, MetaType, type Ip4AndPort } from '../shared/protocol/lighthouse';
import { metaDetailsFor } from '../shared/protocol/meta-version';
import { addrKey, type VpnAddr } from '../shared/protocol/vpn-addr';
import type { IpPrefix } from '../shared/pki/v2/prefix';
import type { Endpoint } from '../shared/util/endpoint';
import { formatIPv4, netContains, parseCidr, parseIPv4, type IPv4Net } from '../shared/util/ipv4';
import { lighthouseCounter } from './lighthouse-metrics';
import { localAddresses } from './local-addresses';
import type { MetaPayload } from './meta-sender';
import { RemoteList } from './remote-list';
import type { SupervisorCounters } from './counters';
import type { StaticHosts } from './static-hosts';
import type { VpnAddrLookup } from './vpn-addr-book';

/** A host is queried again at most this often (Go queries on every handshake attempt that has ≤ 1 address). */
export const QUERY_INTERVAL_MS = 1000;

export interface LighthouseEnv {
  log: Logger;
  counters: SupervisorCounters;
  vpnIp: number;
  vpnNet: IPv4Net;
  /** The config in force (reloadable keys are read at each use). */
  config(): NebulaConfig;
  /** Our bound UDP port (listen.port, or the one the kernel picked for 0). */
  listenPort: number;
  /** How many entries the map holds at most (several per possible tunnel). */
  capacity: number;
  /** True while a tunnel to `vpnIp` is installed. */
  hasTunnel(vpnIp: number): boolean;
  /** Sends a lighthouse message to `vpnIp` over its tunnel, handshaking first when there is none. */
  sendMeta(vpnIp: number, payload: MetaPayload): void;
  /** Which host an address names, and each host's certificate networks (ours and the tunnelled hosts'). */
  addrs: VpnAddrLookup;
}

export class Lighthouse {
  readonly amLighthouse: boolean;
  private readonly map = new Map<number, RemoteList>();
  private staticIps = new Set<number>();
  private readonly lastQuery = new Map<number, number>();
  /**
   * First contact by IPv6 VPN address (a host we know no IPv4 key of yet): the static_host_map entries keyed by such
   * an address, the queries we sent about one, and the lighthouses' answers (bounded like the map; the host's
   * addresses move to the map under its IPv4 key once the handshake brings its certificate).
   */
  private staticHosts?: StaticHosts;
  private readonly lastQuery6 = new Map<bigint, number>();
  private readonly answers6 = new Map<bigint, { owner: number; addrs: Endpoint[] }>();
  private updateTimer?: NodeJS.Timeout;
  private interval = 0;

  /** preferred_ranges, read at start: Go 1.6.1 does not reload it (diff.ts names it among the restart keys). */
  private readonly preferred: IPv4Net[];

  constructor(private readonly env: LighthouseEnv) {
    this.amLighthouse = env.config().lighthouse.am_lighthouse;
    this.preferred = [];
    for (const c of env.config().preferred_ranges) {
      const n = parseCidr(c);
      if (n) this.preferred.push(n);
    }
  }

  /** Lighthouse VPN IPs (lighthouse.hosts, validated against static_host_map and our network at load). */
  lighthouses(): number[] {
    const out: number[] = [];
    for (const h of this.env.config().lighthouse.hosts) {
      const ip = parseIPv4(h);
      if (ip !== undefined) out.push(ip);
    }
    return out;
  }

  isLighthouse(vpnIp: number): boolean {
    return this.lighthouses().includes(vpnIp);
  }

  /** (Re)loads the static_host_map entries (owned by ourselves, so a lighthouse never serves them). */
  setStaticHosts(hosts: StaticHosts): void {
    this.staticHosts = hosts;
    for (const ip of this.staticIps) this.map.get(ip)?.forget(this.env.vpnIp);
    this.staticIps = new Set();
    for (const ip of hosts.vpnIps()) {
      const list = this.listFor(ip);
      for (const ep of hosts.addressesFor(ip)) if (this.shouldAdd(ip, ep.ip)) list.prependStatic(this.env.vpnIp, ep);
      this.staticIps.add(ip);
    }
  }

  /** Where a handshake to `vpnIp` is sent: every known address, ordered (preferred_ranges first). */
  addressesFor(vpnIp: number): Endpoint[] {
    return this.map.get(vpnIp)?.addresses(this.preferred) ?? [];
  }

  /** Where a first-contact handshake to IPv6 VPN address `a` is sent: its static_host_map entry, then what lighthouses said. */
  addressesFor6(a: VpnAddr): Endpoint[] {
    const out = [...(this.staticHosts?.addressesFor6(a) ?? [])];
    for (const e of this.answers6.get(addrKey(a))?.addrs ?? []) if (!out.some((o) => o.ip === e.ip && o.port === e.port)) out.push(e);
    return out;
  }

  /** The last lighthouse answer about IPv6 VPN address `a` of a host not yet known, and who gave it. */
  answer6(a: VpnAddr): Readonly<{ owner: number; addrs: readonly Endpoint[] }> | undefined {
    return this.answers6.get(addrKey(a));
  }

  /** Did we ask the lighthouses about IPv6 VPN address `a` (so an answer naming it is expected)? */
  asked6(a: VpnAddr): boolean {
    return this.lastQuery6.has(addrKey(a));
  }

  /** Lighthouse `owner`'s answer about IPv6 VPN address `a` (filtered by the caller as any reported address). */
  answered6(a: VpnAddr, owner: number, addrs: Endpoint[]): void {
    const key = addrKey(a);
    this.answers6.delete(key);
    if (this.answers6.size >= this.env.capacity) this.answers6.delete(this.answers6.keys().next().value as bigint);
    this.answers6.set(key, { owner, addrs });
  }

  /**
   * Asks every lighthouse where IPv6 VPN address `a` is (Go 1.11 asks by the address it wants). Only lighthouses on
   * v2 tunnels can be asked: a v1 message has no room for an IPv6 address (Go: "Can't query lighthouse for v6 address
   * using a v1 protocol"), so the query is not written for them.
   */
  queryServer6(a: VpnAddr, now = Date.now()): void {
    if (this.amLighthouse) return;
    const key = addrKey(a);
    const last = this.lastQuery6.get(key);
    if (last !== undefined && now - last < QUERY_INTERVAL_MS) return;
    if (this.lastQuery6.size >= this.env.capacity) this.lastQuery6.delete(this.lastQuery6.keys().next().value as bigint);
    this.lastQuery6.delete(key);
    this.lastQuery6.set(key, now);
    // Counted as it is written: a query a v1 tunnel cannot carry is neither sent nor counted.
    const query = (v: CertVersion): Buffer | undefined => {
      if (v === 1) return undefined;
      this.env.counters.inc(lighthouseCounter('tx', MetaType.HostQuery));
      return encodeMeta({ type: MetaType.HostQuery, details: metaDetailsFor(v, { vpnAddr: a }) });
    };
    for (const lh of this.lighthouses()) this.env.sendMeta(lh, query);
  }

  /** The whole map, for nebula-ctl list-lighthouse-addrmap. */
  entries(): ReadonlyMap<number, RemoteList> {
    return this.map;
  }

  /** The VPN IP of the host `a` names (any address of its certificate), or undefined for an unknown IPv6 one. */
  vpnIpOf(a: VpnAddr): number | undefined {
    return this.env.addrs.vpnIpOf(a);
  }

  /** The networks of the certificate of `vpnIp` (ours, or a host we have a tunnel to), in the certificate's order. */
  networksOf(vpnIp: number): readonly IpPrefix[] | undefined {
    return this.env.addrs.networksOf(vpnIp);
  }

  /** The relays a host asked to be reached through (relay.relays, as its lighthouse passed them on). */
  relaysFor(vpnIp: number): number[] {
    return this.map.get(vpnIp)?.relays() ?? [];
  }

  get size(): number {
    return this.map.size;
  }

  /** The tunnel to `vpnIp` came up on, or roamed to, `ep`: the host owns that learned address. */
  learned(vpnIp: number, ep: Endpoint): void {
    this.listFor(vpnIp).learn(vpnIp, ep);
  }

  /** The host's tunnel went: what it told us (and what others told us of it) goes, unless it is a static host. */
  tunnelGone(vpnIp: number): void {
    if (this.staticIps.has(vpnIp)) return;
    this.map.delete(vpnIp);
  }

  /** The list of `vpnIp`, made if missing; the oldest entry without a tunnel makes room when the map is full. */
  listFor(vpnIp: number): RemoteList {
    let list = this.map.get(vpnIp);
    if (list) return list;
    if (this.map.size >= this.env.capacity) this.evictOne();
    list = new RemoteList();
    this.map.set(vpnIp, list);
    return list;
  }

  /** Go's unlockedShouldAddV4: the remote allow list allows it and it is not inside our VPN network. */
  shouldAdd(vpnIp: number, ip: number): boolean {
    return remoteAllowListOf(this.env.config().lighthouse).allow(vpnIp, ip) && !netContains(this.env.vpnNet, ip);
  }

  /** shouldAdd for a host known only by an IPv6 VPN address (remote_allow_list as for an unknown VPN IP). */
  shouldAddForUnknown(ip: number): boolean {
    return remoteAllowListOf(this.env.config().lighthouse).allowUnknownVpnIp(ip) && !netContains(this.env.vpnNet, ip);
  }

  /** Asks every lighthouse where `vpnIp` is (never as a lighthouse, never about a lighthouse). */
  queryServer(vpnIp: number, now = Date.now()): void {
    if (this.amLighthouse || this.isLighthouse(vpnIp) || vpnIp === this.env.vpnIp) return;
    const last = this.lastQuery.get(vpnIp);
    if (last !== undefined && now - last < QUERY_INTERVAL_MS) return;
    if (this.lastQuery.size >= this.env.capacity) this.lastQuery.delete(this.lastQuery.keys().next().value as number);
    this.lastQuery.delete(vpnIp);
    this.lastQuery.set(vpnIp, now);
    const query = (v: CertVersion): Buffer => encodeMeta({ type: MetaType.HostQuery, details: metaDetailsFor(v, { vpnIp }) });
    for (const lh of this.lighthouses()) {
      this.env.counters.inc(lighthouseCounter('tx', MetaType.HostQuery));
      this.env.sendMeta(lh, query);
    }
  }

  /** HostUpdateNotification to every lighthouse: what we advertise, where we can be reached, our relays. */
  sendUpdate(): void {
    if (this.amLighthouse) return;
    const cfg = this.env.config();
    const ip4AndPorts: Ip4AndPort[] = [];
    for (const a of cfg.lighthouse.advertise_addrs) {
      const colon = a.lastIndexOf(':');
      const ip = parseIPv4(a.slice(0, colon));
      const port = Number(a.slice(colon + 1)) || this.env.listenPort;
      if (ip !== undefined && !netContains(this.env.vpnNet, ip)) ip4AndPorts.push({ ip, port });
    }
    for (const ip of localAddresses(cfg.lighthouse.local_allow_list)) {
      if (!netContains(this.env.vpnNet, ip)) ip4AndPorts.push({ ip, port: this.env.listenPort });
    }
    const relays = cfg.relay.am_relay ? [] : cfg.relay.relays.map((r) => parseIPv4(r) ?? 0);
    // v1 names us in VpnIp; v2 names nobody (the lighthouse knows us by the tunnel), as Go 1.10+ does.
    const payload = (v: CertVersion): Buffer =>
      encodeMeta({ type: MetaType.HostUpdateNotification, details: metaDetailsFor(v, { vpnIp: v === 1 ? this.env.vpnIp : undefined, ip4AndPorts, relays }) });
    for (const lh of this.lighthouses()) {
      this.env.counters.inc(lighthouseCounter('tx', MetaType.HostUpdateNotification));
      this.env.sendMeta(lh, payload);
    }
  }

  /** Starts the update timer (a client with lighthouse.interval > 0): one update now, then every interval. */
  start(): void {
    this.interval = this.env.config().lighthouse.interval;
    if (this.amLighthouse || this.interval <= 0) return;
    this.sendUpdate();
    this.updateTimer = setInterval(() => this.sendUpdate(), this.interval);
    this.updateTimer.unref();
  }

  stop(): void {
    if (this.updateTimer) clearInterval(this.updateTimer);
    this.updateTimer = undefined;
  }

  /** After a reload: a changed lighthouse.interval restarts the update timer (Go's LhUpdateWorker restart). */
  reloaded(): void {
    const interval = this.env.config().lighthouse.interval;
    if (interval === this.interval) return;
    this.env.log.info(`lighthouse.interval changed to ${interval / 1000}`);
    this.stop();
    this.start();
  }

  private evictOne(): void {
    for (const ip of this.map.keys()) {
      if (this.staticIps.has(ip) || this.env.hasTunnel(ip)) continue;
      this.map.delete(ip);
      this.env.counters.inc('lighthouse.addrmap.evicted');
      this.env.log.debug('Lighthouse address map is full, forgot a host', { vpnIp: formatIPv4(ip) });
      return;
    }
  }
}
