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
 */
import type { Logger } from '../shared/log';
import { ProtobufError } from '../shared/protobuf';
import { decodeMeta, encodeMeta, MetaType, type NebulaMetaDetails } from '../shared/protocol/lighthouse';
import type { Endpoint } from '../shared/util/endpoint';
import { formatIPv4 } from '../shared/util/ipv4';
import type { SupervisorCounters } from './counters';
import type { Lighthouse } from './lighthouse';
import { LIGHTHOUSE_DROPS, lighthouseCounter } from './lighthouse-metrics';
import { MAX_REMOTES, type OwnerCache } from './remote-list';

/** Go's fixed wait before a punch-back test request. */
export const PUNCH_BACK_DELAY_MS = 5000;

export interface LighthouseHandlerEnv {
  log: Logger;
  counters: SupervisorCounters;
  lighthouse: Lighthouse;
  /** Sends a lighthouse message to `vpnIp` over its tunnel (handshaking first when there is none). */
  sendMeta(vpnIp: number, payload: Buffer): void;
  /** Tries the pending handshake to `vpnIp` now (Go's handshakeTrigger). */
  triggerHandshake(vpnIp: number): void;
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
    const wanted = d.vpnIp >>> 0;
    // Only what the host told us about itself is served (never static entries, never other lighthouses' answers).
    const theirs = lh.entries().get(wanted)?.ownedBy(wanted);
    if (!theirs) return;
    env.counters.inc(lighthouseCounter('tx', MetaType.HostQueryReply));
    env.sendMeta(from, encodeMeta({ type: MetaType.HostQueryReply, details: answer(wanted, theirs) }));
    const querier = lh.entries().get(from)?.ownedBy(from);
    if (!querier) return;
    env.counters.inc(lighthouseCounter('tx', MetaType.HostPunchNotification));
    env.sendMeta(wanted, encodeMeta({ type: MetaType.HostPunchNotification, details: answer(from, querier) }));
  }

  private hostUpdate(from: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    if (!lh.amLighthouse) return this.drop('notServing', 'I am not a lighthouse, do not take host updates', from);
    if (d.vpnIp >>> 0 !== from) return this.drop('wrongVpnIp', 'Host sent invalid update', from, { answer: formatIPv4(d.vpnIp) });
    this.store(from, from, d);
  }

  private hostQueryReply(from: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    if (!lh.isLighthouse(from)) return this.drop('notLighthouse', 'Host query reply from a host that is not a lighthouse', from);
    const about = d.vpnIp >>> 0;
    this.store(from, about, d);
    this.env.triggerHandshake(about);
  }

  private hostPunch(from: number, d: NebulaMetaDetails): void {
    const { env } = this;
    if (!env.lighthouse.isLighthouse(from)) return this.drop('notLighthouse', 'Punch notification from a host that is not a lighthouse', from);
    const { delay, respond } = env.punchy();
    const timer = env.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms).unref());
    for (const a of d.ip4AndPorts.slice(0, 2 * MAX_REMOTES)) {
      const to = { ip: a.ip >>> 0, port: a.port & 0xffff };
      if (to.port === 0) continue;
      timer(() => {
        env.counters.inc('messages.tx.holepunch');
        env.punch(to);
      }, delay);
      env.log.debug(`Punching on ${to.port} for ${formatIPv4(d.vpnIp)}`);
    }
    if (respond) {
      const querier = d.vpnIp >>> 0;
      timer(() => {
        env.log.debug(`Sending a nebula test packet to vpn ip ${formatIPv4(querier)}`);
        env.sendTest(querier);
      }, PUNCH_BACK_DELAY_MS);
    }
  }

  /** What `owner` told us about `vpnIp`, filtered as Go filters (remote allow list, not inside our network). */
  private store(owner: number, vpnIp: number, d: NebulaMetaDetails): void {
    const lh = this.env.lighthouse;
    const v4 = d.ip4AndPorts
      .slice(0, MAX_REMOTES)
      .map((a) => ({ ip: a.ip >>> 0, port: a.port & 0xffff }))
      .filter((e) => lh.shouldAdd(vpnIp, e.ip));
    lh.listFor(vpnIp).setReported(owner, v4, d.ip6AndPorts, d.relayVpnIps.map((r) => r >>> 0));
  }

  private drop(reason: keyof typeof LIGHTHOUSE_DROPS, msg: string, from: number, fields: Record<string, unknown> = {}): void {
    this.env.counters.inc(LIGHTHOUSE_DROPS[reason]);
    this.env.log.debug(msg, { vpnIp: formatIPv4(from), ...fields });
  }
}

/** A reply's details: the host's learned address first, then what it reported, and its relays (coalesceAnswers). */
function answer(vpnIp: number, c: Readonly<OwnerCache>): NebulaMetaDetails {
  const ip4AndPorts = [...(c.learned ? [c.learned] : []), ...c.reported].map((e) => ({ ip: e.ip, port: e.port }));
  const ip6AndPorts = [...(c.learned6 ? [c.learned6] : []), ...c.reported6];
  return { vpnIp, ip4AndPorts, counter: 0, ip6AndPorts, relayVpnIps: [...c.relays] };
}
