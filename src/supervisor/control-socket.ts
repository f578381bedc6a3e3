/**
 * The control socket nebula-ctl talks to: a unix socket, mode 0600 in a directory created 0700 (only the node's
 * user, normally root, may reload or inspect the node), one JSON request per line, one JSON answer per line.
 *
 * A node never removes a socket another node answers on. `listen()` claims the path:
 * - nothing there: listen;
 * - a socket nobody answers on (ECONNREFUSED: left by a node killed with SIGKILL): remove it, listen;
 * - a socket a process answers on: refuse (throws, naming the path); so is anything that is not a socket.
 * Check-then-replace is done holding an flock on the socket's directory, so two nodes starting at once on one path
 * cannot both decide "stale" and remove each other's fresh socket: the second sees the first one live.
 * `close()` removes only the socket this object listens on (libuv unlinks it before closing the fd, so there is no
 * moment in which it is stale and another node could have replaced it).
 */
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ControlPathError, probeControlSocket } from '../shared/control-path';
import type { Logger } from '../shared/log';
import koffi from '../shared/native/koffi';
import { EAGAIN, EINTR, NativeError, lastErrno } from '../shared/native/libc';

export type ControlHandler = (request: { cmd: string; args?: unknown }) => Promise<unknown> | unknown;

const LOCK_EX = 2;
const LOCK_NB = 4;
/** How long listen() waits for another starting node to finish claiming a path in the same directory. */
const LOCK_WAIT_MS = 5000;

const c_flock = koffi.load(null).func('flock', 'int', ['int', 'int']) as (fd: number, op: number) => number;

/** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another process holds it. */
function tryLockExclusive(fd: number): boolean {
  if (c_flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = lastErrno();
  if (errno === EAGAIN || errno === EINTR) return false; // EWOULDBLOCK === EAGAIN on Linux
  throw new NativeError('flock', errno);
}

/** Locks `dir` (an flock on the directory itself: no lock file to leave behind); resolves with the unlock. */
async function lockDirectory(dir: string): Promise<() => void> {
  const fd = openSync(dir, 'r');
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    while (!tryLockExclusive(fd)) {
      // flock has no asynchronous form here; the holder keeps it only for a probe and a bind.
      if (Date.now() > deadline) throw new Error(`${dir} stayed locked by another starting nebula-ts node for ${LOCK_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return () => closeSync(fd); // closing the last fd of the open file releases the flock
}

export class ControlSocket {
  private server?: net.Server;

  constructor(
    readonly socketPath: string,
    private readonly handler: ControlHandler,
    private readonly log: Logger,
  ) {}

  /** Claims the path (see the top of this file) and listens; throws with a message naming the path when it may not. */
  async listen(): Promise<void> {
    const p = this.socketPath;
    const dir = path.dirname(p);
    // Created 0700 when missing (every missing level); an existing directory is left as it is.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const owner = lstatSync(dir).uid;
    const uid = process.getuid?.() ?? 0;
    if (owner !== uid && owner !== 0) {
      throw new Error(`control socket directory ${dir} belongs to another user (uid ${owner}); refusing to put the control socket there`);
    }
    const unlock = await lockDirectory(dir);
    try {
      await this.replaceIfStale();
      const server = net.createServer((conn) => this.serve(conn));
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          reject(
            err.code === 'EADDRINUSE'
              ? new Error(`control socket ${p} was created by another process while this node was starting; refusing to replace it`)
              : new Error(`control socket ${p}: ${err.message}`),
          );
        });
        // Bound 0600 from the start (bind happens inside listen(), synchronously): no window in which another user
        // could connect.
        const oldMask = process.umask(0o177);
        try {
          server.listen(p, () => resolve());
        } finally {
          process.umask(oldMask);
        }
      });
      server.removeAllListeners('error');
      server.on('error', (err) => this.log.error('Control socket error', { path: p, error: err.message }));
      chmodSync(p, 0o600);
      this.server = server;
    } finally {
      unlock();
    }
  }

  /** Nothing at the path: fine. A stale socket: removed. Anything else: throws. */
  private async replaceIfStale(): Promise<void> {
    const p = this.socketPath;
    let state: 'absent' | 'stale' | 'live';
    try {
      state = await probeControlSocket(p);
    } catch (err) {
      if (err instanceof ControlPathError && err.code === 'ENOTSOCK') {
        throw new Error(`control socket ${p} exists and is not a socket; refusing to replace it (remove it, or set control.socket to another path)`);
      }
      throw new Error(`control socket ${p}: ${(err as Error).message}`);
    }
    if (state === 'live') {
      throw new Error(
        `another nebula-ts node is already listening on control socket ${p}; refusing to start (stop that node, or give this one its own control.socket)`,
      );
    }
    if (state === 'stale') {
      // Under the directory lock, and nobody answered: left by a node that was killed. Make sure it is still a
      // socket (a concurrent rm + mkfile by someone not taking the lock is not ours to delete).
      try {
        if (lstatSync(p).isSocket()) unlinkSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      this.log.info('Replaced a stale control socket (its node is gone)', { path: p });
    }
  }

  private serve(conn: net.Socket): void {
    let buffered = '';
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        void this.answer(conn, line);
      }
      if (buffered.length > 65536) conn.destroy();
    });
    conn.on('error', () => undefined);
  }

  private async answer(conn: net.Socket, line: string): Promise<void> {
    let reply: unknown;
    try {
      const req = JSON.parse(line) as { cmd?: unknown; args?: unknown };
      if (typeof req.cmd !== 'string') throw new Error('request needs a "cmd" string');
      reply = await this.handler({ cmd: req.cmd, args: req.args });
    } catch (err) {
      reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    if (!conn.destroyed) conn.write(JSON.stringify(reply) + '\n');
  }

  /** Stops listening and removes the socket, if (and only if) this object is listening on it. */
  close(): void {
    const server = this.server;
    if (!server) return; // never listened (e.g. another node holds the path): leave the path alone
    this.server = undefined;
    server.close(); // libuv unlinks the path, then closes the fd
    this.log.debug('Control socket closed', { path: this.socketPath });
  }
}
