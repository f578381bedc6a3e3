/**
 * The supervisor's host map: established tunnels by VPN IP and by our local index, plus the shared-memory slot
 * each one owns (send counter, replay window, liveness marks). The supervisor is the only writer of this map;
 * routines learn of changes by IPC (tunnelUp / tunnelDown).
 */
import { randomInt } from 'node:crypto';
import type { TunnelSlots } from '../shared/state/tunnel-slots';
import type { Certificate } from '../shared/pki';
import type { PacketCipher } from '../shared/crypto';
import type { ViaRelay } from '../shared/ipc/messages';

export interface HostInfo {
  vpnIp: number;
  localIndex: number;
  remoteIndex: number;
  slot: number;
  sendKey: Buffer;
  recvKey: Buffer;
  cert: Certificate;
  remoteIp: number;
  remotePort: number;
  /** Initiator's handshake Time (ns): a newer handshake from the same host replaces this tunnel (spec §3.7). */
  handshakeTime: bigint;
  /** Responder side: the stage-1 Noise bytes we answered and the reply we sent, for retransmitted stage 1s. */
  stage1?: Buffer;
  stage2Reply?: Buffer;
  initiatedLocally: boolean;
  /** The supervisor's own encryptor for the meta packets it sends (test, closeTunnel). */
  encrypt: PacketCipher;
  /** remoteIp:remotePort as a sockaddr_in, what sendOnTunnel sends to; updated with them (install, roaming). */
  remoteSockaddr: Buffer;
  recvErrors: number;
  createdAt: number;
  /** A relayed tunnel (nebula-spec §5.8): the relay host and the index it knows our side by; remote is then 0:0. */
  relay?: ViaRelay;
  /** What sendOnTunnel needs of that relay (set by tunnels.ts at install). */
  via?: { readonly remoteIndex: number; relayTunnel(): HostInfo | undefined };
  /** The last roam: when, and the address it left (roaming straight back is suppressed for a while). */
  lastRoam?: { at: number; from: { ip: number; port: number } };
}

/** What a completed handshake knows of a tunnel; installing it (tunnels.ts) adds the slot, the cipher and the rest. */
export type NewTunnel = Omit<HostInfo, 'slot' | 'encrypt' | 'remoteSockaddr' | 'recvErrors' | 'createdAt' | 'lastRoam' | 'via'>;

/** A freed slot is not reused for a while: a routine may still be finishing a packet on it. */
const SLOT_QUARANTINE_MS = 5000;

export class HostMap {
  private readonly byVpn = new Map<number, HostInfo>();
  private readonly byIndex = new Map<number, HostInfo>();
  private readonly byRemote = new Map<number, HostInfo>();
  private readonly freeSlots: number[] = [];
  private readonly quarantine: Array<{ slot: number; until: number }> = [];
  /** Indexes in use by pending handshakes too, so a new index never collides with either map. */
  private readonly reservedIndexes = new Set<number>();

  constructor(
    private readonly slots: TunnelSlots,
    readonly capacity: number,
  ) {
    for (let i = capacity - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  get size(): number {
    return this.byVpn.size;
  }

  /** Tunnels by local index (Go's `hostmap.main.indexes`). */
  get indexCount(): number {
    return this.byIndex.size;
  }

  /** Tunnels by the peer's index (Go's `hostmap.main.remoteIndexes`). */
  get remoteIndexCount(): number {
    return this.byRemote.size;
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

  /** The tunnel whose peer knows it by `index` (recvErrors name it): a map, as every recvError asks. */
  byRemoteIndex(index: number): HostInfo | undefined {
    return this.byRemote.get(index);
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
   * Claims a slot and resets it for a new tunnel (TunnelSlots.reset; `sendCounter` only for the test hook that
   * starts a tunnel near the re-key threshold). Undefined when every slot is taken.
   */
  allocateSlot(now: number, sendCounter?: number): number | undefined {
    while (this.quarantine.length > 0 && this.quarantine[0]!.until <= now) this.freeSlots.push(this.quarantine.shift()!.slot);
    const slot = this.freeSlots.pop();
    if (slot === undefined) return undefined;
    this.slots.reset(slot, sendCounter);
    return slot;
  }

  /** The last send counter handed out on `h` (the re-key check). */
  sendCounter(h: HostInfo): number {
    return this.slots.sendCounter(h.slot);
  }

  add(h: HostInfo): HostInfo | undefined {
    const previous = this.byVpn.get(h.vpnIp);
    this.byVpn.set(h.vpnIp, h);
    this.byIndex.set(h.localIndex, h);
    this.byRemote.set(h.remoteIndex, h);
    this.reservedIndexes.delete(h.localIndex);
    return previous;
  }

  /** Removes a tunnel and quarantines its slot. */
  remove(h: HostInfo, now: number): void {
    if (this.byIndex.get(h.localIndex) !== h) return;
    this.byIndex.delete(h.localIndex);
    if (this.byVpn.get(h.vpnIp) === h) this.byVpn.delete(h.vpnIp);
    if (this.byRemote.get(h.remoteIndex) === h) this.byRemote.delete(h.remoteIndex);
    this.slots.release(h.slot);
    this.quarantine.push({ slot: h.slot, until: now + SLOT_QUARANTINE_MS });
    h.encrypt.dispose();
  }

  /** Liveness marks the routines set (any authenticated packet in / any packet out). */
  rxMark(h: HostInfo): boolean {
    return this.slots.rxMark(h.slot);
  }

  txMark(h: HostInfo): boolean {
    return this.slots.txMark(h.slot);
  }

  clearMarks(h: HostInfo): void {
    this.slots.clearMarks(h.slot);
  }
}
