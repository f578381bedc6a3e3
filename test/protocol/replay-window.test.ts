import t from 'tap';
import {
  REPLAY_DUPLICATE,
  REPLAY_OUT_OF_WINDOW,
  REPLAY_WINDOW,
  REPLAY_WINDOW_BYTES,
  REPLAY_WINDOW_WORDS,
  replayCheck,
  replayCurrent,
  replayInit,
  replayMark,
  replayUpdate,
} from '../../src/shared/protocol/replay-window';

/** A window at a non-zero offset inside a larger shared view, with guard words around it. */
function freshWindow(): { v: Int32Array; o: number } {
  const v = new Int32Array(REPLAY_WINDOW_WORDS + 10).fill(0x5a5a5a5a);
  const o = 5;
  replayInit(v, o);
  return { v, o };
}

/** check-then-update, as the data path does. */
function receive(v: Int32Array, o: number, c: number | bigint): boolean {
  return replayCheck(v, o, c) && replayUpdate(v, o, c) >= 0;
}

t.test('layout constants', async (t) => {
  t.equal(REPLAY_WINDOW, 1024);
  t.equal(REPLAY_WINDOW_WORDS, 4 + 1024 / 32);
  t.equal(REPLAY_WINDOW_BYTES, REPLAY_WINDOW_WORDS * 4);
});

t.test('state lives only in the view, between the guard words', async (t) => {
  const { v, o } = freshWindow();
  t.ok(receive(v, o, 5000));
  t.ok(receive(v, o, 4500));
  t.equal(v[o - 1], 0x5a5a5a5a);
  t.equal(v[o + REPLAY_WINDOW_WORDS], 0x5a5a5a5a);
  // A second view of the same memory (another process mapping it) sees the same window.
  const other = new Uint32Array(v.buffer);
  t.equal(replayCurrent(other, o), 5000);
  t.notOk(replayCheck(other, o, 4500));
  t.ok(replayCheck(other, o, 4501));
});

t.test('handshake marks 1 and 2, data starts at 3 (in order)', async (t) => {
  const { v, o } = freshWindow();
  replayMark(v, o, 1);
  replayMark(v, o, 2);
  t.equal(replayCurrent(v, o), 2);
  t.notOk(replayCheck(v, o, 1));
  t.notOk(replayCheck(v, o, 2));
  for (let c = 3; c < 3000; c++) t.equal(replayUpdate(v, o, c), 0, `in order ${c}`) || t.end();
  t.equal(replayCurrent(v, o), 2999);
});

t.test('duplicates are rejected', async (t) => {
  const { v, o } = freshWindow();
  t.ok(receive(v, o, 3));
  t.notOk(replayCheck(v, o, 3), 'current itself');
  t.equal(replayUpdate(v, o, 3), REPLAY_DUPLICATE);
  t.ok(receive(v, o, 10));
  t.ok(receive(v, o, 7), 'a skipped counter arrives late');
  t.notOk(replayCheck(v, o, 7), 'late counter not accepted twice');
  t.equal(replayUpdate(v, o, 7), REPLAY_DUPLICATE);
  t.ok(receive(v, o, 8));
  t.equal(replayCurrent(v, o), 10, 'late packets do not move current');
});

t.test('counter zero is accepted exactly once, only in the first window', async (t) => {
  const { v, o } = freshWindow();
  t.ok(replayCheck(v, o, 0), 'zero passes check although its slot is pre-marked');
  t.equal(replayUpdate(v, o, 0), 0);
  t.notOk(replayCheck(v, o, 0), 'second zero rejected');
  t.equal(replayUpdate(v, o, 0), REPLAY_DUPLICATE);

  const w2 = freshWindow();
  t.ok(receive(w2.v, w2.o, 500));
  t.ok(receive(w2.v, w2.o, 0), 'zero after other traffic, still within the first window');
  t.notOk(receive(w2.v, w2.o, 0));

  const w3 = freshWindow();
  t.ok(receive(w3.v, w3.o, 5000));
  t.equal(replayUpdate(w3.v, w3.o, 0), REPLAY_OUT_OF_WINDOW, 'zero once current is past the first window');
});

