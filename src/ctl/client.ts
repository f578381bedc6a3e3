/**
 * nebula-ctl's side of the control socket: which socket (the default one of this network namespace when none is
 * given, src/shared/control-path.ts), one JSON request and its one-line JSON answer, and a one-line error saying why
 * the node cannot be reached (not running, not a socket, access denied).
 */
import { lstatSync } from 'node:fs';
import net from 'node:net';
import {
  ControlPathError,
  defaultControlSocketCandidates,
  defaultControlSocketPattern,
  probeControlSocket,
} from '../shared/control-path';

/** An error to print as one line (no stack). */
export class CtlError extends Error {}

const PICK = 'pick another with -socket or -config';

function notRunning(where: string): CtlError {
  return new CtlError(`no nebula-ts node is listening on ${where} (is it running? ${PICK})`);
}

function denied(where: string): CtlError {
  return new CtlError(`permission denied on ${where} (the control socket is mode 0600 in a 0700 directory: run nebula-ctl as the node's user, usually root)`);
}

function notSocket(where: string): CtlError {
  return new CtlError(`${where} is not a socket (is it the node's control.socket? ${PICK})`);
}

function fromPathError(err: unknown): Error {
  if (err instanceof ControlPathError) {
    if (err.code === 'EACCES') return denied(err.path);
    if (err.code === 'ENOTSOCK') return notSocket(err.path);
    return new CtlError(`cannot reach nebula-ts at ${err.path}: ${err.message}`);
  }
  return err as Error;
}

/** The socket of this namespace's node, when no path was given. */
export async function findDefaultSocket(): Promise<string> {
  let candidates: string[];
  try {
    candidates = defaultControlSocketCandidates();
  } catch (err) {
    throw fromPathError(err);
  }
  if (candidates.length === 0) throw notRunning(defaultControlSocketPattern());
  if (candidates.length === 1) return candidates[0]!;
  // Several nodes in this namespace (several tun.dev), or stale sockets of killed ones: keep those that answer.
  const live: string[] = [];
  for (const c of candidates) {
    try {
      if ((await probeControlSocket(c)) === 'live') live.push(c);
    } catch (err) {
      throw fromPathError(err);
    }
  }
  if (live.length === 1) return live[0]!;
  if (live.length === 0) throw notRunning(candidates.join(', '));
  throw new CtlError(`several nebula-ts nodes listen in this network namespace (${live.join(', ')}): pick one with -socket PATH or -config FILE`);
}

/** Sends one request and resolves with the node's one-line JSON answer; rejects with a one-line CtlError. */
export function request(socketPath: string, req: { cmd: string; args?: string[] }): Promise<Record<string, unknown>> {
  // Look first: connect() to a regular file fails like a dead socket (ECONNREFUSED); say what it really is.
  try {
    if (!lstatSync(socketPath).isSocket()) return Promise.reject(notSocket(socketPath));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return Promise.reject(notRunning(socketPath));
    if (code === 'EACCES' || code === 'EPERM') return Promise.reject(denied(socketPath));
    return Promise.reject(err as Error);
  }
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = '';
    let done = false;
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0 && !done) {
        done = true;
        conn.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (err) {
          reject(new CtlError(`the node at ${socketPath} answered something that is not JSON: ${(err as Error).message}`));
        }
      }
    });
    conn.on('close', () => {
      if (!done) reject(new CtlError(`the node at ${socketPath} closed the connection without answering`));
      done = true;
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      switch (err.code) {
        case 'ECONNREFUSED': // a stale socket: its node was killed
        case 'ENOENT':
          return reject(notRunning(socketPath));
        case 'EACCES':
        case 'EPERM':
          return reject(denied(socketPath));
        default:
          return reject(new CtlError(`cannot reach nebula-ts at ${socketPath}: ${err.message}`));
      }
    });
  });
}
