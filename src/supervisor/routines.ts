/**
 * Spawns and keeps alive one routine process per queue. Every fd a routine needs was created by the supervisor,
 * which keeps its own copy for its whole life, so a respawned routine lands on the very same tun queue and UDP
 * socket (platform-notes §3): fd 3 = UDP socket, fd 4 = inside queue, fd 5 = shared region, fd 6 = the eventfd that
 * wakes the routine's data-path worker (the one fd made fresh at each spawn and not kept), then IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from '../shared/log';
import { EFD_CLOEXEC, EFD_NONBLOCK, close, eventfd, setNonBlocking } from '../shared/native/libc';
import type { RoutineSetup, RoutineToSupervisor, SupervisorToRoutine } from '../shared/ipc/messages';
import type { RegionCapacities } from '../shared/state/layout';

export interface RoutineFds {
  udp: number;
  /** -1 when the inside has no fd (disabled). */
  inside: number;
  region: number;
}

export interface RoutinePoolOptions {
  count: number;
  fds: (i: number) => RoutineFds;
  capacities: RegionCapacities;
  /** Built fresh at every (re)spawn so a respawned routine gets every current tunnel. */
  setup: (i: number) => RoutineSetup;
  onMessage: (msg: RoutineToSupervisor) => void;
  onDied: (i: number) => void;
  log: Logger;
}

interface Slot {
  child?: ChildProcess;
  ready: boolean;
  restarts: number;
  lastStart: number;
  respawnTimer?: NodeJS.Timeout;
}

const MAX_BACKOFF_MS = 5000;

/**
 * V8 flags of a routine process (its main thread and its data-path worker: V8 flags are per process). The data path
 * allocates next to nothing per packet (3 scavenges per 100k packets with the default young generation, 6 with
 * this), so V8's default growth of the semi-spaces to 16 MiB only keeps the garbage of start-up resident: 1 MiB
 * semi-spaces take ~5 MiB off each routine's RSS at no measurable cost in CPU per packet (docs/performance.md,
 * "Memory"). The supervisor caps its own young generation at run time (young-generation.ts).
 */
const ROUTINE_V8_FLAGS = ['--max-semi-space-size=1'];

export class RoutinePool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private readyWaiters: Array<() => void> = [];

  constructor(private readonly opts: RoutinePoolOptions) {
    for (let i = 0; i < opts.count; i++) this.slots.push({ ready: false, restarts: 0, lastStart: 0 });
  }

  start(): Promise<void> {
    for (let i = 0; i < this.opts.count; i++) this.spawn(i);
    return this.whenAllReady();
  }

  whenAllReady(): Promise<void> {
    if (this.slots.every((s) => s.ready)) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  pids(): Array<number | undefined> {
    return this.slots.map((s) => s.child?.pid);
  }

  restarts(i: number): number {
    return this.slots[i]?.restarts ?? 0;
  }

  /** When routine i's current process was started (ms since the epoch); undefined while it is not running. */
  startedAt(i: number): number | undefined {
    const slot = this.slots[i];
    return slot?.child ? slot.lastStart : undefined;
  }

  private spawn(i: number): void {
    const slot = this.slots[i]!;
    const fds = this.opts.fds(i);
    const script = path.join(__dirname, '..', 'routine', 'main.js');
    // Made here rather than in the routine, so the routine's main thread never loads koffi (~1.3 MiB per routine):
    // it only writes to the eventfd (fs.writeSync) and sets no fd flags. O_NONBLOCK belongs to the open file
    // description, shared with the routine's copies, so setting it here is what the routine's worker needs.
    setNonBlocking(fds.udp, true);
    if (fds.inside >= 0) setNonBlocking(fds.inside, true);
    const wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    let child: ChildProcess;
    try {
      child = fork(script, [], {
        execArgv: [...process.execArgv, ...ROUTINE_V8_FLAGS],
        stdio: ['ignore', 'inherit', 'inherit', fds.udp, fds.inside >= 0 ? fds.inside : 'ignore', fds.region, wakeFd, 'ipc'],
        serialization: 'advanced',
        env: { ...process.env, NEBULA_TS_ROUTINE: String(i) },
      });
    } finally {
      // The child has its own copy once fork() returns (the exec happened); a respawn gets a fresh one.
      close(wakeFd);
    }
    slot.child = child;
    slot.ready = false;
    slot.lastStart = Date.now();
    child.on('message', (msg: RoutineToSupervisor) => {
      if (msg.type === 'ready') {
        slot.ready = true;
        if (this.slots.every((s) => s.ready)) {
          const waiters = this.readyWaiters;
          this.readyWaiters = [];
          for (const w of waiters) w();
        }
      }
      this.opts.onMessage(msg);
    });
    child.on('exit', (code, signal) => {
      if (slot.child !== child) return;
      slot.child = undefined;
      slot.ready = false;
      if (this.stopping) return;
      this.opts.onDied(i);
      slot.restarts++;
      // Quick first retry, doubling up to 5 s when a routine keeps dying right after it starts.
      const quickDeath = Date.now() - slot.lastStart < 2000;
      const delay = quickDeath ? Math.min(100 * 2 ** Math.min(slot.restarts, 6), MAX_BACKOFF_MS) : 50;
      this.opts.log.error('Routine exited, respawning', { routine: i, code, signal, restarts: slot.restarts, delayMs: delay });
      slot.respawnTimer = setTimeout(() => this.spawn(i), delay);
    });
    this.sendTo(i, { type: 'setup', setup: this.opts.setup(i), capacities: this.opts.capacities });
  }

  sendTo(i: number, msg: SupervisorToRoutine): void {
    const child = this.slots[i]?.child;
    if (child?.connected) child.send(msg);
  }

  broadcast(msg: SupervisorToRoutine): void {
    for (let i = 0; i < this.slots.length; i++) this.sendTo(i, msg);
  }

  /** Stops every routine: IPC shutdown, then SIGKILL for any still alive after `timeoutMs`. */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.respawnTimer) clearTimeout(slot.respawnTimer);
      const child = slot.child;
      if (!child || child.exitCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          if (child.connected) child.send({ type: 'shutdown' });
          // Closing the channel also ends a routine whose data path is busy (it exits on disconnect).
          child.disconnect?.();
        }),
      );
    }
    await Promise.all(exits);
  }
}
