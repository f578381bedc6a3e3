/**
 * The tunnel slots of the shared region (layout.ts), as one object every process uses: the supervisor resets a slot
 * for a new tunnel and reads its liveness marks; routines take send counters, check and update the replay window,
 * and set the marks. Whoever sends on a tunnel (any routine, or the supervisor for test/closeTunnel) takes its
 * counter here, so a counter value is handed out once across every process.
 */
import { replayCheck, replayCurrent, replayInit, replayMark, replayUpdate } from '../protocol/replay-window';
import { TS_IN_USE, TS_LOCK, TS_RECV_ERRORS, TS_REPLAY, TS_RX_MARK, TS_SEND_COUNTER, TS_TX_MARK, TUNNEL_SLOT_WORDS } from './layout';

/**
 * The last send counter handed out on one key. The shared counter is one 32-bit word; stopping short of 2^32 leaves
 * the top values unused so that no arithmetic near the end can wrap. Past it a tunnel sends nothing more on that key.
 */
export const SEND_COUNTER_LIMIT = 0xffffff00;

/** What `nextCounter` returns when the tunnel's counter space is spent. */
export const COUNTER_SPENT = -1;

/** The first counter a fresh tunnel's data uses is 3: 1 and 2 were the handshake's (nebula-spec §2.5). */
const FIRST_COUNTER_AFTER_HANDSHAKE = 2;

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
   * The next send counter of `slot`, or COUNTER_SPENT once SEND_COUNTER_LIMIT has been handed out. Compare-and-swap,
   * so a refused attempt changes nothing and the word never wraps, however many processes race on it.
   */
  nextCounter(slot: number): number {
    const w = slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER;
    const words = this.words;
    for (;;) {
      const current = Atomics.load(words, w);
      const value = current >>> 0;
      if (value >= SEND_COUNTER_LIMIT) return COUNTER_SPENT;
      if (Atomics.compareExchange(words, w, current, (value + 1) | 0) === current) return value + 1;
    }
  }

  /** The last counter handed out (for tests and status). */
  sendCounter(slot: number): number {
    return Atomics.load(this.words, slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER) >>> 0;
  }

  /** Before decryption: may `counter` be new on this tunnel? Does not modify the window. */
  replayCheck(slot: number, counter: number): boolean {
    const w = this.lock(slot);
    const fresh = replayCheck(this.words, w + TS_REPLAY, counter);
    this.unlock(w);
    return fresh;
  }

  /** The highest counter accepted so far. */
  replayCurrent(slot: number): number {
    const w = this.lock(slot);
    const current = replayCurrent(this.words, w + TS_REPLAY);
    this.unlock(w);
    return current;
  }

  /** After decryption: records `counter`; returns packets lost (>= 0) or REPLAY_DUPLICATE / REPLAY_OUT_OF_WINDOW. */
  replayUpdate(slot: number, counter: number): number {
    const w = this.lock(slot);
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
   * Resets a slot for a new tunnel: send counter 2 (the first packet carries 3), a fresh replay window with 1 and 2
   * already used by the handshake, liveness marks clear.
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
    Atomics.store(s, w + TS_SEND_COUNTER, counter | 0);
    Atomics.store(s, w + TS_IN_USE, 1);
  }

  release(slot: number): void {
    Atomics.store(this.words, slot * TUNNEL_SLOT_WORDS + TS_IN_USE, 0);
  }

  /** A routine died: free any slot lock it held (locks are never held across anything that can block). */
  releaseLocksOf(owner: number): void {
    for (let slot = 0; slot < this.capacity; slot++) Atomics.compareExchange(this.words, slot * TUNNEL_SLOT_WORDS + TS_LOCK, owner, 0);
  }

  // The lock guards the replay window only, held for a few dozen instructions; the supervisor clears it if the
  // holder dies (releaseLocksOf).
  private lock(slot: number): number {
    const w = slot * TUNNEL_SLOT_WORDS;
    while (Atomics.compareExchange(this.words, w + TS_LOCK, 0, this.owner) !== 0);
    return w;
  }

  private unlock(w: number): void {
    Atomics.store(this.words, w + TS_LOCK, 0);
  }
}
