/**
 * Network-namespace helpers for end-to-end tests (need root).
 *
 * `netnsScope(t)` returns a scope whose namespaces, veth pairs and spawned processes are torn down when the test ends,
 * pass or fail: processes are killed first (SIGTERM, then SIGKILL) and awaited, then namespaces are deleted (which
 * deletes the veths and tun devices inside them). Names are `nts-<pid>-<n>` so parallel test processes never collide,
 * and namespaces left behind by a test process that died (these and the testbed mesh's) are swept when the next
 * scope is created.
 */
import { ChildProcess, SpawnOptions, execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { meshNetnsOwner } from '../../src/testbed/netns-mesh';
import { fixtureCommand } from './compiled-fixture';

export interface Teardownable {
  teardown(fn: () => unknown): void;
}

let counter = 0;

/** A name unique to this process: `nts-<pid>-<n>` (netns names), or a short form for interface names (max 15). */
export function uniqueName(kind: 'netns' | 'if' = 'netns'): string {
  counter++;
  if (kind === 'netns') return `nts-${process.pid}-${counter}`;
  return `nt${process.pid.toString(36)}x${counter.toString(36)}`;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a command and resolves with its output; rejects with an Error quoting the command and its stderr. */
export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export function execInNetns(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the process that named namespace `name` (`nts-<pid>-<n>` here, or a testbed mesh's), if known. */
function netnsOwner(name: string): number | undefined {
  const m = /^nts-(\d+)-\d+$/.exec(name);
  return m ? Number(m[1]) : meshNetnsOwner(name);
}

/**
 * Deletes the namespaces of this file's and the testbed mesh's naming whose creating process is gone (left over by
 * a crashed test run). A namespace whose creator still runs is never touched: test files run in parallel, and every
 * one of them owns its namespaces until it exits.
 */
export async function sweepStaleNetns(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const name of names) {
    const owner = netnsOwner(name);
    if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}

/** Kills a child (SIGTERM, then SIGKILL after `graceMs`) and resolves when it has exited. */
export function killAndWait(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface VethPair {
  ifA: string;
  ifB: string;
}

export class NetnsScope {
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];

  constructor(t: Teardownable) {
    t.teardown(() => this.cleanup());
  }

  /** Creates a namespace with loopback up. */
  async createNetns(name: string = uniqueName('netns')): Promise<string> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair with one end in each namespace, addressed ("10.0.0.1/24") and up. */
  async createVethPair(nsA: string, nsB: string, cidrA: string, cidrB: string): Promise<VethPair> {
    const ifA = uniqueName('if');
    const ifB = uniqueName('if');
    await run('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    await run('ip', ['-n', nsA, 'addr', 'add', cidrA, 'dev', ifA]);
    await run('ip', ['-n', nsB, 'addr', 'add', cidrB, 'dev', ifB]);
    await run('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
    await run('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
    return { ifA, ifB };
  }

  /**
   * Spawns `cmd args` inside `ns` (`ip netns exec` execs the command in place, so the child's pid is the command's
   * and an 'ipc' entry in stdio works). The process is killed at teardown.
   */
  spawnInNetns(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.track(child);
    return child;
  }

  /**
   * Runs a TypeScript fixture (compiled to JavaScript in this process: compiled-fixture.ts) inside `ns`, with an IPC
   * channel. Extra fds may be passed after the three standard ones with `extraFds`.
   */
  spawnFixtureInNetns(ns: string, script: string, args: string[] = [], extraFds: number[] = []): ChildProcess {
    const [cmd, ...argv] = fixtureCommand(script);
    return this.spawnInNetns(ns, cmd!, [...argv, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', ...extraFds, 'ipc'],
    });
  }

  /** Registers a child spawned elsewhere so teardown kills it. */
  track(child: ChildProcess): ChildProcess {
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.children.map((c) => killAndWait(c)));
    this.children.length = 0;
    for (const ns of this.namespaces.splice(0).reverse()) {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }
}

/** A scope tied to `t`: everything it creates is cleaned up in t.teardown. Also sweeps stale namespaces first. */
export async function netnsScope(t: Teardownable): Promise<NetnsScope> {
  await sweepStaleNetns();
  return new NetnsScope(t);
}

/**
 * Polls `predicate` every `intervalMs` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * Only for OS state that offers no event to wait on (a device appearing in sysfs, a route showing up).
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  what = 'condition',
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Resolves with the first line of the child's stdout or stderr that matches `re` (the match). Rejects on timeout or
 * when the child exits first, quoting the output seen so far.
 */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const done = (err: Error | null, m?: RegExpExecArray): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    const feed = (which: 'stdout' | 'stderr', chunk: Buffer | string): void => {
      const lines = (partial[which] + chunk.toString()).split('\n');
      partial[which] = lines.pop() ?? '';
      for (const line of lines) {
        seen.push(line);
        const m = re.exec(line);
        if (m) return done(null, m);
      }
    };
    const onOut = (c: Buffer | string): void => feed('stdout', c);
    const onErr = (c: Buffer | string): void => feed('stderr', c);
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`process exited (${code ?? signal}) before printing ${re}; output:\n${seen.join('\n')}`));
    const timer = setTimeout(
      () => done(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output:\n${seen.join('\n')}`)),
      timeoutMs,
    );
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Resolves with the next IPC message from `child` that satisfies `accept`, or rejects on exit/timeout. */
export function waitForMessage<T>(child: ChildProcess, accept: (m: unknown) => m is T, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const stderr: string[] = [];
    const onErr = (c: Buffer | string): void => void stderr.push(c.toString());
    const finish = (err: Error | null, v?: T): void => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      child.stderr?.off('data', onErr);
      if (err) reject(err);
      else resolve(v as T);
    };
    const onMsg = (m: unknown): void => {
      if (accept(m)) finish(null, m);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`process exited (${code ?? signal}) before the expected message; stderr:\n${stderr.join('')}`));
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for a message`)), timeoutMs);
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.stderr?.on('data', onErr);
  });
}
