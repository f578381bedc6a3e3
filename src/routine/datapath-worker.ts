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
import { C } from '../shared/state/counters';
import { checkHeader, computeLayout, viewsOver, type RegionCapacities } from '../shared/state/layout';
import { Datapath } from './datapath';
import { RoutineCounters } from './context';
import { FdUnderlaySocket, insideQueueFor } from './fd-edges';
import { offloadUnderlayFor, type OffloadSink } from './offload-underlay';
import { VnetInsideQueue } from './vnet-inside-queue';
import { KeepWarm } from './keep-warm';
import { warmUpDatapath, type EdgeFactory } from './warm-up';

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

/** How the data path's edges are built: the real ones, and the warm-up's over its own fds (warm-up.ts). */
const EDGES: EdgeFactory = {
  inside: (fd, counters) => insideQueueFor(fd, counters),
  underlay: (fd) => new FdUnderlaySocket(fd),
};

function run(port: NonNullable<typeof parentPort>, init: DatapathInit): void {
  const layout = computeLayout(init.capacities);
  const views = viewsOver(mapRegion(init.regionFd, layout.totalBytes).buffer, layout);
  checkHeader(views);
  // Before the real data path is built: V8 shapes its objects after what the warm-up taught it, so they never carry
  // the layouts the warm-up outgrew (a stale layout throws optimised code away at the first real packet).
  const warmUp = warmUpOnce(init.setup);
  const counters = new RoutineCounters(views.counters, init.setup.routine);
  // The fd says whether it carries virtio-net headers (tun.offloads); the offload edge counts into this routine's row.
  const inside = init.insideFd >= 0 ? EDGES.inside(init.insideFd, counters) : null;
  const datapath = new Datapath({
    setup: init.setup,
    tunnelWords: views.tunnels,
    conntrackWords: views.conntrack,
    conntrackCapacity: layout.conntrack,
    counterView: views.counters,
    // tun.offloads covers the underlay socket too: with the tun's offloads on, the socket gets UDP GRO and GSO.
    underlay: inside instanceof VnetInsideQueue ? offloadUnderlayFor(init.udpFd, offloadSink(port, counters, init.setup.routine)) : EDGES.underlay(init.udpFd),
    inside,
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

  if (warmUp.error !== undefined) datapath.post({ type: 'log', level: 'info', msg: 'Routine warm-up skipped', fields: { routine: init.setup.routine, error: warmUp.error } });
  datapath.post({ type: 'log', level: 'info', msg: 'routine data path running', fields: { routine: init.setup.routine, tunnels: datapath.tunnelCount, warmUpMs: warmUp.ms } });
  // The routine is ready when this loop runs, not when its process is: the supervisor waits for this before it puts
  // the address on the tun (node.ts), so the first packet never sits in the queue while the worker is still loading.
  datapath.post({ type: 'ready', routine: init.setup.routine });
  const keepWarm = keepWarmFor(init.setup, datapath);
  let pollCount = pollFailHookFired() ? POLL_COUNT_INVALID : nfds;
  // One wake-up; false once a shutdown arrived. A function rather than the loop's body, so V8 optimises it as it does
  // any function called often, instead of waiting for on-stack replacement of a loop that turns a few times a second.
  const wakeUp = (): boolean => {
    const polled = pollFds(pollBuf, pollCount, keepWarm ? keepWarm.timeoutMs(performance.now(), datapath.pollTimeoutMs) : datapath.pollTimeoutMs);
    pollCount = nfds;
    if (polled < 0) {
      if (polled === -EINTR) return true;
      // Anything else would fail again at once: end the routine (the worker's error ends the process, the
      // supervisor logs it and respawns the routine onto the same fds) rather than spin.
      throw new NativeError('poll', -polled, `routine ${init.setup.routine} data path`);
    }
    // Control first: a tunnelUp already waiting is installed before data that arrived in the same wake-up. The main
    // thread rings the eventfd after every message it posts, so the port is only looked at when it rang: a packet's
    // wake-up costs no MessagePort call (at a few packets per second every call into V8 or libuv runs cold).
    if (ready(WAKE)) {
      readFd(init.wakeFd, eventBuf, 8);
      if (!drainControl()) return false;
    }
    let packets = 0;
    if (ready(UDP)) packets += datapath.onUnderlayReadable();
    if (nfds > INSIDE && ready(INSIDE)) packets += datapath.onInsideReadable();
    if (keepWarm) {
      if (packets > 0) keepWarm.worked(performance.now());
      else if (polled === 0 && keepWarm.idle(performance.now())) counters.inc(C['routine.keep_warm.rounds']);
    }
    datapath.tick();
    return true;
  };
  while (wakeUp());
  port.postMessage({ type: 'stopped' });
}

/** The keep-warm rounds (keep-warm.ts) unless tun.keep_warm is off; a failure only costs latency (logged). */
function keepWarmFor(setup: DatapathInit['setup'], datapath: Datapath): KeepWarm | null {
  if (!setup.keepWarm) return null;
  try {
    return new KeepWarm(setup, EDGES);
  } catch (err) {
    datapath.post({ type: 'log', level: 'info', msg: 'Routine keep-warm off', fields: { routine: setup.routine, error: String(err) } });
    return null;
  }
}

/** Where the underlay offload edge counts (this routine's row) and warns (a log line through the supervisor). */
function offloadSink(port: NonNullable<typeof parentPort>, counters: RoutineCounters, routine: number): OffloadSink {
  return {
    add: (index, n) => counters.add(index, n),
    warn: (msg, fields) => port.postMessage({ type: 'log', level: 'warning', msg, fields: { routine, ...fields } } satisfies RoutineToSupervisor),
  };
}

/** The packet path's code compiled before the first real packet (warm-up.ts); a failure only costs speed. */
function warmUpOnce(setup: DatapathInit['setup']): { ms: number; error?: string } {
  const started = performance.now();
  let error: string | undefined;
  try {
    warmUpDatapath(setup, EDGES);
  } catch (err) {
    error = String(err);
  }
  return { ms: Math.round(performance.now() - started), error };
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
