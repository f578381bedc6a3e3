/**
 * Conntrack as a fixed-capacity open-addressing hash table over an Int32Array (a view into the shared region), so
 * the reply to a flow that one routine let out is matched whichever routine it lands on (DESIGN.md, shared state 3).
 *
 * An entry is 16 int32 words holding an IPv4 or IPv6 flow key (layout: conntrack-entry.ts).
 *
 * Several routine processes write this table at once, so a multi-word entry is guarded by a seqlock (DESIGN.md:
 * "versioned slots or seqlocks for multi-word records"): a writer claims word 7 with a CAS to its owner id, writes,
 * then releases it with the next version; a reader skips an entry being written and re-checks word 7 after reading,
 * discarding what a concurrent write may have torn. A reader never blocks; a writer waits only for another writer of
 * the same entry. If a routine dies mid-write, `releaseConntrackOwner` (conntrack-snapshot.ts, run by the
 * supervisor) deletes and frees its entries.
 *
 * Like Nebula (nebula-spec §7.4) an entry is refreshed by any packet that hits it, expires lazily (inserts reuse
 * expired slots), and remembers the rules version so that after a reload it is re-verified on its next hit (the
 * caller does that, see firewall-gate). Allocation-free: the hot path passes numbers, never objects it creates.
 */
import { CONNTRACK_WORDS } from './layout';
import {
  DELETED,
  EMPTY,
  F_INCOMING,
  KEY_BITS,
  LIVE,
  OWNER_ID_MASK,
  OWNER_MASK,
  REFRESHING,
  W_EXPIRY,
  W_LOCAL,
  W_LOCAL6,
  W_PORTS,
  W_PROTO,
  W_REMOTE,
  W_REMOTE6,
  W_SEQ,
  W_STATE,
  W_VERSION,
  keyBits,
  readWasWhole,
  type FlowKey,
} from './conntrack-entry';

export { conntrackNow, type FlowKey } from './conntrack-entry';
export { conntrackEntries, releaseConntrackOwner, type ConntrackEntry } from './conntrack-snapshot';

const MAX_PROBE = 32;
/** Lock-free reads of a busy entry before the reader claims it instead (a write takes a few dozen instructions). */
const OPTIMISTIC_READS = 64;
const ENTRY_HIT = 1;
const ENTRY_MISS = 0;
const ENTRY_END = -1;
/** Tries to claim an entry for writing before giving up on that write. */
const SPIN_LIMIT = 1 << 20;
const CLAIM_FAILED = -1;

export class ConntrackTable {
  private readonly mask: number;
  /** Of the entry the last successful lookup found: its rules version and direction, read as one snapshot. */
  foundVersion = 0;
  foundIncoming = false;

  /**
   * @param owner this writer's id in the seqlock word, 1..32767 (a routine uses its index + 1); it must be unique
   *   among the processes sharing the table so the supervisor can free what a dead one held.
   */
  constructor(
    private readonly table: Int32Array,
    readonly capacity: number,
    private readonly owner = 1,
  ) {
    if (capacity & (capacity - 1)) throw new Error('conntrack capacity must be a power of two');
    if (table.length < capacity * CONNTRACK_WORDS) throw new Error('conntrack view too small');
    if (owner < 1 || owner > OWNER_ID_MASK) throw new Error('conntrack owner must be 1..32767');
    this.mask = capacity - 1;
  }

  private static hash(k: FlowKey): number {
    let h = Math.imul(k.localIp ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ k.remoteIp ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ ((k.localPort << 16) | k.remotePort) ^ (h >>> 16), 0x27d4eb2f);
    if (k.version === 6) {
      // The prefixes too: flows of hosts whose addresses differ only there must not share a probe chain.
      const l = k.local6;
      const r = k.remote6;
      h = Math.imul(h ^ l[0]! ^ (h >>> 15), 0x85ebca6b);
      h = Math.imul(h ^ l[1]! ^ l[2]! ^ (h >>> 13), 0xc2b2ae35);
      h = Math.imul(h ^ r[0]! ^ (h >>> 16), 0x27d4eb2f);
      h = Math.imul(h ^ r[1]! ^ r[2]! ^ (h >>> 15), 0x85ebca6b);
    }
    h ^= keyBits(k);
    return (h ^ (h >>> 15)) >>> 0;
  }

  private matches(base: number, k: FlowKey): boolean {
    const t = this.table;
    if (
      t[base + W_LOCAL] !== (k.localIp | 0) ||
      t[base + W_REMOTE] !== (k.remoteIp | 0) ||
      t[base + W_PORTS] !== ((k.localPort << 16) | k.remotePort) ||
      (t[base + W_PROTO]! & KEY_BITS) !== keyBits(k)
    ) {
      return false;
    }
    if (k.version !== 6) return true;
    const l = k.local6;
    const r = k.remote6;
    return (
      t[base + W_LOCAL6] === (l[0]! | 0) &&
      t[base + W_LOCAL6 + 1] === (l[1]! | 0) &&
      t[base + W_LOCAL6 + 2] === (l[2]! | 0) &&
      t[base + W_REMOTE6] === (r[0]! | 0) &&
      t[base + W_REMOTE6 + 1] === (r[1]! | 0) &&
      t[base + W_REMOTE6 + 2] === (r[2]! | 0)
    );
  }

