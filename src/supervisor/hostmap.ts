/**
 * The supervisor's host map: established tunnels by VPN IP and by our local index, plus the shared-memory slot
 * each one owns (send counter, replay window, liveness marks). The supervisor is the only writer of this map;
 * routines learn of changes by IPC (tunnelUp / tunnelDown).
 */
import { randomInt } from 'node:crypto';
import { replayInit, replayMark } from '../shared/protocol/replay-window';
import { TS_IN_USE, TS_LOCK, TS_RECV_ERRORS, TS_REPLAY, TS_RX_MARK, TS_SEND_COUNTER, TS_TX_MARK, TUNNEL_SLOT_WORDS } from '../shared/state/layout';
import type { NebulaCertificate } from '../shared/pki';
import type { PacketCipher } from '../shared/crypto';

export interface HostInfo {
  vpnIp: number;
  localIndex: number;
  remoteIndex: number;
  slot: number;
  sendKey: Buffer;
  recvKey: Buffer;
  cert: NebulaCertificate;
  remoteIp: number;
  remotePort: number;
  /** Initiator's handshake Time (ns): a newer handshake from the same host replaces this tunnel (spec §3.7). */
  handshakeTime: bigint;
  /** Responder side: the stage-1 Noise bytes we answered and the reply we sent, for retransmitted stage 1s. */
  stage1?: Buffer;
  stage2Reply?: Buffer;
  initiatedLocally: boolean;
  /** The supervisor's own encryptor for the meta packets it sends (test, closeTunnel). */
  sender: PacketCipher;
  recvErrors: number;
  createdAt: number;
}

/** A freed slot is not reused for a while: a routine may still be finishing a packet on it. */
const SLOT_QUARANTINE_MS = 5000;

export class HostMap {
  private readonly byVpn = new Map<number, HostInfo>();
  private readonly byIndex = new Map<number, HostInfo>();
  private readonly freeSlots: number[] = [];
  private readonly quarantine: Array<{ slot: number; until: number }> = [];
  /** Indexes in use by pending handshakes too, so a new index never collides with either map. */
  private readonly reservedIndexes = new Set<number>();

  constructor(
    private readonly slots: Int32Array,
    readonly capacity: number,
  ) {
    for (let i = capacity - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  get size(): number {
    return this.byVpn.size;
  }

  hosts(): IterableIterator<HostInfo> {
    return this.byIndex.values();
  }

  get(vpnIp: number): HostInfo | undefined {
    return this.byVpn.get(vpnIp);
  }

  byLocalIndex(index: number): HostInfo | undefined {
    return this.byIndex.get(index);
  }

  byRemoteIndex(index: number): HostInfo | undefined {
    for (const h of this.byIndex.values()) if (h.remoteIndex === index) return h;
    return undefined;
  }

  /** A random non-zero uint32 unused by any tunnel or pending handshake (nebula-spec §3.3 step 2). */
  allocateIndex(): number {
    for (let tries = 0; tries < 32; tries++) {
      const idx = randomInt(1, 0x100000000 - 1) >>> 0;
      if (!this.byIndex.has(idx) && !this.reservedIndexes.has(idx)) {
        this.reservedIndexes.add(idx);
        return idx;
      }
    }
    throw new Error('failed to generate a unique local index');
  }

  releaseIndex(index: number): void {
    this.reservedIndexes.delete(index);
  }

  /**
   * Claims a slot and resets it for a new tunnel: send counter 2 (the first packet carries 3, spec §2.5), a fresh
   * replay window with 1 and 2 already used by the handshake, liveness marks clear.
   */
  allocateSlot(now: number): number {
    while (this.quarantine.length > 0 && this.quarantine[0]!.until <= now) this.freeSlots.push(this.quarantine.shift()!.slot);
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error(`host map is full (tunnels.max = ${this.capacity})`);
    const w = slot * TUNNEL_SLOT_WORDS;
    const s = this.slots;
    Atomics.store(s, w + TS_LOCK, 0);
    Atomics.store(s, w + TS_RX_MARK, 0);
    Atomics.store(s, w + TS_TX_MARK, 0);
    Atomics.store(s, w + TS_RECV_ERRORS, 0);
    replayInit(s, w + TS_REPLAY);
    replayMark(s, w + TS_REPLAY, 1);
    replayMark(s, w + TS_REPLAY, 2);
    Atomics.store(s, w + TS_SEND_COUNTER, 2);
    Atomics.store(s, w + TS_IN_USE, 1);
    return slot;
  }

  add(h: HostInfo): HostInfo | undefined {
    const previous = this.byVpn.get(h.vpnIp);
    this.byVpn.set(h.vpnIp, h);
    this.byIndex.set(h.localIndex, h);
    this.reservedIndexes.delete(h.localIndex);
    return previous;
  }

  /** Removes a tunnel and quarantines its slot. */
  remove(h: HostInfo, now: number): void {
    if (this.byIndex.get(h.localIndex) !== h) return;
    this.byIndex.delete(h.localIndex);
    if (this.byVpn.get(h.vpnIp) === h) this.byVpn.delete(h.vpnIp);
    Atomics.store(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_IN_USE, 0);
    this.quarantine.push({ slot: h.slot, until: now + SLOT_QUARANTINE_MS });
    h.sender.dispose();
  }

  /** Liveness marks the routines set (any authenticated packet in / any packet out). */
  rxMark(h: HostInfo): boolean {
    return Atomics.load(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_RX_MARK) !== 0;
  }

  txMark(h: HostInfo): boolean {
    return Atomics.load(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_TX_MARK) !== 0;
  }

  clearMarks(h: HostInfo): void {
    Atomics.store(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_RX_MARK, 0);
    Atomics.store(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_TX_MARK, 0);
  }

  /** Next send counter for a packet the supervisor itself sends on this tunnel. */
  nextCounter(h: HostInfo): number {
    return (Atomics.add(this.slots, h.slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER, 1) + 1) >>> 0;
  }

  /** A routine died: free any slot lock it held (locks are never held across anything that can block). */
  releaseLocksOf(routine: number): void {
    for (let slot = 0; slot < this.capacity; slot++) Atomics.compareExchange(this.slots, slot * TUNNEL_SLOT_WORDS + TS_LOCK, routine + 1, 0);
  }
}