t.test('window edges once current >= 1024', async (t) => {
  const { v, o } = freshWindow();
  replayMark(v, o, 1);
  replayMark(v, o, 2);
  t.ok(receive(v, o, 3000));
  // Inside the window: (current - 1024, current].
  t.ok(replayCheck(v, o, 3000 - 1023), 'oldest slot inside the window');
  t.notOk(replayCheck(v, o, 3000 - 1024), 'exactly one window back is outside');
  t.equal(replayUpdate(v, o, 3000 - 1024), REPLAY_OUT_OF_WINDOW);
  t.equal(replayUpdate(v, o, 100), REPLAY_OUT_OF_WINDOW, 'far behind');
  t.equal(replayUpdate(v, o, 3000 - 1023), 0);
  t.equal(replayUpdate(v, o, 3000 - 1023), REPLAY_DUPLICATE);
  t.ok(receive(v, o, 2999));
});

t.test('advance by less than a window clears skipped slots', async (t) => {
  const { v, o } = freshWindow();
  for (let c = 1; c <= 1500; c++) replayUpdate(v, o, c);
  // Slot of 1600 is shared with 576 (1600 - 1024), which was received; jumping to 1700 must clear it.
  t.equal(replayUpdate(v, o, 1700), 0);
  t.ok(replayCheck(v, o, 1600), 'skipped counter can still arrive');
  t.ok(receive(v, o, 1600));
  t.notOk(replayCheck(v, o, 1500), 'received before the jump, still in the window');
  t.notOk(replayCheck(v, o, 676), 'outside the window now');
});

t.test('advance by >= a window resets the bitmap and counts losses like Go', async (t) => {
  const { v, o } = freshWindow();
  replayMark(v, o, 1);
  replayMark(v, o, 2);
  t.equal(replayUpdate(v, o, 2 + 1024 + 10), 10, 'lost = jump - window');
  t.equal(replayCurrent(v, o), 1036);
  t.ok(replayCheck(v, o, 1035), 'cleared slot in the new window');
  t.notOk(replayCheck(v, o, 1036));

  const fresh = freshWindow();
  t.equal(replayUpdate(fresh.v, fresh.o, 1024), 1, 'from current 0: Go adds one');
  t.equal(replayUpdate(fresh.v, fresh.o, 1_000_000), 1_000_000 - 1024 - 1024);

  // In-order traffic beyond the first window reports a loss when the slot it reuses was never filled.
  const w = freshWindow();
  replayMark(w.v, w.o, 1);
  replayMark(w.v, w.o, 2);
  for (let c = 3; c <= 1030; c++) if (c !== 10) replayUpdate(w.v, w.o, c);
  let lost = 0;
  for (let c = 1031; c <= 1040; c++) lost += replayUpdate(w.v, w.o, c);
  t.equal(lost, 1, 'counter 10 was never received');
});

t.test('big counters: bigint, halves across 2^32, and the 2^53 guard', async (t) => {
  const { v, o } = freshWindow();
  const big = 0x1_0000_0000 + 5;
  t.ok(receive(v, o, BigInt(big)));
  t.equal(replayCurrent(v, o), big);
  t.ok(receive(v, o, big + 1));
  t.ok(receive(v, o, big - 100));
  t.notOk(receive(v, o, BigInt(big - 100)));
  t.ok(replayCheck(v, o, 2n ** 64n - 1n), 'a huge counter is "ahead" for check');
  t.equal(replayUpdate(v, o, 2n ** 60n), REPLAY_OUT_OF_WINDOW, 'but never recorded');
  t.equal(replayCurrent(v, o), big + 1);
});

t.test('random traffic matches a straightforward model of the rules', async (t) => {
  // Model: accept c iff not seen before and c > current - 1024 (or within the first window); same as Go for
  // counters >= 1 once counters 1, 2 are marked.
  const { v, o } = freshWindow();
  replayMark(v, o, 1);
  replayMark(v, o, 2);
  const seen = new Set<number>([0, 1, 2]);
  let current = 2;
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let mismatches = 0;
  for (let n = 0; n < 20000; n++) {
    const c = Math.max(1, Math.floor(current + 40 - rnd() * 1200));
    const expect = !seen.has(c) && (c > current || c > current - REPLAY_WINDOW);
    const got = receive(v, o, c);
    if (got !== expect) mismatches++;
    if (got) {
      seen.add(c);
      current = Math.max(current, c);
    }
  }
  t.equal(mismatches, 0);
});
