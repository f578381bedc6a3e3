/**
 * Conntrack as a fixed-capacity open-addressing hash table over an Int32Array (a view into the shared region), so
 * the reply to a flow that one routine let out is matched whichever routine it lands on (DESIGN.md, shared state 3).
 *
 * Entry layout (CONNTRACK_WORDS = 8 int32 words):
 *   0 state: 0 empty, 1 live, 2 deleted (tombstone keeps probe chains intact)
 *   1 local IP   2 remote IP   3 localPort << 16 | remotePort
 *   4 proto | fragment << 8 | incoming << 9      5 rules version the entry was allowed under
 *   6 expiry, seconds since EPOCH_BASE           7 spare
 *
 * Like Nebula (nebula-spec §7.4) an entry is refreshed by any packet that hits it, expires lazily, and remembers the
 * rules version so that after a reload it is re-verified on its next hit (the caller does that, see firewall).
 * Allocation-free: the hot path passes numbers, never objects it creates.
 */
import { CONNTRACK_WORDS } from './layout';

const EPOCH_BASE = 1_700_000_000;
const MAX_PROBE = 32;

const W_STATE = 0;
const W_LOCAL = 1;
const W_REMOTE = 2;
const W_PORTS = 3;
const W_PROTO = 4;
const W_VERSION = 5;
const W_EXPIRY = 6;

const EMPTY = 0;
const LIVE = 1;
const DELETED = 2;

/** Seconds on the shared clock (wall clock: every process agrees on it, unlike performance.now()). */
export function conntrackNow(): number {
  return Math.floor(Date.now() / 1000) - EPOCH_BASE;
}

export interface FlowKey {
  localIp: number;
  remoteIp: number;
  localPort: number;
  remotePort: number;
  proto: number;
  fragment: boolean;
}

export class ConntrackTable {
  private readonly mask: number;

  constructor(
    private readonly table: Int32Array,
    readonly capacity: number,
  ) {
    if (capacity & (capacity - 1)) throw new Error('conntrack capacity must be a power of two');
    if (table.length < capacity * CONNTRACK_WORDS) throw new Error('conntrack view too small');
    this.mask = capacity - 1;
  }

  private static hash(k: FlowKey): number {
    let h = Math.imul(k.localIp ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ k.remoteIp ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ ((k.localPort << 16) | k.remotePort) ^ (h >>> 16), 0x27d4eb2f);
    h ^= k.proto | (k.fragment ? 0x100 : 0);
    return (h ^ (h >>> 15)) >>> 0;
  }

  private matches(base: number, k: FlowKey): boolean {
    const t = this.table;
    return (
      t[base + W_LOCAL] === (k.localIp | 0) &&
      t[base + W_REMOTE] === (k.remoteIp | 0) &&
      t[base + W_PORTS] === ((k.localPort << 16) | k.remotePort) &&
      (t[base + W_PROTO]! & 0x1ff) === (k.proto | (k.fragment ? 0x100 : 0))
    );
  }

  /** Entry index of a live, unexpired entry for `k`, or -1. Expired entries met on the way are deleted. */
  lookup(k: FlowKey, now: number): number {
    const t = this.table;
    let i = ConntrackTable.hash(k) & this.mask;
    for (let probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & this.mask) {
      const base = i * CONNTRACK_WORDS;
      const state = t[base + W_STATE];
      if (state === EMPTY) return -1;
      if (state === LIVE) {
        if (t[base + W_EXPIRY]! < now) {
          t[base + W_STATE] = DELETED;
          continue;
        }
        if (this.matches(base, k)) return i;
      }
    }
    return -1;
  }

  /** Creates (or overwrites) the entry for `k`. When the probe window is full the soonest-expiring entry is evicted. */
  insert(k: FlowKey, incoming: boolean, rulesVersion: number, expiry: number, now: number): number {
    const t = this.table;
    const start = ConntrackTable.hash(k) & this.mask;
    let free = -1;
    let victim = start;
    let victimExpiry = Infinity;
    let i = start;
    for (let probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & this.mask) {
      const base = i * CONNTRACK_WORDS;
      const state = t[base + W_STATE];
      if (state === LIVE && t[base + W_EXPIRY]! >= now) {
        if (this.matches(base, k)) {
          free = i;
          break;
        }
        if (t[base + W_EXPIRY]! < victimExpiry) {
          victimExpiry = t[base + W_EXPIRY]!;
          victim = i;
        }
        continue;
      }
      if (free < 0) free = i;
      if (state === EMPTY) break;
    }
    const slot = free >= 0 ? free : victim;
    const base = slot * CONNTRACK_WORDS;
    t[base + W_LOCAL] = k.localIp | 0;
    t[base + W_REMOTE] = k.remoteIp | 0;
    t[base + W_PORTS] = (k.localPort << 16) | k.remotePort;
    t[base + W_PROTO] = k.proto | (k.fragment ? 0x100 : 0) | (incoming ? 0x200 : 0);
    t[base + W_VERSION] = rulesVersion;
    t[base + W_EXPIRY] = expiry;
    t[base + W_STATE] = LIVE;
    return slot;
  }

  incoming(entry: number): boolean {
    return (this.table[entry * CONNTRACK_WORDS + W_PROTO]! & 0x200) !== 0;
  }

  rulesVersion(entry: number): number {
    return this.table[entry * CONNTRACK_WORDS + W_VERSION]!;
  }

  /** Refreshes the expiry and, after a successful re-verification, the rules version. */
  refresh(entry: number, expiry: number, rulesVersion: number): void {
    const base = entry * CONNTRACK_WORDS;
    this.table[base + W_EXPIRY] = expiry;
    this.table[base + W_VERSION] = rulesVersion;
  }

  remove(entry: number): void {
    this.table[entry * CONNTRACK_WORDS + W_STATE] = DELETED;
  }

  /** Live, unexpired entries (for the firewall.conntrack.count gauge; O(capacity), scrape-time only). */
  count(now: number): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      const base = i * CONNTRACK_WORDS;
      if (this.table[base + W_STATE] === LIVE && this.table[base + W_EXPIRY]! >= now) n++;
    }
    return n;
  }
}
