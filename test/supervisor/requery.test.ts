/** ReQueryEvery (Go's hostmap.go): a host's lighthouses are asked again each time 5000 more packets went to it. */
import t from 'tap';
import type { HostInfo } from '../../src/supervisor/hostmap';
import { Requery, REQUERY_EVERY } from '../../src/supervisor/requery';

t.test('a query each time a tunnel sent another REQUERY_EVERY packets, none in between', async (t) => {
  const a = { vpnIp: 1 } as HostInfo;
  const b = { vpnIp: 2 } as HostInfo;
  const counters = new Map<HostInfo, number>([
    [a, 0],
    [b, 0],
  ]);
  const queries: number[] = [];
  const r = new Requery({ tunnels: () => counters.keys(), sendCounter: (h) => counters.get(h)!, query: (ip) => queries.push(ip) });
  t.same(r.check(), [], 'nothing sent: no query');
  counters.set(a, REQUERY_EVERY - 1);
  t.same(r.check(), [], 'one short of the step: no query');
  counters.set(a, REQUERY_EVERY);
  counters.set(b, 3 * REQUERY_EVERY + 7);
  t.same(r.check(), [1, 2], 'both crossed a multiple (b several at once: one query, as a periodic look can only do)');
  t.same(r.check(), [], 'no new packets: no query');
  counters.set(a, 2 * REQUERY_EVERY + 1);
  t.same(r.check(), [1], 'a crossed the next multiple');
  t.same(queries, [1, 2, 1]);
});
