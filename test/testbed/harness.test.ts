/**
 * What lets test files run in parallel and cheaply: mesh namespace names that say whose they are (the stale sweep
 * and the demo test read them back), node commands without the test runner's hooks (src/testbed/runner-hooks.ts),
 * and fixtures compiled to plain JavaScript (test/helpers/compiled-fixture.ts). No root needed.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { meshNetnsOwner } from '../../src/testbed/netns-mesh';
import { cleanNodeOptionsPrefix, nodeCommand, withoutRunnerHooks } from '../../src/testbed/runner-hooks';
import { compiledFixture, fixtureCommand } from '../helpers/compiled-fixture';
import { streamSha256 } from '../e2e/fixtures/stream-data';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const PROCESSINFO = '--import=file:///p/node_modules/@tapjs/processinfo/dist/esm/import.mjs';

t.test('mesh namespace names give back the pid of the process that made them', async (t) => {
  const pid = 4_194_303; // the largest pid Linux hands out
  t.equal(meshNetnsOwner(`ntm${pid.toString(36)}-0-1`), pid, 'a node namespace');
  t.equal(meshNetnsOwner(`ntm${pid.toString(36)}-1a-hub`), pid, 'the hub of the 47th mesh');
  t.equal(meshNetnsOwner(`ntm${(7).toString(36)}-2-r3`), 7, "a NAT router's namespace (src/testbed/nat.ts)");
  t.equal(meshNetnsOwner('ntmya0-1'), undefined, 'the old format (pid and counter run together) is not guessed at');
  t.equal(meshNetnsOwner('nts-123-4'), undefined, 'another naming');
  t.equal(meshNetnsOwner('ntm12-3-4-5'), undefined, 'one part too many');
});

t.test("NODE_OPTIONS without the runner's hooks, whatever else it holds", async (t) => {
  t.equal(withoutRunnerHooks(PROCESSINFO), '');
  t.equal(withoutRunnerHooks(`--require /tmp/pre.js ${PROCESSINFO} --max-old-space-size=64`), '--require /tmp/pre.js --max-old-space-size=64', 'other options kept, in order');
  t.equal(withoutRunnerHooks('--import /p/node_modules/@tapjs/mock/dist/esm/import.mjs --trace-warnings'), '--trace-warnings', 'a hook given as two words goes with its flag');
  t.equal(withoutRunnerHooks('  --trace-warnings   --no-deprecation '), '--trace-warnings --no-deprecation', 'whitespace as node splits it');

  t.same(cleanNodeOptionsPrefix(undefined, ''), [], 'no runner, nothing wanted: no prefix');
  t.same(cleanNodeOptionsPrefix('--trace-warnings', ''), [], 'no runner: the wanted options reach the node as they are');
  t.same(cleanNodeOptionsPrefix(undefined, PROCESSINFO), ['env', '-u', 'NODE_OPTIONS'], 'under the runner: unset (it would be added again)');
  t.same(cleanNodeOptionsPrefix(`${PROCESSINFO} --require /tmp/pre.js`, PROCESSINFO), ['env', 'NODE_OPTIONS=--require /tmp/pre.js'], "a test's own preload is kept");

  const cmd = nodeCommand();
  t.equal(cmd[cmd.length - 1], process.execPath, 'nodeCommand ends with this node');
  if (/@tapjs/.test(process.env.NODE_OPTIONS ?? '')) t.same(cmd.slice(0, -1), ['env', '-u', 'NODE_OPTIONS'], 'and, under tap, unsets its hooks first');
});

t.test('a fixture compiled here runs as plain node and computes what its TypeScript source does', async (t) => {
  const fixtures = path.resolve(__dirname, '..', 'e2e', 'fixtures');
  const entry = compiledFixture(path.join(fixtures, 'tcp-sha.ts'));
  t.match(entry, /\/test\/e2e\/fixtures\/tcp-sha\.js$/, 'the project layout, mirrored');
  const imported = path.join(path.dirname(entry), 'stream-data.js');
  t.ok(existsSync(imported), 'its relative import was compiled beside it');
  t.equal(compiledFixture(path.join(fixtures, 'tcp-sha.ts')), entry, 'compiled once per process');
  t.match(readFileSync(entry, 'utf8'), /require\("\.\/stream-data"\)/, 'CommonJS output');

  // The compiled client and server hash 256 kB over loopback; the hash is the one the TypeScript module computes.
  const run = (args: string[]): { lines: Array<Record<string, unknown>>; exit: Promise<number | null>; first: Promise<Record<string, unknown>> } => {
    const [cmd, ...argv] = fixtureCommand(path.join(fixtures, 'tcp-sha.ts'));
    const child = spawn(cmd!, [...argv, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => void child.kill('SIGKILL'));
    const lines: Array<Record<string, unknown>> = [];
    let resolveFirst: (v: Record<string, unknown>) => void = () => undefined;
    const first = new Promise<Record<string, unknown>>((resolve) => (resolveFirst = resolve));
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (lines.length === 1) resolveFirst(line);
      }
    });
    return { lines, exit: new Promise((resolve) => child.once('exit', resolve)), first };
  };
  const port = String(await freeTcpPort());
  const server = run(['server', '127.0.0.1', port]);
  t.same(await server.first, { listening: true }, 'the server listens');
  const client = run(['client', '127.0.0.1', port, String(256 * 1024), 'harness']);
  t.equal(await client.exit, 0, 'the client exits 0');
  t.equal(await server.exit, 0, 'the server exits 0');
  const expected = { bytes: 256 * 1024, sha256: streamSha256('harness', 256 * 1024) };
  t.same(client.lines.at(-1), expected, 'the client sent the expected stream');
  t.same(server.lines.at(-1), expected, 'the server received it byte for byte');
});
