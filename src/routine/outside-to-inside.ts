/**
 * Outside -> inside (Go nebula's outside.go): a datagram from this routine's UDP socket is parsed, matched to a
 * tunnel by our local index, checked against the replay window, decrypted and recorded; then data goes through the
 * inbound firewall to the inside queue (refused with inbound_action reject: answered to the peer, reject.ts), a test
 * request is answered, and other meta packets go to the supervisor.
 * Handshakes and recvErrors go to the supervisor raw. A datagram for an index we do not know yet is held briefly
 * (early-arrivals.ts) and answered with a recvError if its tunnel never comes.
 */
import type { MetaPacket, RelayRoute } from '../shared/ipc/messages';
import { sockaddrIPv4, sockaddrPort } from '../shared/native/sockaddr';
import {
  HEADER_LEN,
  HEADER_VERSION,
  SUBTYPE_MESSAGE_RELAY,
  SUBTYPE_TEST_REPLY,
  SUBTYPE_TEST_REQUEST,
  TYPE_CLOSE_TUNNEL,
  TYPE_CONTROL,
  TYPE_HANDSHAKE,
  TYPE_LIGHTHOUSE,
  TYPE_MESSAGE,
  TYPE_RECV_ERROR,
  TYPE_TEST,
} from '../shared/protocol/header';
import { REPLAY_DUPLICATE, REPLAY_WINDOW } from '../shared/protocol/replay-window';
import { C } from '../shared/state/counters';
import { SLOT_BUSY } from '../shared/state/tunnel-slots';
import { FW_PASS, FW_REFUSED, type DatapathContext } from './context';
import type { EarlyArrivals } from './early-arrivals';
import type { EchoResponder } from './echo-responder';
import { HandshakeLimiter } from './handshake-limiter';
import type { Rejecter } from './reject';
import { RelayFrames } from './relay-frames';
import type { RoutineTunnel } from './tunnel-registry';

export class OutsideToInside {
  private readonly handshakes: HandshakeLimiter;
  private readonly recvErrors: HandshakeLimiter;
  /** Relay frames: verified here, their content handed back to `handle` with `via` set while it runs. */
  readonly relays: RelayFrames;
  /** The relay the datagram being handled came through (undefined: straight from the underlay). */
  private via: RelayRoute | undefined;

  constructor(
    private readonly ctx: DatapathContext,
    private readonly early: EarlyArrivals,
    /** Set when there is no inside device (tun.disabled): the routine answers pings to its own VPN IP. */
    private readonly echo: EchoResponder | null,
    private readonly reject: Rejecter,
    /** The largest datagram a relay frame may carry. */
    maxDatagram: number,
  ) {
    this.handshakes = new HandshakeLimiter(ctx.clock());
    this.recvErrors = new HandshakeLimiter(ctx.clock());
    this.relays = new RelayFrames(ctx, maxDatagram, (inner, innerLen, from, via) => {
      this.via = via;
      try {
        this.handle(inner, innerLen, from);
      } finally {
        this.via = undefined;
      }
    });
  }

