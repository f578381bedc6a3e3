/**
 * The supervisor's wiring: one part per concern, each given the callbacks of the parts it talks to. node.ts calls
 * this once, before any routine is forked, and then only starts, stops and reloads what it returns. A new concern is
 * one more part built here.
 *
 *   routines ─meta→ MetaDispatch ─→ HandshakeManager ─install→ Tunnels ─events→ Lighthouse / MetaSender / DNS
 *                                └→ LighthouseHandler ─→ Lighthouse (address map) ─→ HandshakeManager.addressesFor
 */
import { remoteAllowListOf, type RemoteAllowList } from '../shared/allow-list';
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { SUBTYPE_TEST_REQUEST, TYPE_CONTROL, TYPE_LIGHTHOUSE, TYPE_TEST } from '../shared/protocol/header';
import { ConnectionManager } from './connection-manager';
import type { SupervisorCounters } from './counters';
import { HandshakeManager } from './handshake-manager';
import { HostMap, type HostInfo } from './hostmap';
import type { Inside } from './inside/inside';
import { selectInside } from './inside/select';
import { DnsRecords, dnsCertText } from './dns-server';
import { disconnectIfInvalid } from './invalid-certs';
import { Lighthouse } from './lighthouse';
import { LighthouseHandler } from './lighthouse-handler';
import type { LiveConfig } from './live-config';
import { MetaDispatch } from './meta-dispatch';
import { MetaSender } from './meta-sender';
import { Punchy } from './punchy';
import { Rekeyer } from './rekey';
import { RelayManager } from './relay-manager';
import { DirectPathProber } from './direct-path';
import { Requery } from './requery';
import { routineSetup } from './routine-setup';
import { RoutinePool } from './routines';
import { SharedRegion } from './shared-region';
import type { StaticHosts } from './static-hosts';
import { Tunnels } from './tunnels';
import { Underlay } from './underlay';
import { VpnAddrBook } from './vpn-addr-book';

/** What start() builds, in the order it builds it. */
export interface Running {
  region: SharedRegion;
  hostmap: HostMap;
  inside: Inside;
  underlay: Underlay;
  tunnels: Tunnels;
  handshakes: HandshakeManager;
  connections: ConnectionManager;
  rekeyer: Rekeyer;
  routines: RoutinePool;
  lighthouse: Lighthouse;
  metaSender: MetaSender;
  /** Only with punchy.punch (read at start, as Go does). */
  punchy?: Punchy;
  /** The cert names of our peers, served by the DNS responder (lighthouse.serve_dns on a lighthouse). */
  dnsRecords?: DnsRecords;
  relays: RelayManager;
  directPaths: DirectPathProber;
  requery: Requery;
}

export interface AssembleEnv {
  live: LiveConfig;
  log: Logger;
  counters: SupervisorCounters;
  staticHosts: StaticHosts;
}

