/**
 * Answers to refused packets when `firewall.outbound_action` / `inbound_action` is `reject` (Nebula 1.7+), sent where
 * Go sends them (inside.go rejectInside / rejectOutside):
 *
 * - outbound (read from our inside, refused by the outbound firewall or routed nowhere): the RST / ICMP unreachable
 *   is written back to our own inside, so the local application fails at once instead of timing out;
 * - inbound (decrypted from a peer, refused by the inbound firewall): it is sealed back to that peer on the tunnel
 *   the packet came in on, without passing our outbound firewall (as Go's sendNoMetrics).
 *
 * Which packet is built, and when none is (fragments, ICMP errors), is reject-packet.ts. The action is read from the
 * firewall in force, so a reload switches it with the rules. Packets parked while their tunnel was being made are
 * not answered when they are refused later (Go's sendMessageNow drops cached packets silently). Nothing is allocated
 * per packet: outbound rejects are built straight into the inside outbox, inbound ones into one scratch buffer.
 */
import { buildRejectPacket, MAX_REJECT_PACKET_LEN, parseIPPacket } from '../shared/firewall';
import { TYPE_MESSAGE } from '../shared/protocol/header';
import { C } from '../shared/state/counters';
import type { DatapathContext } from './context';
import type { RoutineTunnel } from './tunnel-registry';

export class Rejecter {
  private readonly scratch = Buffer.alloc(MAX_REJECT_PACKET_LEN);

  constructor(private readonly ctx: DatapathContext) {}

  /** `buf[0..len)` from our inside was refused by the outbound firewall: answer the local sender. */
  toInside(buf: Buffer, len: number): void {
    const ctx = this.ctx;
    if (!ctx.gate.rules.rejectOutbound || !ctx.insideOut.hasInside) return;
    const n = buildRejectPacket(buf, len, ctx.insideOut.buffer());
    if (n === 0) return;
    ctx.insideOut.commit(n);
    ctx.counters.inc(C['routine.firewall.outgoing.rejects_sent']);
  }

  /** `buf[0..len)` from our inside has no route (no VPN address, no unsafe route): answered as Go does, if it parses. */
  unroutable(buf: Buffer, len: number): void {
    if (!this.ctx.gate.rules.rejectOutbound) return;
    if (!parseIPPacket(buf, len, false, this.ctx.pkt)) return;
    this.toInside(buf, len);
  }

  /** `plain[0..len)`, decrypted from tunnel `t`, was refused by the inbound firewall: answer the peer through `t`. */
  toPeer(t: RoutineTunnel, plain: Buffer, len: number): void {
    const ctx = this.ctx;
    if (!ctx.gate.rules.rejectInbound) return;
    const n = buildRejectPacket(plain, len, this.scratch);
    if (n === 0) return;
    ctx.send(t, TYPE_MESSAGE, 0, this.scratch, n, C['routine.firewall.incoming.rejects_sent']);
  }
}
