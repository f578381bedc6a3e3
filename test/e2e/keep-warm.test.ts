/**
 * tun.keep_warm wired end to end (src/routine/keep-warm.ts, datapath-worker.ts): a ping stream 10 ms apart between
 * two nebula-ts nodes makes the node with keep-warm on run throwaway rounds (counted per routine as
 * routine.keep_warm.rounds) and the node with it off run none, while every ping is answered either way. The
 * prediction itself (windows, idle flows) is unit-tested in test/routine/keep-warm.test.ts.
 */
import t from 'tap';
import { prereqs } from '../helpers/prereq';
import { newMesh, status } from './helpers';

const PINGS = 100;

t.test('a slow regular flow: rounds on the node with keep_warm, none on the node without', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  await mesh.add({ name: 'warm', kind: 'ts', overlayIp: '192.168.100.1' });
  await mesh.add({ name: 'cold', kind: 'ts', overlayIp: '192.168.100.2', config: { tun: { keep_warm: false } } });
  mesh.writeConfigs();
  await mesh.start('cold');
  await mesh.start('warm');
  t.ok(await mesh.pingUntilReply('warm', '192.168.100.2', 15_000), 'tunnel up');
  const before = await Promise.all([status(mesh, 'warm'), status(mesh, 'cold')]);
  const out = await mesh.exec('warm', 'ping', ['-c', String(PINGS), '-i', '0.01', '-W', '2', '192.168.100.2'], 60_000);
  t.match(out, new RegExp(`${PINGS} packets transmitted, ${PINGS} received`), 'every ping answered');
  const after = await Promise.all([status(mesh, 'warm'), status(mesh, 'cold')]);
  const rounds = (i: number): number => after[i]!.counters['routine.keep_warm.rounds']! - before[i]!.counters['routine.keep_warm.rounds']!;
  t.ok(rounds(0) > 0, `the node with keep_warm ran throwaway rounds (${rounds(0)})`);
  t.ok(rounds(0) <= 4 * PINGS, `at most a few per gap between packets (${rounds(0)} for ${PINGS} pings)`);
  t.equal(after[1]!.counters['routine.keep_warm.rounds'], 0, 'the node with keep_warm: false ran none');
});
