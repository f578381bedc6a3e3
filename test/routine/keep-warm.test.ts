/**
 * The keep-warm rounds (src/routine/keep-warm.ts): when the routine sleeps short (a window before the next packet of a
 * regular flow is due, and only then), and that each round passes a packet both ways through the throwaway tunnel
 * in both ciphers, leaving no fd behind. Times are the loop's performance.now() values, given by the test.
 */
import { readdirSync } from 'node:fs';
import t from 'tap';
import { FdInsideQueue, FdUnderlaySocket } from '../../src/routine/fd-edges';
import { KEEP_WARM_EVERY_MS, KEEP_WARM_LEAD_MS, KEEP_WARM_MAX_GAP_MS, KeepWarm } from '../../src/routine/keep-warm';
import type { EdgeFactory } from '../../src/routine/warm-up';
import { testRoutineSetup } from '../../src/testbed/routine-setup';
import { ip } from './fixtures/memory-node';

const FD_EDGES: EdgeFactory = { inside: (fd) => new FdInsideQueue(fd), underlay: (fd) => new FdUnderlaySocket(fd) };
const IDLE = 1000; // the loop's own timeout when nothing else asks for less

function keepWarm(t: { teardown(fn: () => void): void }, cipher: 'aes' | 'chachapoly' = 'aes'): KeepWarm {
  const k = new KeepWarm(testRoutineSetup(ip('192.168.100.1'), { cipher, insideKind: 'tun' }), FD_EDGES);
  t.teardown(() => k.close());
  return k;
}

t.test('a flow with packets every 10 ms: short sleeps only in the window before the next one is due', async (t) => {
  const k = keepWarm(t);
  t.equal(k.timeoutMs(0, IDLE), IDLE, 'no flow yet: the loop sleeps as long as it likes');
  for (const at of [100, 110, 120, 130]) k.worked(at); // one gap of 100+ ms, then three of 10: not yet predicted
  t.equal(k.timeoutMs(131, IDLE), IDLE, 'the 4 last gaps still hold a long one (the flow was idle before)');
  k.worked(140); // the last four gaps are 10 ms: the next packet is due at 150
  t.equal(k.timeoutMs(141, IDLE), 150 - KEEP_WARM_LEAD_MS - 141, 'sleeps until the window opens');
  t.notOk(k.idle(141), 'no round before the window');
  t.equal(k.timeoutMs(150 - KEEP_WARM_LEAD_MS, IDLE), KEEP_WARM_EVERY_MS, 'in the window: short sleeps');
  t.ok(k.idle(150 - KEEP_WARM_LEAD_MS), 'a round at the window start');
  t.ok(k.idle(150 - KEEP_WARM_LEAD_MS + KEEP_WARM_EVERY_MS), 'and each short sleep after');
  t.equal(k.timeoutMs(3, 1), 1, "the loop's own shorter timeout wins");
  const end = 150 + KEEP_WARM_LEAD_MS / 2;
  t.notOk(k.idle(end), 'the window closes half a lead after the due time');
  t.equal(k.timeoutMs(end, IDLE), IDLE, 'then long sleeps again');
  t.equal(k.rounds, 2);
  t.equal(k.delivered, 2, 'each round: its packet reached the far inside');
});

t.test('a reply right after a request does not shorten the predicted period', async (t) => {
  const k = keepWarm(t);
  // A ping client: its request at 0, 10, 20 ...; the reply 0.4 ms after each.
  for (let at = 0; at <= 40; at += 10) {
    k.worked(at);
    k.worked(at + 0.4);
  }
  t.equal(k.timeoutMs(41, IDLE), Math.ceil(40.4 + 9.6 - KEEP_WARM_LEAD_MS - 41), 'the window is before the next request');
});

t.test('gaps longer than KEEP_WARM_MAX_GAP_MS: no window at all', async (t) => {
  const k = keepWarm(t);
  for (let i = 0; i < 6; i++) k.worked(i * (KEEP_WARM_MAX_GAP_MS + 1));
  const last = 5 * (KEEP_WARM_MAX_GAP_MS + 1);
  for (const at of [last + 1, last + KEEP_WARM_MAX_GAP_MS - KEEP_WARM_LEAD_MS, last + KEEP_WARM_MAX_GAP_MS]) {
    t.equal(k.timeoutMs(at, IDLE), IDLE, `at +${at - last} ms`);
    t.notOk(k.idle(at));
  }
  t.equal(k.rounds, 0);
});

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`${cipher}: every round's packet crosses the throwaway tunnel (ICMP, UDP, TCP, each way, in turn)`, async (t) => {
    const k = keepWarm(t, cipher);
    for (let at = 0; at <= 40; at += 10) k.worked(at);
    const start = 50 - KEEP_WARM_LEAD_MS;
    // Six rounds cover every (protocol, direction) pair; the window is 6 ms wide, so two windows are used.
    for (let i = 0; i < 3; i++) t.ok(k.idle(start + i * KEEP_WARM_EVERY_MS));
    for (let at = 50; at <= 90; at += 10) k.worked(at);
    for (let i = 0; i < 3; i++) t.ok(k.idle(100 - KEEP_WARM_LEAD_MS + i * KEEP_WARM_EVERY_MS));
    t.equal(k.rounds, 6);
    t.equal(k.delivered, 6);
  });
}

t.test('close() leaves no fd open', async (t) => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  const k = new KeepWarm(testRoutineSetup(ip('192.168.100.1')), FD_EDGES);
  t.ok(fds() > before, 'it holds sockets while it lives');
  k.close();
  t.equal(fds(), before);
});
