/**
 * nebula-ctl: talks to a running nebula-ts over its control socket.
 *   nebula-ctl [-socket PATH | -config FILE] reload|status
 * `reload` exits non-zero when the node rejected the new config (the running config is kept).
 *
 * Which socket: `-socket PATH` or the `control.socket` of `-config FILE` (the last given); else $NEBULA_TS_SOCKET; else the
 * default place of this network namespace (src/shared/control-path.ts, the rule the node's config default uses):
 * the node of a default install is found whatever its tun.dev, and `ip netns exec NS nebula-ctl ...` reaches the
 * node of namespace NS.
 */
import { lstatSync } from 'node:fs';
import net from 'node:net';
import { loadConfig } from '../shared/config';
import {
  ControlPathError,
  defaultControlSocketCandidates,
  defaultControlSocketPattern,
  probeControlSocket,
} from '../shared/control-path';

function usage(): never {
  process.stderr.write('Usage: nebula-ctl [-socket PATH | -config FILE] <reload|status>\n');
  process.exit(2);
}

/** An error to print as one line (no stack). */
class CtlError extends Error {}

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
async function findDefaultSocket(): Promise<string> {
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

function request(socketPath: string, cmd: string): Promise<Record<string, unknown>> {
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
    conn.on('connect', () => conn.write(JSON.stringify({ cmd }) + '\n'));
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

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let socketPath = process.env.NEBULA_TS_SOCKET || undefined;
  let cmd: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-socket' || a === '--socket') socketPath = argv[++i] ?? usage();
    else if (a === '-config' || a === '--config') socketPath = loadConfig(argv[++i] ?? usage()).config.control.socket;
    else if (!a.startsWith('-') && cmd === undefined) cmd = a;
    else usage();
  }
  if (cmd !== 'reload' && cmd !== 'status') usage();
  const reply = await request(socketPath ?? (await findDefaultSocket()), cmd);
  if (cmd === 'status') {
    process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
    return reply.ok === false ? 1 : 0;
  }
  if (reply.ok === true) {
    const changed = (reply.changed as string[] | undefined) ?? [];
    const summary = typeof reply.summary === 'string' ? reply.summary : changed.length ? `${changed.join(', ')} changed` : 'nothing changed';
    process.stdout.write(`reloaded: ${summary}\n`);
    // Applied, but a part was kept (a bad host cert with a good CA bundle): the operator must hear of it.
    const errors = (reply.errors as string[] | undefined) ?? [];
    for (const e of errors) process.stderr.write(`reload error, running certificate kept: ${e}\n`);
    return errors.length > 0 ? 1 : 0;
  }
  process.stderr.write(`reload failed, running config kept: ${String(reply.error)}\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nebula-ctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