/** Creates the region, the inside and the sockets, and wires every part; nothing runs yet. */
export function assemble(cfg: NebulaConfig, { live, log, counters, staticHosts }: AssembleEnv): Running {
  const region = new SharedRegion(cfg, counters);
  // Read at each use: a reload that changes lighthouse.remote_allow_list / remote_allow_ranges applies at once.
  const remoteAllowList = (): RemoteAllowList => remoteAllowListOf(live.config.lighthouse);
  const hostmap = new HostMap(region.slots, region.capacities.tunnels);
  const inside = selectInside(cfg, live.vpnIp, live.vpnMask, live.vpnNetworks6, log);
  let underlay: Underlay;
  try {
    underlay = new Underlay(cfg.listen, cfg.routines);
  } catch (err) {
    inside.close();
    throw err;
  }
  // Which host an address a peer names belongs to (a Go 1.11 peer may name a host by its IPv6 VPN address).
  const vpnAddrs = new VpnAddrBook({ vpnIp: live.vpnIp, networks: () => live.pki.cert.myNetworks });
  const lighthouse = new Lighthouse({
    log,
    counters,
    vpnIp: live.vpnIp,
    vpnNet: { ip: live.vpnIp, mask: live.vpnMask },
    config: () => live.config,
    listenPort: underlay.listenPort,
    capacity: 4 * region.capacities.tunnels,
    hasTunnel: (ip) => hostmap.get(ip) !== undefined,
    sendMeta: (ip, payload) => metaSender.send(ip, TYPE_LIGHTHOUSE, 0, payload, 'messages.tx.lighthouse'),
    addrs: vpnAddrs,
  });
  lighthouse.setStaticHosts(staticHosts);
  const metaSender = new MetaSender({
    counters,
    maxHosts: region.capacities.tunnels,
    tunnelTo: (ip) => hostmap.get(ip),
    startHandshake: (ip) => handshakes.start(ip),
    sendOn: (h, type, subtype, payload) => tunnels.send(h, type, subtype, payload),
  });
  // As Go: only a lighthouse serves DNS (validate.ts warns otherwise); records follow the tunnels.
  const dnsRecords = cfg.lighthouse.serve_dns && cfg.lighthouse.am_lighthouse ? new DnsRecords() : undefined;
  const tunnels = new Tunnels({
    log,
    counters,
    hostmap,
    slots: region.slots,
    outbox: underlay.outbox,
    live,
    broadcast: (msg) => routines.broadcast(msg),
    remoteAllowList,
    events: {
      up: (h) => {
        vpnAddrs.tunnelUp(h.vpnIp, h.cert.networks);
        if (!h.relay) lighthouse.learned(h.vpnIp, { ip: h.remoteIp, port: h.remotePort });
        metaSender.tunnelUp(h);
        dnsRecords?.add(h.cert.details.name, h.vpnIp, dnsCertText(h.cert));
      },
      down: (h, replaced) => {
        if (replaced) return;
        vpnAddrs.tunnelGone(h.vpnIp);
        lighthouse.tunnelGone(h.vpnIp);
        dnsRecords?.remove(h.vpnIp);
        relays.tunnelGone(h.vpnIp);
      },
      roamed: (h) => lighthouse.learned(h.vpnIp, { ip: h.remoteIp, port: h.remotePort }),
    },
  });
  const handshakes = new HandshakeManager({
    log,
    cipher: cfg.cipher,
    pki: () => live.pki,
    vpnIp: live.vpnIp,
    hostmap,
    tryIntervalMs: cfg.handshakes.try_interval,
    retries: cfg.handshakes.retries,
    counters,
    addressesFor: (ip) => lighthouse.addressesFor(ip),
    queryLighthouse: (ip) => lighthouse.queryServer(ip),
    addressesFor6: (a) => lighthouse.addressesFor6(a),
    queryLighthouse6: (a) => lighthouse.queryServer6(a),
    sendUdp: (buf, to) => (to.via ? relays.sendVia(to.via, buf) : underlay.send(buf, buf.length, to)),
    relayHandshake: (ip, stage1) => relays.forHandshake(ip, stage1),
    install: (h) => tunnels.install(h),
    sendTest: (h) => tunnels.sendTest(h),
    remoteAllowList,
  });
  const lighthouseHandler = new LighthouseHandler({
    log,
    counters,
    lighthouse,
    sendMeta: (ip, payload) => metaSender.send(ip, TYPE_LIGHTHOUSE, 0, payload, 'messages.tx.lighthouse'),
    triggerHandshake: (ip) => handshakes.trigger(ip),
    triggerHandshake6: (a) => handshakes.trigger6(a),
    punch: (to) => underlay.send(PUNCH, 1, to),
    sendTest: (ip) => metaSender.send(ip, TYPE_TEST, SUBTYPE_TEST_REQUEST, EMPTY, 'messages.tx.test_request'),
    punchy: () => ({ delay: live.config.punchy.delay, respond: live.config.punchy.respond }),
  });
  // pki.disconnect_invalid is read at start (as in Go); the CA pool and blocklist at every check.
  const invalidCerts = { enabled: cfg.pki.disconnect_invalid, log, caPool: () => live.caPool, close: (h: HostInfo) => tunnels.teardown(h, true) };
  const connections = new ConnectionManager({
    hostmap,
    aliveIntervalMs: cfg.timers.connection_alive_interval,
    pendingDeletionMs: cfg.timers.pending_deletion_interval,
    sendTest: (h) => tunnels.sendTest(h),
    dead: (h) => tunnels.dead(h),
    closedInvalid: (h, now) => disconnectIfInvalid(invalidCerts, h, now),
  });
  const relays = new RelayManager({
    log,
    vpnIp: live.vpnIp,
    config: () => live.config,
    useRelays: cfg.relay.use_relays && !cfg.relay.am_relay,
    relaysFor: (ip) => lighthouse.relaysFor(ip),
    vpnIpOf: (a) => vpnAddrs.vpnIpOf(a),
    tunnelTo: (ip) => hostmap.get(ip),
    startHandshake: (ip) => handshakes.start(ip),
    startHandshake6: (a) => handshakes.startTo6(a),
    sendControl: (ip, payload) => metaSender.send(ip, TYPE_CONTROL, 0, payload, 'messages.tx.other'),
    sendFrame: (h, remoteIndex, datagram) => tunnels.sendFrame(h, remoteIndex, datagram),
    publish: (routes) => routines.broadcast({ type: 'relays', relays: routes }),
    capacity: 4 * region.capacities.tunnels,
  });
  const directPaths = new DirectPathProber({
    tunnels: () => hostmap.hosts(),
    hasDirectAddress: (ip) => lighthouse.addressesFor(ip).length > 0,
    isPending: (ip) => handshakes.isPending(ip),
    tryDirect: (ip) => handshakes.tryDirect(ip),
  });
  const requery = new Requery({ tunnels: () => hostmap.hosts(), sendCounter: (h) => hostmap.sendCounter(h), query: (ip) => lighthouse.queryServer(ip) });
  const dispatch = new MetaDispatch({ log, hostmap, handshakes, tunnels, lighthouse: lighthouseHandler, addrs: lighthouse, relays });
  const routines = new RoutinePool({
    count: cfg.routines,
    capacities: region.capacities,
    fds: (i) => ({ udp: underlay.fd(i), inside: inside.queueFd(i), region: region.fd }),
    setup: (i) =>
      routineSetup(i, { live, insideKind: inside.kind, tunnels: () => [...hostmap.hosts()].map((h) => tunnels.tunnelInstall(h)), relays: () => relays.routes() }),
    onMessage: (m) => dispatch.onRoutineMessage(m),
    onDied: (i) => region.releaseRoutine(i),
    log,
  });
  const rekeyer = new Rekeyer({ log, hostmap, handshakes });
  const punchy = cfg.punchy.punch
    ? new Punchy({
        counters,
        tunnelVpnIps: () => [...hostmap.hosts()].map((h) => h.vpnIp),
        addressesOf: (ip) => withRemote(lighthouse.addressesFor(ip), hostmap.get(ip)),
        send: (payload, to) => underlay.send(payload, payload.length, to),
      })
    : undefined;
  return { region, hostmap, inside, underlay, tunnels, handshakes, connections, rekeyer, routines, lighthouse, metaSender, punchy, dnsRecords, relays, directPaths, requery };
}

const PUNCH = Buffer.from([0]);
const EMPTY = Buffer.alloc(0);

/** A host's known addresses with its tunnel's current remote among them. */
function withRemote(addrs: Array<{ ip: number; port: number }>, h: HostInfo | undefined): Array<{ ip: number; port: number }> {
  if (h && !h.relay && !addrs.some((a) => a.ip === h.remoteIp && a.port === h.remotePort)) addrs.push({ ip: h.remoteIp, port: h.remotePort });
  return addrs;
}
