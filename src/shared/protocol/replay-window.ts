/**
 * Nebula's per-tunnel replay window (nebula-spec §6.5; Go `Bits` with ReplayWindow = 1024), reproduced decision for
 * decision, including the lost/duplicate/out-of-window accounting behind the `network.packets.*` metrics.
 *
 * The state lives entirely in a caller-supplied Int32Array/Uint32Array at a word offset, because it is kept in a
 * shared-memory tunnel slot that several processes touch; this module holds no per-window JS state. Layout
 * (REPLAY_WINDOW_WORDS 32-bit words):
 *
 *   word 0      current, low 32 bits  (highest accepted counter)
 *   word 1      current, high 32 bits
 *   word 2      flags: bit 0 = "counter 0 seen" (Go `firstSeen`)
 *   word 3      reserved (keeps the bitmap 16-byte aligned)
 *   word 4..35  1024-bit bitmap; counter c lives at bit (c % 1024): word 4 + (c >> 5) % 32, bit c & 31
 *
 * Concurrency: check/update are plain reads and writes; callers sharing a window between processes must serialise
 * check+decrypt+update per window (the tunnel slot's lock).
 *
 * Counters are handled as JS numbers, exact up to 2^53 - 1. A bigint or number counter above that can still be
 * *checked* (it is simply "ahead"), but update() refuses it (returns REPLAY_OUT_OF_WINDOW): a peer would need
 * centuries of traffic to get there, and refusing keeps the arithmetic exact. Go's uint64 arithmetic only differs
 * from this in that unreachable range.
 */

export const REPLAY_WINDOW = 1024;
const BITMAP_WORDS = REPLAY_WINDOW / 32;
const W_CUR_LO = 0;
const W_CUR_HI = 1;
const W_FLAGS = 2;
const W_BITMAP = 4;
const FLAG_ZERO_SEEN = 1;
const TWO_32 = 4294967296;

/** Size of one window in 32-bit words (and bytes). */
export const REPLAY_WINDOW_WORDS = W_BITMAP + BITMAP_WORDS;
export const REPLAY_WINDOW_BYTES = REPLAY_WINDOW_WORDS * 4;

export type ReplayView = Int32Array | Uint32Array;

/** update() results below zero: the packet must be dropped. */
export const REPLAY_DUPLICATE = -1;
export const REPLAY_OUT_OF_WINDOW = -2;

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

function toNumber(counter: number | bigint): number {
  return typeof counter === 'number' ? counter : counter > MAX_SAFE_BIG ? Infinity : Number(counter);
}

function getCurrent(v: ReplayView, o: number): number {
  return (v[o + W_CUR_HI]! >>> 0) * TWO_32 + (v[o + W_CUR_LO]! >>> 0);
}

function setCurrent(v: ReplayView, o: number, c: number): void {
  v[o + W_CUR_LO] = c >>> 0 | 0;
  v[o + W_CUR_HI] = Math.floor(c / TWO_32) | 0;
}

function getBit(v: ReplayView, o: number, c: number): boolean {
  const slot = c % REPLAY_WINDOW;
  return ((v[o + W_BITMAP + (slot >>> 5)]! >>> (slot & 31)) & 1) === 1;
}

function setBit(v: ReplayView, o: number, c: number): void {
  const slot = c % REPLAY_WINDOW;
  const i = o + W_BITMAP + (slot >>> 5);
  v[i] = v[i]! | (1 << (slot & 31));
}

function clearBit(v: ReplayView, o: number, c: number): void {
  const slot = c % REPLAY_WINDOW;
  const i = o + W_BITMAP + (slot >>> 5);
  v[i] = v[i]! & ~(1 << (slot & 31));
}

/**
 * Resets a window to the state of a new tunnel: current 0, zero not yet seen, only slot 0 marked
 * (nebula-spec §6.5: "created with counter 0 pre-marked"). The handshake then marks counters 1 and 2.
 */
export function replayInit(v: ReplayView, offset: number): void {
  v.fill(0, offset, offset + REPLAY_WINDOW_WORDS);
  setBit(v, offset, 0);
}

/** The highest accepted counter. */
export function replayCurrent(v: ReplayView, offset: number): number {
  return getCurrent(v, offset);
}

/** Before decryption: may this counter be new? (Go `Bits.Check`.) Never modifies the window. */
export function replayCheck(v: ReplayView, offset: number, counter: number | bigint): boolean {
  const i = toNumber(counter);
  const current = getCurrent(v, offset);
  if (i > current) return true;
  if (i === 0 && (v[offset + W_FLAGS]! & FLAG_ZERO_SEEN) === 0 && current < REPLAY_WINDOW) return true;
  // Go computes current-1024 in uint64, so this branch only applies once current >= 1024.
  if (current >= REPLAY_WINDOW && i > current - REPLAY_WINDOW) return !getBit(v, offset, i);
  if (i < REPLAY_WINDOW) return !getBit(v, offset, i);
  return false;
}

/**
 * After successful decryption: record the counter (Go `Bits.Update`, with its metric accounting). Returns the number of packets to add to `network.packets.lost`
 * (>= 0) when accepted, or REPLAY_DUPLICATE / REPLAY_OUT_OF_WINDOW (for `network.packets.duplicate` /
 * `network.packets.out_of_window`) when the packet must be dropped.
 */
export function replayUpdate(v: ReplayView, offset: number, counter: number | bigint): number {
  const i = toNumber(counter);
  if (!Number.isSafeInteger(i) || i < 0) return REPLAY_OUT_OF_WINDOW;
  const current = getCurrent(v, offset);

  // The next counter: advance by one. A slot still unset one window back was a packet that never arrived.
  if (i === current + 1) {
    const lost = i > REPLAY_WINDOW && !getBit(v, offset, i) ? 1 : 0;
    setBit(v, offset, i);
    setCurrent(v, offset, i);
    return lost;
  }

  // Ahead by less than a window: clear the slots skipped over so those packets can still arrive, then advance.
  if (i > current && i < current + REPLAY_WINDOW) {
    for (let n = current + 1; n < i; n++) clearBit(v, offset, n);
    setBit(v, offset, i);
    setCurrent(v, offset, i);
    return 0;
  }

  // Ahead by a window or more: start a fresh bitmap.
  if (i >= current + REPLAY_WINDOW) {
    let lost = Math.max(0, i - current - REPLAY_WINDOW);
    if (current === 0) lost++;
    v.fill(0, offset + W_BITMAP, offset + W_BITMAP + BITMAP_WORDS);
    setBit(v, offset, i);
    setCurrent(v, offset, i);
    return lost;
  }

  // Counter 0 is accepted once while still in the first window.
  const flags = v[offset + W_FLAGS]!;
  if (i === 0 && (flags & FLAG_ZERO_SEEN) === 0 && current < REPLAY_WINDOW) {
    v[offset + W_FLAGS] = flags | FLAG_ZERO_SEEN;
    setBit(v, offset, i);
    return 0;
  }

  // Behind current but inside the window: accept once, without moving current.
  const inWindow = current >= REPLAY_WINDOW ? i > current - REPLAY_WINDOW : i < REPLAY_WINDOW;
  if (inWindow && i <= current) {
    if (i === current || getBit(v, offset, i)) return REPLAY_DUPLICATE;
    setBit(v, offset, i);
    return 0;
  }

  return REPLAY_OUT_OF_WINDOW;
}

/** Convenience for the handshake: mark a counter (1 or 2) as used; same as update() ignoring the result. */
export function replayMark(v: ReplayView, offset: number, counter: number): void {
  replayUpdate(v, offset, counter);
}
