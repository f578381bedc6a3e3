/** Shared pieces of the end-to-end tests: a mesh tied to a test, the control socket, fixtures run in namespaces. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Mesh, type MeshOptions } from '../../src/testbed/netns-mesh';
import { fixtureCommand } from '../helpers/compiled-fixture';
import { streamSha256 } from './fixtures/stream-data';

export const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(__dirname, 'fixtures');

interface Teardownable {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
}

/** A mesh destroyed when `t` ends, pass or fail. On failure-prone paths, dumps nothing: callers log what they need. */
export async function newMesh(t: Teardownable, opts: Omit<MeshOptions, 'projectRoot'> = {}): Promise<Mesh> {
  const mesh = new Mesh({ projectRoot: ROOT, ...opts });
  const children = new Set<ChildProcess>();
  fixtureChildren.set(mesh, children);
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await mesh.destroy();
  });
  await mesh.init();
  return mesh;
}

const fixtureChildren = new WeakMap<Mesh, Set<ChildProcess>>();

export interface NodeStatus {
  ok: boolean;
  vpnIp: string;
  tunnels: Array<{ vpnIp: string; name: string; localIndex: number; remoteIndex: number; remote: string }>;
  routines: Array<{ routine: number; pid: number; restarts: number; insideRx: number; outsideTx: number; outsideRx: number; insideTx: number }>;
  counters: Record<string, number>;
}

/** `nebula-ctl status` of a nebula-ts node, straight over its control socket. */
export function status(mesh: Mesh, name: string): Promise<NodeStatus> {
  return statusAt(mesh.node(name).controlSocket, name);
}

/** `nebula-ctl status` over a control socket path (`name` only labels errors). */
export function statusAt(socketPath: string, name = socketPath): Promise<NodeStatus> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => conn.destroy(new Error(`status of ${name}: no answer`)), 5000);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ cmd: 'status' }) + '\n'));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as NodeStatus);
      } catch (err) {
        reject(err as Error);
      }
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`status of ${name}: ${err.message}`));
    });
  });
}

/** Polls `status` until `pred` holds; rejects with the last status after `timeoutMs`. */
export async function waitForStatus(mesh: Mesh, name: string, pred: (s: NodeStatus) => boolean, timeoutMs: number, what: string): Promise<NodeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: NodeStatus | undefined;
  for (;;) {
    last = await status(mesh, name);
    if (pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${name}; last status: ${JSON.stringify({ tunnels: last.tunnels, routines: last.routines })}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `pred` every 50 ms until it holds or `timeoutMs` passes; resolves with its last value. */
export async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Lines of a node's output (from index `from`) matching `re`. */
export function linesMatching(mesh: Mesh, name: string, re: RegExp, from = 0): string[] {
  return mesh.node(name).output.slice(from).filter((l) => re.test(l));
}

/** Runs a TypeScript fixture inside a node's namespace (compiled to JavaScript here: test/helpers/compiled-fixture.ts). */
export function spawnFixture(mesh: Mesh, nodeName: string, fixture: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', mesh.node(nodeName).ns, ...fixtureCommand(path.join(FIXTURES, fixture)), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  fixtureChildren.get(mesh)?.add(child);
  return child;
}

/** Collects a child's stdout JSON lines; `first` resolves with the first line satisfying `pred`. */
export function jsonLines(child: ChildProcess): { lines: unknown[]; first: (pred: (v: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown>>; exit: Promise<number | null> } {
  const lines: unknown[] = [];
  let partial = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      try {
        lines.push(JSON.parse(p));
      } catch {
        lines.push({ raw: p });
      }
    }
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = (pred: (v: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = lines.find((l) => pred(l as Record<string, unknown>));
        if (hit) {
          clearTimeout(timer);
          resolve(hit as Record<string, unknown>);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => reject(new Error(`fixture: timed out; stdout ${JSON.stringify(lines)} stderr ${stderr}`)), timeoutMs);
      if (check()) return;
      waiters.push(check);
      void exit.then(() => {
        setImmediate(() => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`fixture exited; stdout ${JSON.stringify(lines)} stderr ${stderr}`));
          }
        });
      });
    });
  return { lines, first, exit };
}

/** Runs udp-tool.ts in a namespace and resolves with its JSON answer. */
export async function udpTool(mesh: Mesh, nodeName: string, op: Record<string, unknown>, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const child = spawnFixture(mesh, nodeName, 'udp-tool.ts', [JSON.stringify(op)]);
  const res = await jsonLines(child).first(() => true, timeoutMs);
  if (res.error) throw new Error(`udp-tool: ${String(res.error)}`);
  return res;
}

export interface TransferResult {
  expected: string;
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
  ms: number;
}

/** Sends `bytes` of deterministic data over TCP from node `from` to `toIp` (served in node `to`); both sides hash it. */
export async function tcpTransfer(mesh: Mesh, from: string, to: string, toIp: string, bytes: number, seed: string, timeoutMs = 90_000): Promise<TransferResult> {
  const port = '5201';
  const server = jsonLines(spawnFixture(mesh, to, 'tcp-sha.ts', ['server', toIp, port]));
  await server.first((v) => v.listening === true, 20_000);
  const started = Date.now();
  const client = jsonLines(spawnFixture(mesh, from, 'tcp-sha.ts', ['client', toIp, port, String(bytes), seed]));
  const [sent, received] = await Promise.all([
    client.first((v) => 'sha256' in v || 'error' in v, timeoutMs),
    server.first((v) => 'sha256' in v || 'error' in v, timeoutMs),
  ]);
  return {
    expected: streamSha256(seed, bytes),
    sent: sent as TransferResult['sent'],
    received: received as TransferResult['received'],
    ms: Date.now() - started,
  };
}

/** A live (not zombie) process? */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of the live children of `ppid` (from /proc/<pid>/stat), sorted. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid && fields[0] !== 'Z') out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out.sort((a, b) => a - b);
}

/** Polls `get` until `pred` holds; rejects with the last value after `timeoutMs` (for state with no event). */
export async function until<T>(what: string, get: () => Promise<T> | T, pred: (v: T) => boolean, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
