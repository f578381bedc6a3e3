/**
 * Issue 3 acceptance, part 3: restarting either side of a tunnel brings it back by itself and traffic resumes
 * within ~15 s: nebula-ts <-> nebula-ts (restart one nebula-ts, SIGTERM) and nebula-ts <-> Go 1.6.1 (restart the Go
 * node with SIGKILL, so nebula-ts holds a stale tunnel and gets no close-tunnel message; then restart the nebula-ts
 * node, SIGTERM).
 */
import t, { type Test } from 'tap';
import { prereqs } from '../helpers/prereq';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { newMesh, status, waitForStatus } from './helpers';

const IP = { t1: '192.168.100.1', t2: '192.168.100.2', g1: '192.168.100.3' } as const;
type Name = keyof typeof IP;
const RECOVERY_MS = 15_000;

async function recovers(t: Test, mesh: Mesh, from: Name, to: Name): Promise<void> {
  const started = Date.now();
  const ok = await mesh.pingUntilReply(from, IP[to], RECOVERY_MS);
  t.ok(ok, `${from} -> ${to}: traffic resumed${ok ? ` after ${Date.now() - started} ms` : ''}`);
  if (!ok) {
    t.comment(`${from} output tail:\n${mesh.node(from).output.slice(-15).join('\n')}`);
    t.comment(`${to} output tail:\n${mesh.node(to).output.slice(-15).join('\n')}`);
  }
}

async function pingsBothWays(t: Test, mesh: Mesh, a: Name, b: Name): Promise<void> {
  t.equal(await mesh.ping(a, IP[b], 3, 2), 3, `${a} -> ${b}: 3/3 pings`);
  t.equal(await mesh.ping(b, IP[a], 3, 2), 3, `${b} -> ${a}: 3/3 pings`);
}

t.test('tunnels come back by themselves after either side restarts', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(150_000);
  const mesh = await newMesh(t, { cipher: 'aes' });
  await mesh.add({ name: 't1', kind: 'ts', overlayIp: IP.t1 });
  await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2 });
  await mesh.add({ name: 'g1', kind: 'go', overlayIp: IP.g1 });
  mesh.writeConfigs();
  await mesh.start('g1');
  await Promise.all([mesh.start('t1'), mesh.start('t2')]);
  t.ok(await mesh.pingUntilReply('t1', IP.t2, 15_000), 't1 -> t2 up');
  t.ok(await mesh.pingUntilReply('t1', IP.g1, 15_000), 't1 -> g1 up');
  const before = await status(mesh, 't1');
  const tunnelTo = (s: typeof before, name: string) => s.tunnels.find((x) => x.name === name);

  t.test('restart nebula-ts t2 (ts <-> ts)', async (t) => {
    t.equal(await mesh.stop('t2'), 0, 't2 exits 0 on SIGTERM');
    await mesh.start('t2');
    await recovers(t, mesh, 't1', 't2');
    await recovers(t, mesh, 't2', 't1');
    await pingsBothWays(t, mesh, 't1', 't2');
    const s = await waitForStatus(mesh, 't1', (s) => tunnelTo(s, 't2') !== undefined, 5000, 'tunnel to t2');
    t.not(tunnelTo(s, 't2')!.remoteIndex, tunnelTo(before, 't2')!.remoteIndex, 't1 uses a new tunnel to t2 (new remote index)');
  });

  t.test('restart Go g1 with SIGKILL (nebula-ts holds a stale tunnel)', async (t) => {
    await mesh.stop('g1', 'SIGKILL');
    await mesh.start('g1');
    // nebula-ts sends first, on its stale tunnel: it must notice and re-handshake by itself.
    await recovers(t, mesh, 't1', 'g1');
    await recovers(t, mesh, 'g1', 't1');
    await pingsBothWays(t, mesh, 't1', 'g1');
    const s = await status(mesh, 't1');
    t.not(tunnelTo(s, 'g1')?.remoteIndex, tunnelTo(before, 'g1')!.remoteIndex, 't1 uses a new tunnel to g1');
  });

  t.test('restart nebula-ts t1 (ts <-> go and ts <-> ts)', async (t) => {
    t.equal(await mesh.stop('t1'), 0, 't1 exits 0 on SIGTERM');
    await mesh.start('t1');
    // The Go side sends first, on its stale tunnel.
    await recovers(t, mesh, 'g1', 't1');
    await recovers(t, mesh, 't1', 'g1');
    await recovers(t, mesh, 't2', 't1');
    await pingsBothWays(t, mesh, 't1', 'g1');
    await pingsBothWays(t, mesh, 't1', 't2');
  });

  t.test('no routine restarts on the survivors', async (t) => {
    for (const n of ['t1', 't2']) {
      const s = await status(mesh, n);
      t.ok(s.routines.every((r) => r.restarts === 0), `${n}: no routine restarts`);
    }
  });
});
