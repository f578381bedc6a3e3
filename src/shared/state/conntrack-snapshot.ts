/**
 * What the supervisor does with the whole conntrack table, never on the data path: list it for `nebula-ctl
 * conntrack`, and free what a dead routine held mid-write (conntrack.ts has the table and its seqlock rules).
 */
import { CONNTRACK_WORDS } from './layout';
import {
  DELETED,
  F_FRAGMENT,
  F_INCOMING,
  F_IPV6,
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
  readWasWhole,
  type FlowKey,
} from './conntrack-entry';

/** One conntrack entry as `nebula-ctl conntrack` lists it (local6 / remote6 are zeros for IPv4). */
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
    const v6 = (proto & F_IPV6) !== 0;
    const localIp = table[base + W_LOCAL]! >>> 0;
    const remoteIp = table[base + W_REMOTE]! >>> 0;
    const local6 = new Uint32Array(4);
    const remote6 = new Uint32Array(4);
    if (v6) {
      for (let w = 0; w < 3; w++) {
        local6[w] = table[base + W_LOCAL6 + w]!;
        remote6[w] = table[base + W_REMOTE6 + w]!;
      }
      local6[3] = localIp;
      remote6[3] = remoteIp;
    }
    const entry: ConntrackEntry = {
      version: v6 ? 6 : 4,
      localIp,
      remoteIp,
      localPort: ports >>> 16,
      remotePort: ports & 0xffff,
      proto: proto & 0xff,
      fragment: (proto & F_FRAGMENT) !== 0,
      local6,
      remote6,
      incoming: (proto & F_INCOMING) !== 0,
      rulesVersion: table[base + W_VERSION]!,
      expiresIn: table[base + W_EXPIRY]! - now,
    };
    // As lookup's readers: whole if nothing was written meanwhile, or only a refresh that leaves the key alone.
    if (readWasWhole(s, Atomics.load(table, base + W_SEQ))) out.push(entry);
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
