/**
 * Lighthouse messages (type 3), decrypted by a routine with the sender's tunnel key, so `from` is an authenticated
 * peer (Go's LightHouseHandler.HandleRequest, nebula-spec §5.3-5.4):
 * - HostQuery (lighthouse only): answered with a HostQueryReply only when the queried host told us about itself
 *   (its tunnel or its update); then the queried host gets a HostPunchNotification with the querier's addresses.
 * - HostUpdateNotification (lighthouse only): replaces what the sender reported, only about the sender itself.
 * - HostQueryReply (from a lighthouse only): stored under that lighthouse; the pending handshake is tried at once.
 * - HostPunchNotification (from a lighthouse only): after punchy.delay one 0x00 datagram to each address; with
 *   punchy.respond, 5 s later a test request to the querier (which handshakes from our side: symmetric NAT).
 * What is refused is counted (`lighthouse.dropped.*`); nothing from a peer can make us send to an address its
 * lighthouse did not vouch for, and every list taken from a message is capped.
 *
 * Both generations of the message are read (meta-version.ts: the subject is VpnIp when non-zero, else VpnAddr; a
 * message naming neither is malformed, counted as invalid). A v2 message may name a host by any address of its
 * certificate (Go 1.11 asks about the IPv6 VPN address it pinged): that is mapped to the host's IPv4 VPN IP, the key
 * of the address map (Lighthouse.vpnIpOf: our own addresses and those of the hosts we have tunnels to); an IPv6
 * address of no such host is counted as invalid. Answers follow Go 1.10+: a HostQueryReply in the version the query
 * was asked in, naming the host as the query did; a HostPunchNotification for the certificate version of the tunnel
 * to the host it goes to, naming the querier by its address in one of that host's networks (findNetworkUnion); and
 * a v2 update gets the blank HostUpdateNotificationAck 1.10+ sends (a v1 update none, as a 1.6.1 lighthouse).
 */
import type { Logger } from '../shared/log';
import { ProtobufError } from '../shared/protobuf';
import type { CertVersion } from '../shared/pki/certificate';
import { decodeMeta, encodeMeta, emptyMetaDetails, MetaType, type NebulaMetaDetails } from '../shared/protocol/lighthouse';
import { metaDetailsFor, metaRelays, metaSubject } from '../shared/protocol/meta-version';
import { addrOfBytes, formatAddr, type VpnAddr } from '../shared/protocol/vpn-addr';
import type { Endpoint } from '../shared/util/endpoint';
import { formatIPv4 } from '../shared/util/ipv4';
import type { SupervisorCounters } from './counters';
import type { Lighthouse } from './lighthouse';
import { LIGHTHOUSE_DROPS, lighthouseCounter } from './lighthouse-metrics';
import type { MetaPayload } from './meta-sender';
import { MAX_REMOTES, type OwnerCache } from './remote-list';
import { findNetworkUnion } from './vpn-addr-book';

/** Go's fixed wait before a punch-back test request. */
export const PUNCH_BACK_DELAY_MS = 5000;

export interface LighthouseHandlerEnv {
  log: Logger;
  counters: SupervisorCounters;
  lighthouse: Lighthouse;
  /** Sends a lighthouse message to `vpnIp` over its tunnel (handshaking first when there is none). */
  sendMeta(vpnIp: number, payload: MetaPayload): void;
  /** Tries the pending handshake to `vpnIp` now (Go's handshakeTrigger). */
  triggerHandshake(vpnIp: number): void;
  /** Tries the pending first-contact handshake to IPv6 VPN address `a` now. */
  triggerHandshake6?(a: VpnAddr): void;
  /** One raw datagram (a hole punch) from our main socket. */
  punch(to: Endpoint): void;
  /** A test request to `vpnIp` (handshaking first when there is no tunnel). */
  sendTest(vpnIp: number): void;
  /** punchy.delay (ms) and punchy.respond as they are now (reloadable). */
  punchy(): { delay: number; respond: boolean };
  /** Timers, replaceable in tests. */
  setTimer?(fn: () => void, ms: number): void;
}

export class LighthouseHandler {
  constructor(private readonly env: LighthouseHandlerEnv) {}

