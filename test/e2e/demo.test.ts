/** The README's quickstart: `npm run demo` builds the demo mesh, every ping is answered, and nothing is left behind. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { meshNetnsOwner } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';

const ROOT = path.resolve(__dirname, '..', '..');

function netnsNames(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

t.test('npm run demo: every pair pings, exit 0, namespaces removed', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const before = new Set(netnsNames());
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'demo', 'main.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, out);
  t.match(out, /all tunnels up, every ping answered/);
  t.match(out, /gamma-go\s+alpha\s+5\/5/, 'the Go nebula node reaches a nebula-ts node');
  t.match(out, /alpha\s+gamma-go\s+5\/5/, 'and back');
  t.match(out, /alpha\s+beta\s+5\/5\s+\d+ ms\s+direct to 10\.99\.0\.\d+:4242/, 'nodes that knew only the lighthouse talk directly');
  t.match(out, /gamma-go\s+192\.168\.100\.13\s+learned 10\.99\.0\.\d+:4242; reported 10\.99\.0\.\d+:4242/, "the lighthouse's map shows the Go node");
  t.match(out, /the peers found each other through the lighthouse/);
  // Only the demo's own namespaces (named after its pid): test files run in parallel, and another one's
  // namespaces may come and go meanwhile.
  const leftover = netnsNames().filter((n) => !before.has(n) && meshNetnsOwner(n) === child.pid);
  t.same(leftover, [], 'no namespace left behind');
});
