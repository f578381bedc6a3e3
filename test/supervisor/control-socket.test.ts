/**
 * The control socket's claim on its path (issue 8): a live socket is never removed, a stale one (its node was
 * killed) is replaced, anything that is not a socket is refused and left alone; mode 0600 in a directory created
 * 0700; close() removes only its own socket; two nodes starting at once on one stale path: exactly one wins.
 * No root needed: everything is under a temporary directory.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlPathError, probeControlSocket } from '../../src/shared/control-path';
import { Logger } from '../../src/shared/log';
import { ControlSocket } from '../../src/supervisor/control-socket';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'nts-ctlsock-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
function freshPath(): string {
  return path.join(tmp, `s${counter++}.sock`);
}

function quietLog(lines: string[] = []): Logger {
  return new Logger({ level: 'debug', write: (l) => lines.push(l) });
}

function listenPlain(p: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.end());
    s.once('error', reject);
    s.listen(p, () => resolve(s));
  });
}

function closeServer(s: net.Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

/** A socket file nobody listens on, as a SIGKILLed node leaves it (libuv's close would unlink it: move it aside). */
async function staleSocket(p: string): Promise<void> {
  const s = await listenPlain(p);
  const aside = `${p}.aside`;
  renameSync(p, aside);
  await closeServer(s);
  renameSync(aside, p);
}

/** One request over a control socket, the way nebula-ctl sends it. */
function ask(p: string, cmd: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(p);
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ cmd }) + '\n'));
    conn.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        conn.end();
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      }
    });
    conn.on('error', reject);
  });
}

function node(p: string, name: string, log = quietLog()): ControlSocket {
  return new ControlSocket(p, (req) => ({ ok: true, node: name, cmd: req.cmd }), log);
}

t.test('probe: absent, live, then stale once its listener is gone with the file left', async (t) => {
  const p = freshPath();
  t.equal(await probeControlSocket(p), 'absent');
  const s = await listenPlain(p);
  t.equal(await probeControlSocket(p), 'live', 'a listener answers: live');
  renameSync(p, `${p}.aside`);
  await closeServer(s);
  renameSync(`${p}.aside`, p);
  t.ok(statSync(p).isSocket(), 'the socket file is still there');
  t.equal(await probeControlSocket(p), 'stale', 'nobody listens: stale (ECONNREFUSED)');
});

t.test('probe: a regular file is refused (ENOTSOCK), not touched', async (t) => {
  const p = freshPath();
  writeFileSync(p, 'precious');
  const err = await probeControlSocket(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ControlPathError, 'a ControlPathError');
  t.equal((err as ControlPathError).code, 'ENOTSOCK');
  t.equal(readFileSync(p, 'utf8'), 'precious');
});

t.test('listen: creates the missing directories 0700 and the socket 0600, and serves requests', async (t) => {
  const dir = path.join(tmp, 'fresh', 'nested');
  const p = path.join(dir, 'c.sock');
  const c = node(p, 'one');
  t.teardown(() => c.close());
  await c.listen();
  t.equal(statSync(dir).mode & 0o777, 0o700, 'directory 0700');
  t.equal(statSync(path.dirname(dir)).mode & 0o777, 0o700, 'parent directory created 0700 too');
  t.equal(statSync(p).mode & 0o777, 0o600, 'socket 0600');
  t.same(await ask(p, 'status'), { ok: true, node: 'one', cmd: 'status' });
  c.close();
  t.notOk(existsSync(p), 'close() removes its own socket');
});

t.test('listen: a stale socket is replaced', async (t) => {
  const p = freshPath();
  await staleSocket(p);
  t.equal(await probeControlSocket(p), 'stale', 'stale before');
  const lines: string[] = [];
  const c = node(p, 'new', quietLog(lines));
  t.teardown(() => c.close());
  await c.listen();
  t.equal(await probeControlSocket(p), 'live', 'live after');
  t.equal(statSync(p).mode & 0o777, 0o600);
  t.same(await ask(p, 'status'), { ok: true, node: 'new', cmd: 'status' });
  t.ok(lines.some((l) => /Replaced a stale control socket/.test(l)), 'the replacement is logged');
});

t.test('listen: refuses when a node answers on the path, and leaves that node alone', async (t) => {
  const p = freshPath();
  const first = node(p, 'first');
  t.teardown(() => first.close());
  await first.listen();
  const ino = statSync(p).ino;
  const second = node(p, 'second');
  await t.rejects(second.listen(), new RegExp(`another nebula-ts node is already listening on control socket ${p.replace(/[.]/g, '\\.')}`));
  second.close(); // what main.ts does after a failed start: must not touch the first node's socket
  t.equal(statSync(p).ino, ino, 'the socket is still the first node\'s');
  t.same(await ask(p, 'status'), { ok: true, node: 'first', cmd: 'status' }, 'the first node still answers');
});

t.test('listen: a regular file at the path is refused, not deleted', async (t) => {
  const p = freshPath();
  writeFileSync(p, 'not a socket');
  const c = node(p, 'x');
  await t.rejects(c.listen(), /exists and is not a socket; refusing to replace it/);
  c.close();
  t.equal(readFileSync(p, 'utf8'), 'not a socket', 'the file is untouched');
});

t.test('two nodes claiming one stale path at once: exactly one wins, the other refuses', async (t) => {
  for (let round = 0; round < 5; round++) {
    const p = freshPath();
    await staleSocket(p);
    const a = node(p, 'a');
    const b = node(p, 'b');
    const results = await Promise.allSettled([a.listen(), b.listen()]);
    const won = results.map((r) => r.status === 'fulfilled');
    t.equal(won.filter(Boolean).length, 1, `round ${round}: one listens (${results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join(' | ')})`);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    t.match(String(loser?.reason), /already listening/, `round ${round}: the other sees it live`);
    const winner = won[0] ? 'a' : 'b';
    t.same(await ask(p, 'status'), { ok: true, node: winner, cmd: 'status' }, `round ${round}: the winner answers on the path`);
    a.close();
    b.close();
    t.notOk(existsSync(p), `round ${round}: removed by the winner's close`);
  }
});
