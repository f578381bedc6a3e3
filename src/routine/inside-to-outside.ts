/**
 * Inside -> outside (Go nebula's inside.go): an IP packet read from this routine's inside queue is routed to a peer
 * (its VPN IP, or the gateway of an unsafe route; IPv6 destinations through route6.ts), checked by the outbound firewall, sealed on the peer's tunnel and
 * queued for this routine's UDP socket. A packet for a peer without a tunnel is parked and a tunnel is requested.
 * With outbound_action reject, a refused or unroutable packet is answered on the inside (reject.ts).
 */
import { TYPE_MESSAGE } from '../shared/protocol/header';
import { C } from '../shared/state/counters';
import { FW_PASS, FW_REFUSED, type DatapathContext } from './context';
import type { OutboundParking } from './outbound-parking';
import type { Rejecter } from './reject';
import type { RoutineTunnel } from './tunnel-registry';
import { formatIPv6, readIPv6Words } from '../shared/util/ipv6';
import { Ipv6Routes, NO_ROUTE6, UNKNOWN_HOST6 } from './route6';

/** Minimum IPv4 header. */
const IPV4_MIN = 20;
/** The fixed IPv6 header, and where its destination address starts. */
const IPV6_HEADER = 40;
const IPV6_DST = 24;

export class InsideToOutside {
  private readonly broadcast: number;
  private readonly routes6: Ipv6Routes;
  /** The IPv6 destination of the packet at hand (reused: nothing is allocated per packet). */
  private readonly dst6 = new Uint32Array(4);

  constructor(
    private readonly ctx: DatapathContext,
    private readonly parking: OutboundParking,
    private readonly reject: Rejecter,
  ) {
    this.broadcast = (ctx.vpnNet | ~ctx.vpnMask) >>> 0;
    this.routes6 = new Ipv6Routes(ctx.setup);
  }

  /** An IP packet from the inside in buf[0..len), bound for a peer. */
  handle(buf: Buffer, len: number): void {
    const ctx = this.ctx;
    if (len < IPV4_MIN) return;
    const version = buf[0]! >> 4;
    if (version === 6) {
      this.handle6(buf, len);
      return;
    }
    if (version !== 4) return; // anything else: dropped quietly, as Nebula does
    const dst = buf.readUInt32BE(16);
    if (dst === ctx.vpnIp) return;
    if (ctx.setup.dropMulticast && dst >>> 28 === 14) return;
    if (ctx.setup.dropLocalBroadcast && dst === this.broadcast) return;
    this.forward(this.routeFor(dst), buf, len);
  }

  /** An IPv6 packet (the overlay of v2 certificates; dropped quietly when we have no IPv6 network or route). */
  private handle6(buf: Buffer, len: number): void {
    const ctx = this.ctx;
    const routes = this.routes6;
    if (len < IPV6_HEADER || !routes.enabled) return;
    const dst = this.dst6;
    readIPv6Words(buf, IPV6_DST, dst);
    if (routes.isOwn(dst)) return;
    if (ctx.setup.dropMulticast && dst[0]! >>> 24 === 0xff) return;
    const via = routes.routeFor(dst, ctx.tunnels.vpn6);
    if (via === UNKNOWN_HOST6) {
      this.firstContact6(buf, len);
      return;
    }
    this.forward(via === NO_ROUTE6 ? -1 : via, buf, len);
  }

  /**
   * An IPv6 VPN address no certificate seen here holds (a host never tunnelled to): the packet waits under that address
   * and the supervisor is asked for a tunnel by it (it handshakes the address's static_host_map entry or asks the
   * lighthouses, as Go 1.11 does); the tunnel's install flushes it. The address text is made only here, once per
   * packet to a host without a tunnel, never for traffic on a tunnel.
   */
  private firstContact6(buf: Buffer, len: number): void {
    const ctx = this.ctx;
    const key = formatIPv6(this.dst6);
    const r = this.parking.park(key, buf, len, ctx.clock());
    if (r === 'ask') ctx.post({ type: 'needTunnel6', routine: ctx.routine, vpnAddr6: key });
    else if (r === 'dropped') {
      ctx.counters.inc(C['routine.dropped.parked_overflow']);
      ctx.counters.inc(C['hostinfo.cached_packets.dropped']);
    }
  }

  /** To the tunnel of `via` (an IPv4 VPN IP; -1: unroutable): outbound firewall, seal, queue; parked without one. */
  private forward(via: number, buf: Buffer, len: number): void {
    const ctx = this.ctx;
    if (via < 0) {
      this.reject.unroutable(buf, len);
      return;
    }
    const t = ctx.tunnels.forVpnIp(via);
    if (t === undefined) {
      const r = this.parking.park(via, buf, len, ctx.clock());
      if (r === 'ask') ctx.post({ type: 'needTunnel', routine: ctx.routine, vpnIp: via });
      else if (r === 'dropped') {
        ctx.counters.inc(C['routine.dropped.parked_overflow']);
        ctx.counters.inc(C['hostinfo.cached_packets.dropped']);
      }
      return;
    }
    const outcome = ctx.firewallCheck(t, buf, len, false);
    if (outcome === FW_PASS) ctx.send(t, TYPE_MESSAGE, 0, buf, len, C['routine.outside.tx_packets']);
    else if (outcome === FW_REFUSED) this.reject.toInside(buf, len);
  }

  /**
   * A packet parked until its tunnel came up: outbound firewall, then seal and queue. Refused, it is dropped without
   * a reject, as Go drops a cached packet (sendMessageNow).
   */
  sendData(t: RoutineTunnel, buf: Buffer, len: number): void {
    const ctx = this.ctx;
    if (ctx.firewallCheck(t, buf, len, false) !== FW_PASS) return;
    ctx.send(t, TYPE_MESSAGE, 0, buf, len, C['routine.outside.tx_packets']);
  }

  /** The peer VPN IP that carries traffic for `dst` (uint32), or -1 when nothing routes it. Longest prefix wins. */
  private routeFor(dst: number): number {
    const ctx = this.ctx;
    if (((dst & ctx.vpnMask) >>> 0) === ctx.vpnNet) return dst;
    const routes = ctx.setup.unsafeRoutes;
    let best = -1;
    let bestMask = -1;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (((dst & r.mask) >>> 0) === ((r.ip & r.mask) >>> 0) && r.mask >>> 0 > bestMask) {
        best = r.via >>> 0;
        bestMask = r.mask >>> 0;
      }
    }
    return best;
  }
}
