/**
 * The worker-thread entry of a routine's data path: maps the shared region, wraps the routine's fds as edges,
 * builds the Datapath and runs the poll loop. Everything the data path decides lives in datapath.ts and the files
 * it uses; this file only does the I/O plumbing.
 *
 * One thread, one loop: block in poll() on the UDP socket, the eventfd the routine's main thread rings when it has
 * posted control messages, and the inside fd; then drain each ready fd one batch at a time. Blocking koffi calls in
 * a worker keep the data path off the libuv threadpool and off the main thread's event loop, with no internal Node
 * APIs (platform-notes §2).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { RoutineSetup, RoutineToSupervisor, SupervisorToRoutine } from '../shared/ipc/messages';
import { unlinkSync } from 'node:fs';
import { EINTR, NativeError, POLLIN, pollFds, readFd } from '../shared/native/libc';
import { testHooks } from '../shared/test-hooks';
import { mapRegion } from '../shared/shm/region';
import { checkHeader, computeLayout, viewsOver, type RegionCapacities } from '../shared/state/layout';
import { Datapath } from './datapath';
import { FdInsideQueue, FdUnderlaySocket } from './fd-edges';

export interface DatapathInit {
  udpFd: number;
  /** -1 when the inside is disabled (no device: the routine answers pings to its own VPN IP itself). */
  insideFd: number;
  wakeFd: number;
  regionFd: number;
  capacities: RegionCapacities;
  setup: RoutineSetup;
}

/** struct pollfd { int fd; short events; short revents; }: 8 bytes each, revents at byte 6. */
const POLLFD_BYTES = 8;
const REVENTS = 6;
const UDP = 0;
const WAKE = 1;
const INSIDE = 2;

function run(port: NonNullable<typeof parentPort>, init: DatapathInit): void {
  const layout = computeLayout(init.capacities);
  const views = viewsOver(mapRegion(init.regionFd, layout.totalBytes).buffer, layout);
  checkHeader(views);
  const datapath = new Datapath({
    setup: init.setup,
    tunnelWords: views.tunnels,
    conntrackWords: views.conntrack,
    conntrackCapacity: layout.conntrack,
    counterView: views.counters,
    underlay: new FdUnderlaySocket(init.udpFd),
    inside: init.insideFd >= 0 ? new FdInsideQueue(init.insideFd) : null,
    supervisor: { post: (msg: RoutineToSupervisor) => port.postMessage(msg) },
    clock: Date.now,
  });

  const nfds = init.insideFd >= 0 ? 3 : 2;
  const pollBuf = Buffer.alloc(POLLFD_BYTES * nfds);
  const fds = [init.udpFd, init.wakeFd, init.insideFd];
  for (let i = 0; i < nfds; i++) {
    pollBuf.writeInt32LE(fds[i]!, i * POLLFD_BYTES);
    pollBuf.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4);
  }
  const ready = (i: number): boolean => pollBuf.readInt16LE(i * POLLFD_BYTES + REVENTS) !== 0;
  const eventBuf = Buffer.alloc(8);

  const drainControl = (): boolean => {
    for (;;) {
      const m = receiveMessageOnPort(port);
      if (m === undefined) return true;
      if (!datapath.control(m.message as SupervisorToRoutine)) return false;
    }
  };

  datapath.post({ type: 'log', level: 'info', msg: 'routine data path running', fields: { routine: init.setup.routine, tunnels: datapath.tunnelCount } });
  let pollCount = pollFailHookFired() ? POLL_COUNT_INVALID : nfds;
  for (;;) {
    const polled = pollFds(pollBuf, pollCount, datapath.pollTimeoutMs);
    pollCount = nfds;
    if (polled < 0) {
      if (polled === -EINTR) continue;
      // Anything else would fail again at once: end the routine (the worker's error ends the process, the
      // supervisor logs it and respawns the routine onto the same fds) rather than spin.
      throw new NativeError('poll', -polled, `routine ${init.setup.routine} data path`);
    }
    // Control first: a tunnelUp already waiting is installed before data that arrived in the same wake-up.
    if (ready(WAKE)) readFd(init.wakeFd, eventBuf, 8);
    if (!drainControl()) break;
    if (ready(UDP)) datapath.onUnderlayReadable();
    if (nfds > INSIDE && ready(INSIDE)) datapath.onInsideReadable();
    datapath.tick();
  }
  port.postMessage({ type: 'stopped' });
}

/** More fds than any process may have: poll() answers EINVAL (the test hook's way to make poll fail for real). */
const POLL_COUNT_INVALID = 0x7fffffff;

/** The poll-failure test hook fires once per marker file, in whichever routine gets to it first. */
function pollFailHookFired(): boolean {
  if (testHooks.pollFailOnceFile === '') return false;
  try {
    unlinkSync(testHooks.pollFailOnceFile);
    return true;
  } catch {
    return false;
  }
}


run(parentPort!, workerData as DatapathInit);
