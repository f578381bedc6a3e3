/**
 * One conntrack entry in the shared Int32Array (conntrack.ts is the table over it): its words, flags and seqlock
 * bits, the flow key it stores and the shared clock its expiry is on.
 *
 * Entry layout (CONNTRACK_WORDS = 16 int32 words, one 64-byte cache line):
 *   0 state: 0 empty, 1 live, 2 deleted (tombstone keeps probe chains intact)
 *   1 local IP (IPv6: last word of the address)   2 remote IP (IPv6: last word)   3 localPort << 16 | remotePort
 *   4 proto | fragment << 8 | incoming << 9 | ipv6 << 10      5 rules version the entry was allowed under
 *   6 expiry, seconds since EPOCH_BASE           7 seqlock: version << 16 | owner (owner 0 = not being written)
 *   8..10 IPv6 only: local address words 0..2    11..13 IPv6 only: remote address words 0..2    14, 15 unused
 *
 * The family bit is part of the key (word 4), so an IPv4 and an IPv6 flow never match each other; an IPv4 key is
 * compared on words 1..4 only (what it was before IPv6), an IPv6 key on those and words 8..13.
 */

const EPOCH_BASE = 1_700_000_000;

/** Seconds on the shared clock (wall clock: every process agrees on it, unlike performance.now()). */
export function conntrackNow(): number {
  return Math.floor(Date.now() / 1000) - EPOCH_BASE;
}

export const W_STATE = 0;
export const W_LOCAL = 1;
export const W_REMOTE = 2;
export const W_PORTS = 3;
export const W_PROTO = 4;
export const W_VERSION = 5;
export const W_EXPIRY = 6;
export const W_SEQ = 7;
/** IPv6 address words 0..2 (word 3 is in W_LOCAL / W_REMOTE). */
export const W_LOCAL6 = 8;
export const W_REMOTE6 = 11;

/** Word 4: protocol byte, then flags. KEY_BITS are the ones that belong to the flow key. */
export const F_FRAGMENT = 0x100;
export const F_INCOMING = 0x200;
export const F_IPV6 = 0x400;
export const KEY_BITS = 0xff | F_FRAGMENT | F_IPV6;

export const EMPTY = 0;
export const LIVE = 1;
export const DELETED = 2;

/** The low 16 bits of the seqlock word: who holds the entry (0 = nobody) and, in bit 15, that it is a refresh. */
export const OWNER_MASK = 0xffff;
export const OWNER_ID_MASK = 0x7fff;
/**
 * Set while the holder only refreshes (expiry, rules version): the key fields do not change, so a reader may use
 * them meanwhile, whatever happens to the holder (a writer preempted mid-refresh does not make a reader miss).
 */
export const REFRESHING = 0x8000;

/** A flow as the firewall sees it: the FirewallPacket fields (firewall/packet.ts). */
export interface FlowKey {
  /** 6: local6 / remote6 hold the addresses and localIp / remoteIp their last words. 4: local6 / remote6 unread. */
  version: 4 | 6;
  localIp: number;
  remoteIp: number;
  localPort: number;
  remotePort: number;
  proto: number;
  fragment: boolean;
  readonly local6: Uint32Array;
  readonly remote6: Uint32Array;
}

/** Word 4's key bits for `k`. */
export function keyBits(k: FlowKey): number {
  return k.proto | (k.fragment ? F_FRAGMENT : 0) | (k.version === 6 ? F_IPV6 : 0);
}

/**
 * Whether what was read between two loads of the seqlock word (`before`, `after`) is whole: nothing was written
 * meanwhile, or the only write since is a refresh still under way (same version: no write completed; a refresh
 * leaves the key alone, and old or new expiry / rules version are both right).
 */
export function readWasWhole(before: number, after: number): boolean {
  return after === before || ((after & REFRESHING) !== 0 && (after & ~OWNER_MASK) === (before & ~OWNER_MASK));
}
