/**
 * The shared send counter: handed out once across processes, refused at the limit, never wrapped, however many
 * attempts keep coming after the end (a wrap would reuse nonces under the same key).
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createRegion } from '../../src/shared/shm/region';
import { TS_SEND_COUNTER, TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { COUNTER_SPENT, SEND_COUNTER_LIMIT, TunnelSlots } from '../../src/shared/state/tunnel-slots';

t.test('the accessor refuses at the limit and the word stays there', async (t) => {
  const words = new Int32Array(TUNNEL_SLOT_WORDS * 2);
  const slots = new TunnelSlots(words, -1);
  slots.reset(1);
  t.equal(slots.nextCounter(1), 3, 'a fresh tunnel starts after the handshake\'s 1 and 2');
  Atomics.store(words, TUNNEL_SLOT_WORDS + TS_SEND_COUNTER, (SEND_COUNTER_LIMIT - 2) | 0);
  t.equal(slots.nextCounter(1), SEND_COUNTER_LIMIT - 1);
  t.equal(slots.nextCounter(1), SEND_COUNTER_LIMIT);
  for (let i = 0; i < 1000; i++) if (slots.nextCounter(1) !== COUNTER_SPENT) t.fail(`attempt ${i} after the limit was not refused`);
  t.equal(slots.sendCounter(1), SEND_COUNTER_LIMIT, 'refused attempts did not move the counter towards a wrap');
  t.equal(slots.nextCounter(0), 1, 'other slots are independent');
});

t.test('two processes racing to the limit take every value exactly once and never wrap', async (t) => {
  const region = createRegion(TUNNEL_SLOT_WORDS * 4);
  const words = new Int32Array(region.buffer, 0, TUNNEL_SLOT_WORDS);
  const span = 200_000;
  Atomics.store(words, TS_SEND_COUNTER, (SEND_COUNTER_LIMIT - span) | 0);
  const script = join(__dirname, 'fixtures', 'counter-taker.ts');
  const results = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<{ taken: number[]; refusedAfterEnd: number }>((resolve, reject) => {
          const kid = fork(script, [String(region.size), '10000'], { stdio: ['ignore', 'inherit', 'inherit', region.fd, 'ipc'], serialization: 'advanced' });
          kid.on('message', (m) => resolve(m as { taken: number[]; refusedAfterEnd: number }));
          kid.on('error', reject);
          kid.on('exit', (code) => code !== 0 && reject(new Error(`taker exited with ${code}`)));
        }),
    ),
  );
  const all = results.flatMap((r) => r.taken);
  t.equal(all.length, span, 'together they took exactly the values left');
  t.equal(new Set(all).size, span, 'no value was handed out twice');
  t.equal(all.reduce((m, v) => Math.min(m, v)), SEND_COUNTER_LIMIT - span + 1);
  t.equal(all.reduce((m, v) => Math.max(m, v)), SEND_COUNTER_LIMIT);
  t.same(results.map((r) => r.refusedAfterEnd), [10000, 10000], 'every attempt past the end was refused');
  t.equal(Atomics.load(words, TS_SEND_COUNTER) >>> 0, SEND_COUNTER_LIMIT, 'the shared word never wrapped');
});