  /**
   * Claims an entry for writing; returns the seqlock word to release with, or -1 when another writer held it for
   * SPIN_LIMIT tries (a stopped process): the caller then skips its write, which costs a flow at most a rule check.
   * (A real seqlock word has no owner bits, so it is never CLAIM_FAILED; it can be negative once the version
   * reaches the sign bit.)
   */
  private claim(base: number, flags = 0): number {
    const t = this.table;
    const w = base + W_SEQ;
    for (let spins = 0; spins < SPIN_LIMIT; spins++) {
      const s = Atomics.load(t, w);
      if ((s & OWNER_MASK) === 0 && Atomics.compareExchange(t, w, s, s | this.owner | flags) === s) return s;
    }
    return CLAIM_FAILED;
  }

  /** Ends a write: next version, no owner. */
  private release(base: number, s: number): void {
    Atomics.store(this.table, base + W_SEQ, (s + 0x10000) & ~OWNER_MASK);
  }

  /**
   * Entry index of a live, unexpired entry for `k`, or -1; on a hit, foundVersion/foundIncoming hold a consistent
   * snapshot of it. An entry being written at this instant is read once the write is done; only one held by a
   * stopped writer (past SPIN_LIMIT) counts as absent (the rules decide that packet).
   */
  lookup(k: FlowKey, now: number): number {
    let i = ConntrackTable.hash(k) & this.mask;
    for (let probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & this.mask) {
      const base = i * CONNTRACK_WORDS;
      // An entry being written (or written while we read it) is read again, not skipped: skipping it could miss the
      // very flow another routine is refreshing right now and drop its reply. After OPTIMISTIC_READS torn reads (a
      // busy entry), the entry is claimed like a write, read, and released: progress whatever the writers do.
      const found = this.readEntry(base, k, now);
      if (found === ENTRY_END) return -1;
      if (found === ENTRY_HIT) return i;
    }
    return -1;
  }

  /** ENTRY_HIT (foundVersion/foundIncoming set), ENTRY_MISS (go on probing) or ENTRY_END (an empty slot: stop). */
  private readEntry(base: number, k: FlowKey, now: number): number {
    const t = this.table;
    for (let attempt = 0; attempt < OPTIMISTIC_READS; attempt++) {
      const s = Atomics.load(t, base + W_SEQ);
      if ((s & OWNER_MASK) !== 0 && (s & REFRESHING) === 0) continue; // the key itself may be changing
      const result = this.inspect(base, k, now);
      const after = Atomics.load(t, base + W_SEQ);
      if (readWasWhole(s, after)) return result;
    }
    const s = this.claim(base);
    if (s === CLAIM_FAILED) return ENTRY_MISS; // held by a stopped writer: pass it over
    const result = this.inspect(base, k, now);
    this.release(base, s);
    return result;
  }

  private inspect(base: number, k: FlowKey, now: number): number {
    const t = this.table;
    const state = t[base + W_STATE];
    if (state === EMPTY) return ENTRY_END;
    if (state !== LIVE || t[base + W_EXPIRY]! < now || !this.matches(base, k)) return ENTRY_MISS;
    this.foundVersion = t[base + W_VERSION]!;
    this.foundIncoming = (t[base + W_PROTO]! & F_INCOMING) !== 0;
    return ENTRY_HIT;
  }

  /** Creates (or overwrites) the entry for `k`. When the probe window is full the soonest-expiring entry is evicted. */
  insert(k: FlowKey, incoming: boolean, rulesVersion: number, expiry: number, now: number): number {
    const t = this.table;
    const start = ConntrackTable.hash(k) & this.mask;
    let free = -1;
    let victim = start;
    let victimExpiry = Infinity;
    let i = start;
    // Choosing a slot reads without the lock: at worst a concurrent writer changes it first and we overwrite that
    // entry, which only costs its flow a rule check on its next packet.
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
    const s = this.claim(base);
    if (s === CLAIM_FAILED) return -1;
    t[base + W_LOCAL] = k.localIp | 0;
    t[base + W_REMOTE] = k.remoteIp | 0;
    t[base + W_PORTS] = (k.localPort << 16) | k.remotePort;
    t[base + W_PROTO] = keyBits(k) | (incoming ? F_INCOMING : 0);
    if (k.version === 6) {
      for (let w = 0; w < 3; w++) {
        t[base + W_LOCAL6 + w] = k.local6[w]! | 0;
        t[base + W_REMOTE6 + w] = k.remote6[w]! | 0;
      }
    }
    t[base + W_VERSION] = rulesVersion;
    t[base + W_EXPIRY] = expiry;
    t[base + W_STATE] = LIVE;
    this.release(base, s);
    return slot;
  }

  /** Refreshes the expiry and, after a successful re-verification, the rules version (if `entry` still holds `k`). */
  refresh(entry: number, k: FlowKey, expiry: number, rulesVersion: number): void {
    const base = entry * CONNTRACK_WORDS;
    const s = this.claim(base, REFRESHING);
    if (s === CLAIM_FAILED) return;
    if (this.table[base + W_STATE] === LIVE && this.matches(base, k)) {
      this.table[base + W_EXPIRY] = expiry;
      this.table[base + W_VERSION] = rulesVersion;
    }
    this.release(base, s);
  }

  /** Deletes `entry` if it still holds `k`. */
  remove(entry: number, k: FlowKey): void {
    const base = entry * CONNTRACK_WORDS;
    const s = this.claim(base);
    if (s === CLAIM_FAILED) return;
    if (this.matches(base, k)) this.table[base + W_STATE] = DELETED;
    this.release(base, s);
  }

  /** Live, unexpired entries (for the firewall.conntrack.count gauge; O(capacity), scrape-time only, approximate). */
  count(now: number): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      const base = i * CONNTRACK_WORDS;
      if (this.table[base + W_STATE] === LIVE && this.table[base + W_EXPIRY]! >= now) n++;
    }
    return n;
  }
}
