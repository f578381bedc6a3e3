/**
 * A routine whose poll() fails ends and is respawned; it never spins on the error. The NEBULA_TS_TEST_POLL_FAIL_ONCE
 * hook (src/shared/test-hooks.ts) makes the first routine data path that finds the marker file delete it and have
 * its poll() fail with EINVAL: that routine must log the failure, exit with code 70, and be respawned onto the same
 * fds by the supervisor, after which traffic flows.
 *
 * The failed routine dies while the node starts, before status can be asked for its pid, so every process of the
 * node records its pid and routine index through a preload (NODE_OPTIONS --require, inherited by the routines the
 * supervisor forks): the test's own instrument, not the product's.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prereqs } from '../helpers/prereq';
import { alive, childrenOf, linesMatching, newMesh, status, until } from './helpers';

const A = '192.168.100.1';
const B = '192.168.100.2';

/** `pid routine` lines written by the preload, one per process start ("-" for the supervisor). */
function spawnsOf(file: string): Array<{ pid: number; routine: string }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [pid, routine] = l.split(' ');
      return { pid: Number(pid), routine: routine! };
    });
}

t.test('a routine whose poll() fails exits with code 70, is respawned once, and traffic flows', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-poll-fail-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const marker = path.join(tmp, 'poll-fail.marker');
  writeFileSync(marker, '');
  const pidLog = path.join(tmp, 'pids.log');
  const preload = path.join(tmp, 'record-pid.js');
  writeFileSync(
    preload,
    // Worker threads run preloads too: record processes only.
    `if (require('node:worker_threads').isMainThread) require('node:fs').appendFileSync(${JSON.stringify(pidLog)}, process.pid + ' ' + (process.env.NEBULA_TS_ROUTINE ?? '-') + '\\n');\n`,
  );

  const mesh = await newMesh(t);
  await mesh.add({
    name: 'a',
    kind: 'ts',
    overlayIp: A,
    routines: 2,
    env: {
      NEBULA_TS_TEST_POLL_FAIL_ONCE: marker,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require ${preload}`].filter(Boolean).join(' '),
    },
  });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: B });
  mesh.writeConfigs();
  const a = await mesh.start('a');
  await mesh.start('b');
  const supervisor = a.process!.pid!;

  // The respawn is the last step of the failure: once it is logged, the failure and the exit have happened.
  const respawnLine = await mesh.waitForOutput('a', /Routine exited, respawning/, 15_000);
  t.notOk(existsSync(marker), 'the marker file was consumed');

  const failed = linesMatching(mesh, 'a', /Routine data path failed/);
  t.equal(failed.length, 1, `one data path failure logged: ${failed.join(' | ')}`);
  t.match(failed[0] ?? '', /level=error/, 'at error level');
  t.match(failed[0] ?? '', /\bpoll\b/, 'naming poll');
  t.match(failed[0] ?? '', /EINVAL/, 'with EINVAL');
  const respawns = linesMatching(mesh, 'a', /Routine exited, respawning/);
  t.equal(respawns.length, 1, `one respawn logged: ${respawns.join(' | ')}`);
  t.match(respawnLine, /\bcode=70\b/, 'the routine exited with code 70');
  const routine = Number(/\broutine=(\d+)/.exec(respawnLine)?.[1]);
  t.ok(routine === 0 || routine === 1, `the respawn names the routine (${routine})`);
  t.match(failed[0] ?? '', new RegExp(`\\broutine=${routine}\\b`), 'the failure and the respawn are the same routine');

  const s = await until(
    `routine ${routine} of a respawned and running`,
    () => status(mesh, 'a'),
    (s) => s.routines.length === 2 && s.routines.every((r) => typeof r.pid === 'number'),
    10_000,
  );
  t.same(
    s.routines.map((r) => r.restarts),
    s.routines.map((r) => (r.routine === routine ? 1 : 0)),
    `only routine ${routine} restarted, once`,
  );
  const spawns = spawnsOf(pidLog);
  const ofRoutine = spawns.filter((x) => x.routine === String(routine));
  t.equal(ofRoutine.length, 2, `routine ${routine} was started twice: ${JSON.stringify(spawns)}`);
  const [first, second] = ofRoutine;
  t.notOk(alive(first!.pid), `the failed process (pid ${first!.pid}) is gone`);
  t.equal(s.routines[routine]!.pid, second!.pid, `status lists the respawned process (pid ${second!.pid})`);
  t.not(s.routines[routine]!.pid, first!.pid, 'the respawned routine is a new process');
  t.same(
    childrenOf(supervisor),
    s.routines.map((r) => r.pid).sort((x, y) => x - y),
    'the supervisor has exactly the two routines of status as children',
  );
  const supervisors = spawns.filter((x) => x.routine === '-');
  t.same(supervisors.map((x) => x.pid), [supervisor], 'the supervisor was started once');
  t.ok(alive(supervisor), 'and is still running');

  t.ok(await mesh.pingUntilReply('a', B, 15_000), 'a -> b: first reply');
  t.equal(await mesh.ping('a', B, 3, 2), 3, 'a -> b: 3/3');
  t.equal(await mesh.ping('b', A, 3, 2), 3, 'b -> a: 3/3');

  const after = await status(mesh, 'a');
  t.same(after.routines.map((r) => r.pid), s.routines.map((r) => r.pid), 'no further routine restarts while traffic flowed');
  t.equal(linesMatching(mesh, 'a', /Routine exited, respawning/).length, 1, 'still one respawn in the log');
});
