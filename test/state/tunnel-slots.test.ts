/**
 * The shared 64-bit send counter: handed out once across processes (also across the carry from the low into the
 * high word), refused at the limit, never wrapped, however many attempts keep coming after the end (a wrap would
 * reuse nonces under the same key).
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createRegion } from '../../src/shared/shm/region';
import { TS_SEND_COUNTER, TS_SEND_COUNTER_HI, TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { COUNTER_SPENT, SEND_COUNTER_LIMIT, TunnelSlots } from '../../src/shared/state/tunnel-slots';

interface Taken {
  taken: number[];
  refusedAfterEnd: number;
}

function race(start: number, max: number, extra: number): Promise<{ results: Taken[]; slots: TunnelSlots; words: Int32Array }> {
  const region = createRegion(TUNNEL_SLOT_WORDS * 4);
  const words = new Int32Array(region.buffer, 0, TUNNEL_SLOT_WORDS);
  const slots = new TunnelSlots(words, -1);
  slots.setSendCounter(0, start);
  const script = join(__dirname, 'fixtures', 'counter-taker.ts');
  return Promise.all(
    [0, 1].map(
      () =>
        new Promise<Taken>((resolve, reject) => {
          const kid = fork(script, [String(region.size), String(max), String(extra)], { stdio: ['ignore', 'inherit', 'inherit', region.fd, 'ipc'], serialization: 'advanced' });
          kid.on('message', (m) => resolve(m as Taken));
          kid.on('error', reject);
          kid.on('exit', (code) => code !== 0 && reject(new Error(`taker exited with ${code}`)));
        }),
    ),
  ).then((results) => ({ results, slots, words }));
}

const min = (a: number[]) => a.reduce((m, v) => Math.min(m, v));
const max = (a: number[]) => a.reduce((m, v) => Math.max(m, v));

t.test('the accessor refuses at the limit and the counter stays there', async (t) => {
  const words = new Int32Array(TUNNEL_SLOT_WORDS * 2);
  const slots = new TunnelSlots(words, -1);
  slots.reset(1);
  t.equal(slots.nextCounter(1), 3, 'a fresh tunnel starts after the handshake\'s 1 and 2');
  slots.setSendCounter(1, SEND_COUNTER_LIMIT - 2);
  t.equal(slots.nextCounter(1), SEND_COUNTER_LIMIT - 1);
  t.equal(slots.nextCounter(1), SEND_COUNTER_LIMIT);
  for (let i = 0; i < 1000; i++) if (slots.nextCounter(1) !== COUNTER_SPENT) t.fail(`attempt ${i} after the limit was not refused`);
  t.equal(slots.sendCounter(1), SEND_COUNTER_LIMIT, 'refused attempts did not move the counter');
  t.equal(slots.nextCounter(0), 1, 'other slots are independent');
});

t.test('two processes racing to the limit take every value exactly once and never wrap', async (t) => {
  const span = 200_000;
  const { results, slots } = await race(SEND_COUNTER_LIMIT - span, Infinity, 10_000);
  const all = results.flatMap((r) => r.taken);
  t.equal(all.length, span, 'together they took exactly the values left');
  t.equal(new Set(all).size, span, 'no value was handed out twice');
  t.equal(min(all), SEND_COUNTER_LIMIT - span + 1);
  t.equal(max(all), SEND_COUNTER_LIMIT);
  t.same(results.map((r) => r.refusedAfterEnd), [10_000, 10_000], 'every attempt past the end was refused');
  t.equal(slots.sendCounter(0), SEND_COUNTER_LIMIT, 'the shared counter stopped at the limit');
});

t.test('two processes racing across the carry into the high word never repeat a value', async (t) => {
  const start = 2 ** 32 - 100_000;
  const { results, slots, words } = await race(start, 100_000, 0);
  const all = results.flatMap((r) => r.taken);
  t.equal(all.length, 200_000);
  t.equal(new Set(all).size, all.length, 'no value was handed out twice');
  t.equal(min(all), start + 1);
  t.notOk(all.includes(2 ** 32), 'hi+1:0 is skipped by the carry');
  t.equal(max(all), start + 200_001, 'every other value up to the end was used');
  t.equal(Atomics.load(words, TS_SEND_COUNTER_HI), 1, 'the carry reached the high word once');
  t.equal(slots.sendCounter(0), start + 200_001);
});

t.test('a carry left half done by a dead process is finished without repeating values', async (t) => {
  const words = new Int32Array(TUNNEL_SLOT_WORDS);
  const slots = new TunnelSlots(words, -1);
  slots.setSendCounter(0, 2 ** 32 - 3);
  t.equal(slots.nextCounter(0), 2 ** 32 - 2);
  // The next taker got 2^32 - 1 by moving the low word to the carry marker, and died before bumping the high word.
  Atomics.store(words, TS_SEND_COUNTER, -1);
  t.equal(slots.nextCounter(0), COUNTER_SPENT, 'the others give up (bounded) instead of hanging');
  slots.releaseLocksOf(7);
  t.equal(slots.nextCounter(0), 2 ** 32 + 1, 'after the repair the counter moves on past the old values');
});
