/**
 * Conntrack as a fixed-capacity open-addressing hash table over an Int32Array (a view into the shared region), so
 * the reply to a flow that one routine let out is matched whichever routine it lands on (DESIGN.md, shared state 3).
 *
 * Entry layout (CONNTRACK_WORDS = 8 int32 words):
 *   0 state: 0 empty, 1 live, 2 deleted (tombstone keeps probe chains intact)
 *   1 local IP   2 remote IP   3 localPort << 16 | remotePort
 *   4 proto | fragment << 8 | incoming << 9      5 rules version the entry was allowed under
 *   6 expiry, seconds since EPOCH_BASE           7 seqlock: version << 16 | owner (owner 0 = not being written)
 *
 * Several routine processes write this table at once, so an 8-word entry is guarded by a seqlock (DESIGN.md:
 * "versioned slots or seqlocks for multi-word records"): a writer claims word 7 with a CAS to its owner id, writes,
 * then releases it with the next version; a reader skips an entry being written and re-checks word 7 after reading,
 * discarding what a concurrent write may have torn. A reader never blocks; a writer waits only for another writer of
 * the same entry. If a routine dies mid-write, `releaseOwner` (run by the supervisor) deletes and frees its entries.
 *
 * Like Nebula (nebula-spec §7.4) an entry is refreshed by any packet that hits it, expires lazily (inserts reuse
 * expired slots), and remembers the rules version so that after a reload it is re-verified on its next hit (the
 * caller does that, see firewall-gate). Allocation-free: the hot path passes numbers, never objects it creates.
 */
import { CONNTRACK_WORDS } from './layout';

const EPOCH_BASE = 1_700_000_000;
const MAX_PROBE = 32;
/** Lock-free reads of a busy entry before the reader claims it instead (a write takes a few dozen instructions). */
const OPTIMISTIC_READS = 64;
const ENTRY_HIT = 1;
const ENTRY_MISS = 0;
const ENTRY_END = -1;
/** Tries to claim an entry for writing before giving up on that write. */
const SPIN_LIMIT = 1 << 20;
const CLAIM_FAILED = -1;

const W_STATE = 0;
const W_LOCAL = 1;
const W_REMOTE = 2;
const W_PORTS = 3;
const W_PROTO = 4;
const W_VERSION = 5;
const W_EXPIRY = 6;
const W_SEQ = 7;

const EMPTY = 0;
const LIVE = 1;
const DELETED = 2;

/** The low 16 bits of the seqlock word: who holds the entry (0 = nobody) and, in bit 15, that it is a refresh. */
const OWNER_MASK = 0xffff;
const OWNER_ID_MASK = 0x7fff;
/**
 * Set while the holder only refreshes (expiry, rules version): the key fields do not change, so a reader may use
 * them meanwhile, whatever happens to the holder (a writer preempted mid-refresh does not make a reader miss).
 */
const REFRESHING = 0x8000;

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
      // Whole if nothing was written meanwhile, or if the only write since is a refresh still under way (same
      // version: no write completed; a refresh leaves the key alone, and old or new expiry/version are both right).
      if (after === s || ((after & REFRESHING) !== 0 && (after & ~OWNER_MASK) === (s & ~OWNER_MASK))) return result;
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
    this.foundIncoming = (t[base + W_PROTO]! & 0x200) !== 0;
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
    t[base + W_PROTO] = k.proto | (k.fragment ? 0x100 : 0) | (incoming ? 0x200 : 0);
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

/** One conntrack entry as `nebula-ctl conntrack` lists it. */
export interface ConntrackEntry extends FlowKey {
  incoming: boolean;
  rulesVersion: number;
  /** Seconds until it expires (unless a packet refreshes it). */
  expiresIn: number;
}

/**
 * Up to `limit` live, unexpired entries, in table order: a snapshot for the operator (O(capacity), never on the data
 * path). Read without a lock: an entry whose key is being written, or was rewritten while it was read, is left out.
 */
export function conntrackEntries(table: Int32Array, capacity: number, now: number, limit: number): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (let i = 0; i < capacity && out.length < limit; i++) {
    const base = i * CONNTRACK_WORDS;
    const s = Atomics.load(table, base + W_SEQ);
    if ((s & OWNER_MASK) !== 0 && (s & REFRESHING) === 0) continue; // the key itself may be changing
    if (table[base + W_STATE] !== LIVE || table[base + W_EXPIRY]! < now) continue;
    const ports = table[base + W_PORTS]!;
    const proto = table[base + W_PROTO]!;
    const entry: ConntrackEntry = {
      localIp: table[base + W_LOCAL]! >>> 0,
      remoteIp: table[base + W_REMOTE]! >>> 0,
      localPort: ports >>> 16,
      remotePort: ports & 0xffff,
      proto: proto & 0xff,
      fragment: (proto & 0x100) !== 0,
      incoming: (proto & 0x200) !== 0,
      rulesVersion: table[base + W_VERSION]!,
      expiresIn: table[base + W_EXPIRY]! - now,
    };
    // As lookup's readers: whole if nothing was written meanwhile, or only a refresh that leaves the key alone.
    const after = Atomics.load(table, base + W_SEQ);
    if (after === s || ((after & REFRESHING) !== 0 && (after & ~OWNER_MASK) === (s & ~OWNER_MASK))) out.push(entry);
  }
  return out;
}

/**
 * A writer died (routine crash): every entry it held mid-write may be torn, so delete it and free its seqlock.
 * Run by the supervisor before the routine is respawned. Returns how many entries were freed.
 */
export function releaseConntrackOwner(table: Int32Array, capacity: number, owner: number): number {
  let freed = 0;
  for (let i = 0; i < capacity; i++) {
    const w = i * CONNTRACK_WORDS + W_SEQ;
    const s = Atomics.load(table, w);
    if ((s & OWNER_MASK) === 0 || (s & OWNER_ID_MASK) !== owner) continue;
    table[i * CONNTRACK_WORDS + W_STATE] = DELETED;
    if (Atomics.compareExchange(table, w, s, (s + 0x10000) & ~OWNER_MASK) === s) freed++;
  }
  return freed;
}