  /** A decrypted type-3 payload from the tunnel to `fromVpnIp`. */
  onMessage(fromVpnIp: number, payload: Buffer): void {
    const { env } = this;
    let type: number;
    let d: NebulaMetaDetails | undefined;
    try {
      ({ type, details: d } = decodeMeta(payload));
    } catch (err) {
      if (!(err instanceof ProtobufError)) throw err;
      return this.drop('invalid', 'Failed to unmarshal lighthouse packet', fromVpnIp, { error: err.message });
    }
    if (!d) return this.drop('invalid', 'Invalid lighthouse update', fromVpnIp);
    env.counters.inc(lighthouseCounter('rx', type));
    switch (type) {
      case MetaType.HostQuery:
        return this.hostQuery(fromVpnIp, d);
      case MetaType.HostQueryReply:
        return this.hostQueryReply(fromVpnIp, d);
      case MetaType.HostUpdateNotification:
        return this.hostUpdate(fromVpnIp, d);
      case MetaType.HostPunchNotification:
        return this.hostPunch(fromVpnIp, d);
      default:
        return; // HostMovedNotification and the types 1.6.1 never sends: ignored, as Go does
    }
  }

  private hostQuery(from: number, d: NebulaMetaDetails): void {
    const { env } = this;
    const lh = env.lighthouse;
    if (!lh.amLighthouse) return this.drop('notServing', "I don't answer queries", from);
    const q = this.subject(from, d, 'Dropping malformed HostQuery');
    if (q === undefined) return;
    const wanted = q.ip;
    // Only what the host told us about itself is served (never static entries, never other lighthouses' answers).
    const theirs = lh.entries().get(wanted)?.ownedBy(wanted);
    if (!theirs) return;
    env.counters.inc(lighthouseCounter('tx', MetaType.HostQueryReply));
    // Named as asked (Go echoes queryVpnAddr): the querier's pending handshake is keyed by that address.
    env.sendMeta(from, encodeMeta({ type: MetaType.HostQueryReply, details: answer(q.version, wanted, theirs, q.addr) }));
    const querier = lh.entries().get(from)?.ownedBy(from);
    if (!querier) return;
    env.counters.inc(lighthouseCounter('tx', MetaType.HostPunchNotification));
    const where = this.punchAddress(from, wanted);
    const punch = (v: CertVersion): Buffer => encodeMeta({ type: MetaType.HostPunchNotification, details: answer(v, from, querier, where) });
    env.sendMeta(wanted, punch);
  }

  /**
   * Go's sendHostPunchNotification: the querier is named by its first address that lies in one of the queried
   * host's networks (so the queried host knows it by an address of its own overlay), else by its VPN IP.
   */
  private punchAddress(querier: number, target: number): VpnAddr | undefined {
    const lh = this.env.lighthouse;
    const targetNetworks = lh.networksOf(target);
    const querierAddrs = lh.networksOf(querier)?.map((n) => n.addr);
    if (!targetNetworks || !querierAddrs) return undefined;
    const union = findNetworkUnion(targetNetworks, querierAddrs);
    if (!union) this.env.log.debug('unable to punch to host, no addresses in common', { vpnIp: formatIPv4(target) });
    return union ? addrOfBytes(union) : undefined;
  }

  private hostUpdate(from: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    if (!lh.amLighthouse) return this.drop('notServing', 'I am not a lighthouse, do not take host updates', from);
    // Not metaSubject: a v2 update names nobody. A named host must be the sender (v1 always names it).
    const named = metaSubject(d);
    // Any address of the sender's certificate names the sender (Go: slices.Contains(fromVpnAddrs, detailsVpnAddr)).
    if (named && lh.vpnIpOf(named.addr) !== from) return this.drop('wrongVpnIp', 'Host sent invalid update', from, { answer: formatAddr(named.addr) });
    this.store(from, from, d);
    if (named?.version === 1) return;
    this.env.counters.inc(lighthouseCounter('tx', MetaType.HostUpdateNotificationAck));
    this.env.sendMeta(from, encodeMeta({ type: MetaType.HostUpdateNotificationAck, details: emptyMetaDetails() }));
  }