  /** One datagram from the underlay in buf[0..len), sent from `from` (sockaddr_in). */
  handle(buf: Buffer, len: number, from: Buffer): void {
    const ctx = this.ctx;
    const counters = ctx.counters;
    if (len < HEADER_LEN) {
      // 1-byte datagrams are punches/keep-alives (nebula-spec §5.6); anything else this short is garbage.
      if (len > 1) counters.inc(C['messages.rx.invalid']);
      return;
    }
    const b0 = buf[0]!;
    const type = b0 & 0x0f;
    const subtype = buf[1]!;
    if (b0 >> 4 !== HEADER_VERSION) {
      counters.inc(C['messages.rx.invalid']);
      return;
    }
    const fromIp = sockaddrIPv4(from);
    if (((fromIp & ctx.vpnMask) >>> 0) === ctx.vpnNet) return; // our own overlay as underlay: double encryption (#741)
    const localIndex = buf.readUInt32BE(4);
    const counter = buf.readUInt32BE(8) * 0x100000000 + buf.readUInt32BE(12);

    switch (type) {
      case TYPE_HANDSHAKE:
        counters.inc(C['messages.rx.handshake_ixpsk0']);
        if (!this.handshakes.allow(fromIp, ctx.clock())) {
          counters.inc(C['routine.dropped.handshake_limited']);
          return;
        }
        this.forwardMeta(type, subtype, localIndex, counter, buf, len, from);
        return;
      case TYPE_RECV_ERROR:
        counters.inc(C['messages.rx.recv_error']);
        // Unauthenticated too, and each one is a supervisor lookup: the same bound as handshakes.
        if (!this.recvErrors.allow(fromIp, ctx.clock())) {
          counters.inc(C['routine.dropped.recv_error_in_limited']);
          return;
        }
        this.forwardMeta(type, subtype, localIndex, counter, buf, len, from);
        return;
      case TYPE_MESSAGE:
      case TYPE_LIGHTHOUSE:
      case TYPE_TEST:
      case TYPE_CLOSE_TUNNEL:
      case TYPE_CONTROL:
        break;
      default:
        counters.inc(C['messages.rx.invalid']);
        return;
    }
    if (type === TYPE_MESSAGE && subtype !== 0) {
      // A relay frame (never inside another one: relays are one hop); other subtypes are unknown.
      if (subtype === SUBTYPE_MESSAGE_RELAY && this.via === undefined) this.relays.handle(buf, len, from, localIndex, counter);
      else counters.inc(C['messages.rx.other']);
      return;
    }

    const t = ctx.tunnels.byLocalIndex(localIndex);
    if (t === undefined && this.via !== undefined) {
      counters.inc(C['routine.dropped.no_tunnel']); // relayed: no address to hold it for or to answer
      return;
    }
    if (t === undefined) {
      // Perhaps a tunnel the supervisor is installing right now: hold it briefly (early-arrivals.ts).
      if (!this.early.hold(localIndex, buf, len, from, ctx.clock())) counters.inc(C['routine.dropped.early_overflow']);
      return;
    }
    const fresh = ctx.slots.replayCheck(t.slot, counter);
    if (fresh === SLOT_BUSY) {
      counters.inc(C['routine.dropped.slot_busy']);
      return;
    }
    if (fresh === 0) {
      // Too late (a whole window behind) is not a replay: with several sender routines sharing one counter, a
      // routine descheduled between taking a counter and sending can be that late.
      const late = counter + REPLAY_WINDOW <= ctx.slots.replayCurrent(t.slot);
      counters.inc(late ? C['network.packets.out_of_window'] : C['network.packets.duplicate']);
      // No recvError here (unlike 1.6.1; Go stopped in 1.9.7): anyone can replay a captured datagram, and a
      // recvError for it would make the peer tear down a healthy tunnel.
      return;
    }
    // Decrypt straight into the inside outbox's next entry; it is only committed if the packet is delivered.
    const plain = ctx.insideOut.buffer();
    const n = t.decrypt.decrypt(plain, 0, buf, 0, HEADER_LEN, buf, HEADER_LEN, len - HEADER_LEN, counter);
    if (n < 0) {
      counters.inc(C['routine.dropped.decrypt_failed']);
      return;
    }
    const update = ctx.slots.replayUpdate(t.slot, counter);
    if (update < 0) {
      counters.inc(update === SLOT_BUSY ? C['routine.dropped.slot_busy'] : update === REPLAY_DUPLICATE ? C['network.packets.duplicate'] : C['network.packets.out_of_window']);
      return;
    }
    if (update > 0) counters.add(C['network.packets.lost'], update);
    ctx.slots.markRx(t.slot);
    const fromPort = sockaddrPort(from);
    if (this.via === undefined && (fromIp !== t.remoteIp || fromPort !== t.remotePort)) {
      // Roaming: an authenticated packet from a new address moves the tunnel there (after decryption, unlike 1.6.1).
      t.setRemote(fromIp, fromPort);
      ctx.post({ type: 'roamed', routine: ctx.routine, localIndex, remoteIp: fromIp, remotePort: fromPort });
    }

    switch (type) {
      case TYPE_MESSAGE:
        this.deliver(t, plain, n);
        return;
      case TYPE_TEST:
        if (subtype === SUBTYPE_TEST_REQUEST) {
          counters.inc(C['messages.rx.test_request']);
          ctx.send(t, TYPE_TEST, SUBTYPE_TEST_REPLY, plain, n, C['messages.tx.test_response']);
        } else if (subtype === SUBTYPE_TEST_REPLY) counters.inc(C['messages.rx.test_response']);
        else counters.inc(C['messages.rx.other']);
        return;
      case TYPE_CLOSE_TUNNEL:
        counters.inc(C['messages.rx.close_tunnel']);
        break;
      case TYPE_LIGHTHOUSE:
        counters.inc(C['messages.rx.lighthouse']);
        break;
      default:
        counters.inc(C['messages.rx.other']);
    }
    this.forwardMeta(type, subtype, localIndex, counter, plain, n, from);
  }

  /** A decrypted overlay packet in plain[0..len) from tunnel t: inbound firewall, then the inside. */
  private deliver(t: RoutineTunnel, plain: Buffer, len: number): void {
    const ctx = this.ctx;
    const outcome = ctx.firewallCheck(t, plain, len, true);
    if (outcome !== FW_PASS) {
      if (outcome === FW_REFUSED) this.reject.toPeer(t, plain, len);
      return;
    }
    ctx.counters.inc(C['routine.outside.rx_packets']);
    if (this.echo === null) {
      ctx.insideOut.commit(len);
      return;
    }
    ctx.counters.inc(C['messages.rx.message']);
    this.echo.answer(t, plain, len);
  }

  /** Hands a packet the data path does not handle itself to the supervisor (a copy: the buffer is reused). */
  private forwardMeta(type: number, subtype: number, localIndex: number, counter: number, data: Buffer, len: number, from: Buffer): void {
    const packet: MetaPacket = {
      type,
      subtype,
      localIndex,
      remoteIndex: 0,
      counter,
      fromIp: sockaddrIPv4(from),
      fromPort: sockaddrPort(from),
      data: Uint8Array.prototype.slice.call(data, 0, len),
    };
    if (this.via !== undefined) packet.via = { relayVpnIp: this.via.fromVpnIp, remoteIndex: this.via.remoteIndex };
    this.ctx.post({ type: 'meta', routine: this.ctx.routine, packet });
  }
}
