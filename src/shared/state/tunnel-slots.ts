/**
 * The tunnel slots of the shared region (layout.ts), as one object every process uses: the supervisor resets a slot
 * for a new tunnel and reads its liveness marks and send counter; routines take send counters, check and update the
 * replay window, and set the marks. Whoever sends on a tunnel (any routine, or the supervisor for test/closeTunnel)
 * takes its counter here, so a counter value is handed out once across every process.
 *
 * No wait here is unbounded: a spin that exceeds SPIN_LIMIT gives up (the caller drops that one packet and counts
 * it) instead of hanging on a holder that was stopped; a holder that died is cleaned up by the supervisor.
 */
import { replayCheck, replayCurrent, replayInit, replayMark, replayUpdate } from '../protocol/replay-window';
import { TS_IN_USE, TS_LOCK, TS_RECV_ERRORS, TS_REPLAY, TS_RX_MARK, TS_SEND_COUNTER, TS_SEND_COUNTER_HI, TS_TX_MARK, TUNNEL_SLOT_WORDS } from './layout';

const TWO_32 = 0x100000000;

/**
 * The last send counter handed out on one key. The counter is 64 bits on the wire; here it stays below 2^53 so it
 * is exact as a JS number. A tunnel is re-keyed long before (REKEY_AFTER_MESSAGES in the supervisor); past this
 * limit it sends nothing more on that key.
 */
export const SEND_COUNTER_LIMIT = 2 ** 53 - 2 ** 20;

/** What `nextCounter` returns when the tunnel's counter space is spent (or, for one packet, when it is contended past reason). */
export const COUNTER_SPENT = -1;

/** What the replay accessors return when the slot's lock could not be taken in SPIN_LIMIT tries. */
export const SLOT_BUSY = -3;

/** The first counter a fresh tunnel's data uses is 3: 1 and 2 were the handshake's (nebula-spec §2.5). */
const FIRST_COUNTER_AFTER_HANDSHAKE = 2;

/**
 * Low word value that marks a carry in progress: the taker that moved the low word to it owns the carry, bumps the
 * high word, then resets the low word to 0. Others wait for that (two stores) or, past SPIN_LIMIT, give up.
 */
const CARRY = 0xffffffff;

/** Spins before a wait is abandoned: far longer than any legitimate hold (a few dozen instructions). */
const SPIN_LIMIT = 1 << 20;

export class TunnelSlots {
  /**
   * @param words the tunnel-slot view of the region
   * @param owner this process's lock-owner tag (routine index + 1; 0 is "unlocked", so the supervisor uses -1)
   */
  constructor(
    private readonly words: Int32Array,
    private readonly owner: number,
  ) {}

  get capacity(): number {
    return this.words.length / TUNNEL_SLOT_WORDS;
  }

  /**
   * The next send counter of `slot`, or COUNTER_SPENT once SEND_COUNTER_LIMIT has been handed out. The low word is
   * taken by compare-and-swap, so a refused attempt changes nothing and no value is ever handed out twice, however
   * many processes race on it; the high word moves only during a carry (see CARRY).
   */
  nextCounter(slot: number): number {
    const words = this.words;
    const loAt = slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER;
    const hiAt = slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER_HI;
    for (let spins = 0; spins < SPIN_LIMIT; spins++) {
      const current = Atomics.load(words, loAt);
      const lo = current >>> 0;
      if (lo === CARRY) continue;
      const hi = Atomics.load(words, hiAt) >>> 0;
      const value = hi * TWO_32 + lo + 1;
      if (value > SEND_COUNTER_LIMIT) return COUNTER_SPENT;
      if (Atomics.compareExchange(words, loAt, current, (lo + 1) | 0) !== current) continue;
      if (lo + 1 === CARRY) {
        Atomics.store(words, hiAt, (hi + 1) | 0);
        Atomics.store(words, loAt, 0);
      }
      return value;
    }
    return COUNTER_SPENT;
  }

  /** The last counter handed out (the supervisor's re-key check, tests, status). */
  sendCounter(slot: number): number {
    const w = slot * TUNNEL_SLOT_WORDS;
    const lo = Atomics.load(this.words, w + TS_SEND_COUNTER) >>> 0;
    const hi = Atomics.load(this.words, w + TS_SEND_COUNTER_HI) >>> 0;
    return lo === CARRY ? (hi + 1) * TWO_32 : hi * TWO_32 + lo;
  }

  /**
   * A carry whose owner died between its two stores: finish it (the high word may be bumped a second time, which
   * only skips values, never repeats one). The supervisor calls this for every slot when a routine dies.
   */
  repairCarry(slot: number): void {
    const w = slot * TUNNEL_SLOT_WORDS;
    if (Atomics.load(this.words, w + TS_SEND_COUNTER) >>> 0 !== CARRY) return;
    Atomics.add(this.words, w + TS_SEND_COUNTER_HI, 1);
    Atomics.store(this.words, w + TS_SEND_COUNTER, 0);
  }

