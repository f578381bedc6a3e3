/**
 * Relay frames (type 1, subtype 1; nebula-spec §5.8, Go's outside.go MessageRelay): a datagram carried in clear
 * inside a frame whose header names one of our relay indexes, authenticated by the tunnel to the host that sent it
 * (an AEAD tag over an empty plaintext with the whole frame as associated data, under the frame's counter, which
 * the replay window of that tunnel checks and advances: Go 1.11's behaviour; 1.6.1 only checked). Then:
 * - terminal (we are the end): the inner datagram is processed as if it had arrived, marked as relayed, so nothing
 *   roams to, or sends a recvError to, the relay's address;
 * - forwarding (we are the relay): the inner datagram goes on in a new frame on the tunnel to the target, under the
 *   index the target knows this relay by.
 * The table comes whole from the supervisor (relay-manager.ts) whenever it changes. Nothing here allocates.
 */
import type { RelayRoute } from '../shared/ipc/messages';
import { sockaddrIPv4, sockaddrPort } from '../shared/native/sockaddr';
import { TAG_LEN } from '../shared/crypto/types';
import { HEADER_LEN } from '../shared/protocol/header';
import { REPLAY_WINDOW } from '../shared/protocol/replay-window';
import { C } from '../shared/state/counters';
import { SLOT_BUSY } from '../shared/state/tunnel-slots';
import { sendRelayFrame } from '../shared/tunnel/send';
import type { DatapathContext } from './context';
import { NO_COUNTER } from './outboxes';

export type InnerHandler = (buf: Buffer, len: number, from: Buffer, via: RelayRoute) => void;

export class RelayFrames {
  private routes = new Map<number, RelayRoute>();
  private readonly inner: Buffer;
  private readonly tagScratch = Buffer.alloc(TAG_LEN);

  constructor(
    private readonly ctx: DatapathContext,
    maxDatagram: number,
    private readonly handleInner: InnerHandler,
  ) {
    this.inner = Buffer.alloc(maxDatagram);
  }

  /** Replaces the table (the supervisor sends it whole). */
  setRoutes(routes: readonly RelayRoute[]): void {
    this.routes = new Map(routes.map((r) => [r.localIndex, r]));
  }

  get size(): number {
    return this.routes.size;
  }

  /** A relay frame in buf[0..len) for our relay index `relayIndex`, outer counter `counter`. */
  handle(buf: Buffer, len: number, from: Buffer, relayIndex: number, counter: number): void {
    const { ctx } = this;
    const counters = ctx.counters;
    const r = this.routes.get(relayIndex);
    const t = r === undefined ? undefined : ctx.tunnels.forVpnIp(r.fromVpnIp);
    if (r === undefined || t === undefined) {
      counters.inc(C['routine.dropped.no_tunnel']);
      return;
    }
    if (len < HEADER_LEN + TAG_LEN || len - HEADER_LEN - TAG_LEN > this.inner.length) {
      counters.inc(C['routine.dropped.malformed']);
      return;
    }
    const fresh = ctx.slots.replayCheck(t.slot, counter);
    if (fresh === SLOT_BUSY || fresh === 0) {
      if (fresh === SLOT_BUSY) counters.inc(C['routine.dropped.slot_busy']);
      else counters.inc(counter + REPLAY_WINDOW <= ctx.slots.replayCurrent(t.slot) ? C['network.packets.out_of_window'] : C['network.packets.duplicate']);
      return;
    }
    if (t.decrypt.decrypt(this.tagScratch, 0, buf, 0, len - TAG_LEN, buf, len - TAG_LEN, TAG_LEN, counter) !== 0) {
      counters.inc(C['routine.dropped.decrypt_failed']);
      return;
    }
    const update = ctx.slots.replayUpdate(t.slot, counter);
    if (update < 0) {
      counters.inc(update === SLOT_BUSY ? C['routine.dropped.slot_busy'] : C['network.packets.duplicate']);
      return;
    }
    if (update > 0) counters.add(C['network.packets.lost'], update);
    ctx.slots.markRx(t.slot);
    const fromIp = sockaddrIPv4(from);
    const fromPort = sockaddrPort(from);
    if (fromIp !== t.remoteIp || fromPort !== t.remotePort) {
      // The relay host itself roamed (Go's handleHostRoaming on the relay's host info).
      t.setRemote(fromIp, fromPort);
      ctx.post({ type: 'roamed', routine: ctx.routine, localIndex: t.localIndex, remoteIp: fromIp, remotePort: fromPort });
    }
    const innerLen = len - HEADER_LEN - TAG_LEN;
    if (r.kind === 'terminal') {
      counters.inc(C['routine.relay.rx_terminal']);
      buf.copy(this.inner, 0, HEADER_LEN, HEADER_LEN + innerLen);
      this.handleInner(this.inner, innerLen, from, r);
      return;
    }
    const target = r.targetVpnIp === undefined ? undefined : ctx.tunnels.forVpnIp(r.targetVpnIp);
    if (target === undefined || r.targetRemoteIndex === undefined) {
      counters.inc(C['routine.dropped.no_tunnel']);
      return;
    }
    ctx.outbox.nextCountAs = C['routine.relay.forwarded'];
    if (!sendRelayFrame(ctx.slots, target, r.targetRemoteIndex, buf, HEADER_LEN, innerLen, ctx.outbox)) {
      ctx.outbox.nextCountAs = NO_COUNTER;
      counters.inc(C['routine.dropped.counter_spent']);
    }
  }
}
