/**
 * A routine process: the data plane for one queue (DESIGN.md). Forked by the supervisor with
 *   fd 3 = UDP socket i, fd 4 = inside queue i (or /dev/null when the inside is disabled), fd 5 = shared region,
 *   fd 6 = the worker's wake-up eventfd (nonblocking; the UDP socket and inside queue are nonblocking too), and the
 *   IPC channel.
 * The main thread only relays control messages; the packet loops run in one worker thread (datapath-worker.ts runs datapath.ts).
 * The routine exits when the IPC channel closes, so an orphan never keeps stealing traffic from the next run.
 * The main thread stays small: no koffi (its isolate would hold ~1.3 MiB more); it rings the eventfd with fs.writeSync.
 */
import { Worker } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import path from 'node:path';
import type { RoutineSetup, RoutineToSupervisor, SupervisorToRoutine } from '../shared/ipc/messages';
import type { RegionCapacities } from '../shared/state/layout';
import { testHooks } from '../shared/test-hooks';
import { exitOnUnexpectedErrors } from '../shared/fatal';
import type { DatapathInit } from './datapath-worker';
import { IpcBacklog } from './ipc-backlog';


const UDP_FD = 3;
const INSIDE_FD = 4;
const REGION_FD = 5;
const WAKE_FD = 6;

/** How often the count of datagrams shed for the channel's backlog goes to the data path's counters. */
const SHED_REPORT_MS = 1000;

// With a callback a send that races the channel closing reports EPIPE there instead of as an 'error' event.
const channel = new IpcBacklog((msg, taken) => {
  if (process.connected) process.send!(msg, undefined, {}, taken);
  else taken();
});

function send(msg: RoutineToSupervisor): void {
  channel.send(msg);
}

function start(setup: RoutineSetup, capacities: RegionCapacities): void {
  const wake = Buffer.alloc(8);
  wake.writeBigUInt64LE(1n);
  // An eventfd takes exactly one 8-byte write; it cannot fail short of the counter reaching 2^64 - 2.
  const ring = (): void => void writeSync(WAKE_FD, wake);
  const insideFd = setup.insideKind === 'disabled' ? -1 : INSIDE_FD;
  const init: DatapathInit = { udpFd: UDP_FD, insideFd, wakeFd: WAKE_FD, regionFd: REGION_FD, capacities, setup };
  const worker = new Worker(path.join(__dirname, 'datapath-worker.js'), { workerData: init });

  // A worker asleep in poll() holds up process.exit() until poll returns: ring it, so we leave at once. Ask the
  // worker to terminate first (terminate() stops its isolate at its next JS step, synchronously): ringing alone
  // races, as the worker could take the ring, go back into poll() and sleep a whole timeout before process.exit()
  // gets to stop it.
  const exit = (code: number): never => {
    void worker.terminate();
    ring();
    process.exit(code);
  };
  process.removeAllListeners('disconnect');
  process.on('disconnect', () => exit(0));
  process.removeAllListeners('SIGTERM');
  process.on('SIGTERM', () => exit(0));

  worker.on('message', (msg: RoutineToSupervisor | { type: 'stopped' }) => {
    if (msg.type === 'stopped') exit(0);
    else send(msg);
  });
  worker.on('error', (err) => {
    send({ type: 'log', level: 'error', msg: 'Routine data path failed', fields: { routine: setup.routine, error: String(err?.stack ?? err) } });
    exit(70);
  });
  worker.on('exit', (code) => process.exit(code));

  const forward = (msg: SupervisorToRoutine): void => {
    worker.postMessage(msg);
    // The worker sleeps in poll(); ring its eventfd so the message is handled now, not at the next timeout.
    ring();
  };
  process.on('message', (msg: SupervisorToRoutine) => {
    if (msg.type === 'tunnelUp' && testHooks.tunnelUpDelayMs > 0) setTimeout(() => forward(msg), testHooks.tunnelUpDelayMs);
    else forward(msg);
  });
  // The counters live in the worker's view of the shared region: it counts what was shed here.
  setInterval(() => {
    const count = channel.takeShed();
    if (count > 0) forward({ type: 'ipcShed', count });
  }, SHED_REPORT_MS).unref();
  // No 'ready' from here: the worker reports it once its poll loop serves the fds (the supervisor configures the
  // tunnel address only then, so a packet sent right after start is not left waiting for the worker to load).
}

function main(): void {
  // Reported to the supervisor's log while the channel is up (stderr otherwise); the supervisor respawns us.
  exitOnUnexpectedErrors((msg, error) => {
    if (process.connected) send({ type: 'log', level: 'error', msg, fields: { routine: Number(process.env.NEBULA_TS_ROUTINE ?? -1), error } });
    else process.stderr.write(`${msg}: ${error}\n`);
  });
  // No orphans: when the supervisor goes away (even SIGKILL), the channel closes and we leave.
  process.on('disconnect', () => process.exit(0));
  // Signals are the supervisor's business: it stops routines through IPC, in order.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGHUP', () => undefined);
  const onFirst = (msg: SupervisorToRoutine) => {
    if (msg.type !== 'setup') return;
    process.off('message', onFirst);
    start(msg.setup, msg.capacities);
  };
  process.on('message', onFirst);
}

main();
