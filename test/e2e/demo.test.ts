/** The README's quickstart: `npm run demo` builds the demo mesh, every ping is answered, and nothing is left behind. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
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
  const leftover = netnsNames().filter((n) => !before.has(n));
  t.same(leftover, [], 'no namespace left behind');
});
