/**
 * Issue 9 acceptance, relays (nebula-spec §5.8): two nodes whose direct path is blocked (a blackhole route for each
 * other's underlay address in both namespaces) still talk, through a relay both can reach, found through the
 * lighthouse (each node lists the relay in relay.relays; the lighthouse passes that on with its address).
 * - A nebula-ts relay for two Go 1.6.1 nodes: the relay's routines forwarded the frames (its counter).
 * - A Go 1.6.1 relay for two nebula-ts nodes: their tunnel is relayed; when the block is lifted it moves to the
 *   direct path (the relayed tunnel probes for one every few seconds, direct-path.ts).
 */
import t, { type Test } from 'tap';
import { prereqs } from '../helpers/prereq';
import type { Mesh } from '../../src/testbed/netns-mesh';
import path from 'node:path';
import { newMesh, ROOT, status, until } from './helpers';

interface RelaysJson {
  Relays: Array<{ NebulaIp: string; RelayForIps: Array<{ Type: string; State: string; PeerIp: string; LocalIndex: number; RemoteIndex: number }> }>;
}

/** `nebula-ctl print-relays` of a nebula-ts node, parsed. */
async function printRelays(mesh: Mesh, name: string): Promise<RelaysJson> {
  const out = await mesh.exec(name, process.execPath, [path.join(ROOT, 'dist/ctl/main.js'), '-socket', mesh.node(name).controlSocket, 'print-relays']);
  return JSON.parse(out) as RelaysJson;
}

const LH = '192.168.100.1';
const RELAY = '192.168.100.2';

function clientConfig(): Record<string, unknown> {
  return { lighthouse: { am_lighthouse: false, hosts: [LH], interval: 1 }, relay: { relays: [RELAY], use_relays: true } };
}

async function blockDirect(mesh: Mesh, a: string, b: string, on: boolean): Promise<void> {
  const op = on ? 'add' : 'del';
  await mesh.exec(a, 'ip', ['route', op, 'blackhole', `${mesh.node(b).underlayIp}/32`]);
  await mesh.exec(b, 'ip', ['route', op, 'blackhole', `${mesh.node(a).underlayIp}/32`]);
}

async function relayMesh(t: Test, relayKind: 'ts' | 'go', clientKind: 'ts' | 'go'): Promise<Mesh> {
  const mesh = await newMesh(t);
  await mesh.add({ name: 'lh', kind: relayKind, overlayIp: LH, staticHosts: [], config: { lighthouse: { am_lighthouse: true }, ...(relayKind === 'ts' ? { tun: { disabled: true } } : {}) } });
  await mesh.add({ name: 'relay', kind: relayKind, overlayIp: RELAY, staticHosts: ['lh'], config: { lighthouse: { hosts: [LH], interval: 1 }, relay: { am_relay: true } } });
  await mesh.add({ name: 'a', kind: clientKind, overlayIp: '192.168.100.11', staticHosts: ['lh'], routines: clientKind === 'ts' ? 2 : undefined, config: clientConfig() });
  await mesh.add({ name: 'b', kind: clientKind, overlayIp: '192.168.100.12', staticHosts: ['lh'], config: clientConfig() });
  mesh.writeConfigs();
  await blockDirect(mesh, 'a', 'b', true);
  await mesh.start('lh');
  await Promise.all(['relay', 'a', 'b'].map((n) => mesh.start(n)));
  return mesh;
}

t.test('a nebula-ts relay carries two Go 1.6.1 nodes whose direct path is blocked', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(120_000);
  const mesh = await relayMesh(t, 'ts', 'go');
  t.ok(await mesh.pingUntilReply('a', '192.168.100.12', 30_000), 'a -> b: answered through the relay');
  const before = (await status(mesh, 'relay')).counters['routine.relay.forwarded'] ?? 0;
  t.equal(await mesh.ping('a', '192.168.100.12', 10, 2), 10, 'a -> b: 10/10 pings');
  const forwarded = ((await status(mesh, 'relay')).counters['routine.relay.forwarded'] ?? 0) - before;
  t.ok(forwarded >= 20, `the relay forwarded the 20 datagrams of those pings (${forwarded})`);
  t.ok(await mesh.pingUntilReply('b', '192.168.100.11', 10_000), 'b -> a: answered through the relay');
  const table = await printRelays(mesh, 'relay');
  const a = mesh.node('a').overlayIp;
  const b = mesh.node('b').overlayIp;
  const summary = table.Relays.flatMap((h) => h.RelayForIps.map((r) => `${h.NebulaIp} ${r.Type} ${r.State} ${r.PeerIp}`)).sort();
  t.same(summary, [`${a} forwarding established ${b}`, `${b} forwarding established ${a}`], 'print-relays on the relay: one forwarding relay on each side');
});

t.test('a Go 1.6.1 relay carries two nebula-ts nodes; the tunnel goes direct when the path opens', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(120_000);
  const mesh = await relayMesh(t, 'go', 'ts');
  t.ok(await mesh.pingUntilReply('a', '192.168.100.12', 30_000), 'a -> b: answered through the relay');
  t.equal(await mesh.ping('a', '192.168.100.12', 5, 2), 5, 'a -> b: 5/5 pings');
  const relayed = await status(mesh, 'a');
  t.equal(relayed.tunnels.find((x) => x.vpnIp === '192.168.100.12')?.remote, `relay ${RELAY}`, "a's tunnel to b is relayed");
  const table = await printRelays(mesh, 'a');
  t.same(
    table.Relays.flatMap((h) => h.RelayForIps.map((r) => `${h.NebulaIp} ${r.Type} ${r.State} ${r.PeerIp}`)),
    [`${RELAY} terminal established 192.168.100.12`],
    'print-relays on a: a terminal relay to b on the tunnel to the relay',
  );

  await blockDirect(mesh, 'a', 'b', false);
  const direct = `${mesh.node('b').underlayIp}:4242`;
  await until("a's tunnel to b to go direct", () => status(mesh, 'a'), (s) => s.tunnels.find((x) => x.vpnIp === '192.168.100.12')?.remote === direct, 20_000);
  t.equal(await mesh.ping('a', '192.168.100.12', 5, 2), 5, 'a -> b: 5/5 pings on the direct path');
  const b = await status(mesh, 'b');
  t.equal(b.tunnels.find((x) => x.vpnIp === '192.168.100.11')?.remote, `${mesh.node('a').underlayIp}:4242`, "b's tunnel to a is direct too");
});