  /** Before decryption: 1 when `counter` may be new on this tunnel, 0 when not, SLOT_BUSY. Does not modify the window. */
  replayCheck(slot: number, counter: number): number {
    const w = this.lock(slot);
    if (w < 0) return SLOT_BUSY;
    const fresh = replayCheck(this.words, w + TS_REPLAY, counter);
    this.unlock(w);
    return fresh ? 1 : 0;
  }

  /** The highest counter accepted so far (SLOT_BUSY if the lock could not be taken). */
  replayCurrent(slot: number): number {
    const w = this.lock(slot);
    if (w < 0) return SLOT_BUSY;
    const current = replayCurrent(this.words, w + TS_REPLAY);
    this.unlock(w);
    return current;
  }

  /** After decryption: records `counter`; returns packets lost (>= 0), REPLAY_DUPLICATE / REPLAY_OUT_OF_WINDOW, or SLOT_BUSY. */
  replayUpdate(slot: number, counter: number): number {
    const w = this.lock(slot);
    if (w < 0) return SLOT_BUSY;
    const result = replayUpdate(this.words, w + TS_REPLAY, counter);
    this.unlock(w);
    return result;
  }

  markTx(slot: number): void {
    const w = slot * TUNNEL_SLOT_WORDS + TS_TX_MARK;
    if (this.words[w] === 0) Atomics.store(this.words, w, 1);
  }

  markRx(slot: number): void {
    const w = slot * TUNNEL_SLOT_WORDS + TS_RX_MARK;
    if (this.words[w] === 0) Atomics.store(this.words, w, 1);
  }

  rxMark(slot: number): boolean {
    return Atomics.load(this.words, slot * TUNNEL_SLOT_WORDS + TS_RX_MARK) !== 0;
  }

  txMark(slot: number): boolean {
    return Atomics.load(this.words, slot * TUNNEL_SLOT_WORDS + TS_TX_MARK) !== 0;
  }

  clearMarks(slot: number): void {
    Atomics.store(this.words, slot * TUNNEL_SLOT_WORDS + TS_RX_MARK, 0);
    Atomics.store(this.words, slot * TUNNEL_SLOT_WORDS + TS_TX_MARK, 0);
  }

  /**
   * Resets a slot for a new tunnel: send counter `counter` (2 by default: the first packet carries 3), a fresh replay
   * window with 1 and 2 already used by the handshake, liveness marks clear.
   */
  reset(slot: number, counter = FIRST_COUNTER_AFTER_HANDSHAKE): void {
    const w = slot * TUNNEL_SLOT_WORDS;
    const s = this.words;
    Atomics.store(s, w + TS_LOCK, 0);
    Atomics.store(s, w + TS_RX_MARK, 0);
    Atomics.store(s, w + TS_TX_MARK, 0);
    Atomics.store(s, w + TS_RECV_ERRORS, 0);
    replayInit(s, w + TS_REPLAY);
    replayMark(s, w + TS_REPLAY, 1);
    replayMark(s, w + TS_REPLAY, 2);
    this.setSendCounter(slot, counter);
    Atomics.store(s, w + TS_IN_USE, 1);
  }

  /** Sets the last-handed-out counter (slot reset; tests start a tunnel near a threshold). */
  setSendCounter(slot: number, counter: number): void {
    const w = slot * TUNNEL_SLOT_WORDS;
    Atomics.store(this.words, w + TS_SEND_COUNTER_HI, Math.floor(counter / TWO_32) | 0);
    Atomics.store(this.words, w + TS_SEND_COUNTER, counter >>> 0 === CARRY ? CARRY - 1 : counter | 0);
  }

  release(slot: number): void {
    Atomics.store(this.words, slot * TUNNEL_SLOT_WORDS + TS_IN_USE, 0);
  }

  /** A routine died: free any slot lock it held and finish any carry it left half done. */
  releaseLocksOf(owner: number): void {
    for (let slot = 0; slot < this.capacity; slot++) {
      Atomics.compareExchange(this.words, slot * TUNNEL_SLOT_WORDS + TS_LOCK, owner, 0);
      this.repairCarry(slot);
    }
  }

  // The lock guards the replay window only, held for a few dozen instructions; the supervisor clears it if the
  // holder dies (releaseLocksOf). Returns the slot's base word, or -1 after SPIN_LIMIT failed tries.
  private lock(slot: number): number {
    const w = slot * TUNNEL_SLOT_WORDS;
    for (let spins = 0; spins < SPIN_LIMIT; spins++) if (Atomics.compareExchange(this.words, w + TS_LOCK, 0, this.owner) === 0) return w;
    return -1;
  }

  private unlock(w: number): void {
    Atomics.store(this.words, w + TS_LOCK, 0);
  }
}
