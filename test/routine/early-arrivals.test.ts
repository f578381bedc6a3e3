import t from 'tap';
import { EARLY_MAX, EARLY_WAIT_MS, EarlyArrivals } from '../../src/routine/early-arrivals';

const sa = Buffer.alloc(16, 7);

t.test('held datagrams are copies, returned by index in arrival order', async (t) => {
  const e = new EarlyArrivals();
  const buf = Buffer.from('abcdef');
  t.ok(e.hold(1, buf, 3, sa, 1000));
  t.ok(e.hold(2, buf, 4, sa, 1001));
  t.ok(e.hold(1, buf, 5, sa, 1002));
  buf.fill(0); // the receive buffer is reused for the next packet
  const one = e.takeFor(1);
  t.same(one.map((x) => x.data.toString()), ['abc', 'abcde']);
  t.ok(one[0]!.sockaddr.equals(sa));
  t.equal(e.size, 1);
  t.same(e.takeFor(9), []);
});

t.test('bounded: beyond EARLY_MAX the caller is told it was not held', async (t) => {
  const e = new EarlyArrivals();
  for (let i = 0; i < EARLY_MAX; i++) t.ok(e.hold(i, Buffer.alloc(1), 1, sa, 0));
  t.notOk(e.hold(999, Buffer.alloc(1), 1, sa, 0));
  t.equal(e.size, EARLY_MAX);
});

t.test('what waited EARLY_WAIT_MS expires, oldest first; younger ones stay', async (t) => {
  const e = new EarlyArrivals();
  e.hold(1, Buffer.alloc(1), 1, sa, 1000);
  e.hold(2, Buffer.alloc(1), 1, sa, 1100);
  t.same(e.expire(1000 + EARLY_WAIT_MS - 1), []);
  t.same(e.expire(1000 + EARLY_WAIT_MS).map((x) => x.localIndex), [1]);
  t.equal(e.size, 1);
  t.same(e.expire(1100 + EARLY_WAIT_MS).map((x) => x.localIndex), [2]);
});