  private hostQueryReply(from: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    if (!lh.isLighthouse(from)) return this.drop('notLighthouse', 'Host query reply from a host that is not a lighthouse', from);
    // An answer about an IPv6 VPN address we asked about but know no host for: first contact (handshake-manager.ts).
    const named = metaSubject(d);
    if (named && named.version === 2 && lh.vpnIpOf(named.addr) === undefined && lh.asked6(named.addr)) {
      const v4 = d.ip4AndPorts
        .slice(0, MAX_REMOTES)
        .map((a) => ({ ip: a.ip >>> 0, port: a.port & 0xffff }))
        .filter((e) => e.port !== 0 && lh.shouldAddForUnknown(e.ip));
      lh.answered6(named.addr, from, v4);
      this.env.triggerHandshake6?.(named.addr);
      return;
    }
    const about = this.subject(from, d, 'dropping malformed HostQueryReply');
    if (about === undefined) return;
    this.store(from, about.ip, d);
    this.env.triggerHandshake(about.ip);
  }

  private hostPunch(from: number, d: NebulaMetaDetails): void {
    const { env } = this;
    if (!env.lighthouse.isLighthouse(from)) return this.drop('notLighthouse', 'Punch notification from a host that is not a lighthouse', from);
    const who = this.subject(from, d, 'dropping invalid HostPunchNotification');
    if (who === undefined) return;
    const { delay, respond } = env.punchy();
    const timer = env.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms).unref());
    for (const a of d.ip4AndPorts.slice(0, 2 * MAX_REMOTES)) {
      const to = { ip: a.ip >>> 0, port: a.port & 0xffff };
      if (to.port === 0) continue;
      timer(() => {
        env.counters.inc('messages.tx.holepunch');
        env.punch(to);
      }, delay);
      env.log.debug(`Punching on ${to.port} for ${formatIPv4(who.ip)}`);
    }
    if (respond) {
      const querier = who.ip;
      timer(() => {
        env.log.debug(`Sending a nebula test packet to vpn ip ${formatIPv4(querier)}`);
        env.sendTest(querier);
      }, PUNCH_BACK_DELAY_MS);
    }
  }

  /**
   * The host a message is about (its VPN IP, the map's key), in the version it was written in and the address it was
   * named by; counted as invalid when it names none, or an IPv6 address of no host we know.
   */
  private subject(from: number, d: NebulaMetaDetails, what: string): { ip: number; version: CertVersion; addr: VpnAddr } | undefined {
    const s = metaSubject(d);
    if (!s) {
      this.drop('invalid', what, from);
      return undefined;
    }
    const ip = this.env.lighthouse.vpnIpOf(s.addr);
    if (ip === undefined) {
      this.drop('invalid', `${what}: an IPv6 VPN address of no host we have a tunnel to`, from, { vpnAddr: formatAddr(s.addr) });
      return undefined;
    }
    return { ip, version: s.version, addr: s.addr };
  }

  /** What `owner` told us about `vpnIp`, filtered as Go filters (remote allow list, not inside our network). */
  private store(owner: number, vpnIp: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    const v4 = d.ip4AndPorts
      .slice(0, MAX_REMOTES)
      .map((a) => ({ ip: a.ip >>> 0, port: a.port & 0xffff }))
      .filter((e) => lh.shouldAdd(vpnIp, e.ip));
    const { relays, ignored } = metaRelays(d, (a) => lh.vpnIpOf(a));
    if (ignored > 0) this.env.log.debug('Ignored relays named by an IPv6 VPN address of no host we have a tunnel to', { vpnIp: formatIPv4(vpnIp), ignored });
    lh.listFor(vpnIp).setReported(owner, v4, d.ip6AndPorts, relays);
  }

  private drop(reason: keyof typeof LIGHTHOUSE_DROPS, msg: string, from: number, fields: Record<string, unknown> = {}): void {
    this.env.counters.inc(LIGHTHOUSE_DROPS[reason]);
    this.env.log.debug(msg, { vpnIp: formatIPv4(from), ...fields });
  }
}

/**
 * A reply's details for a message of `version` about `vpnIp` (named in v2 as `vpnAddr` when given): the host's
 * learned address first, then what it reported, and its relays (Go's coalesceAnswers).
 */
function answer(version: CertVersion, vpnIp: number, c: Readonly<OwnerCache>, vpnAddr?: VpnAddr): NebulaMetaDetails {
  const ip4AndPorts = [...(c.learned ? [c.learned] : []), ...c.reported];
  const ip6AndPorts = [...(c.learned6 ? [c.learned6] : []), ...c.reported6];
  return metaDetailsFor(version, { vpnIp, ...(vpnAddr ? { vpnAddr } : {}), ip4AndPorts, ip6AndPorts, relays: c.relays });
}
