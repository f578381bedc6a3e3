/**
 * Issue 9 acceptance, NAT: two nodes, each behind its own NAT router (nftables masquerade: endpoint-independent
 * mapping, conntrack's endpoint-dependent filtering), and a nebula-ts lighthouse on the public side. Neither node
 * can be reached from outside until it has sent to the other: they find each other through the lighthouse, punch
 * (punchy.punch, punchy.respond) and then talk directly, router to router.
 * Run for two nebula-ts nodes, and for a Go nebula 1.6.1 node that reaches a nebula-ts node (which is then the one
 * told to punch). The routers drop unsolicited WAN input, as home routers do (src/testbed/nat.ts says why it matters).
 *
 * Shown: the lighthouse learned each node at its router's public address while the node reported its private one
 * (the NAT is in the path, and its masquerade rule counted packets); they ping each other; the nebula-ts side's
 * tunnel goes to the other router's public address as the lighthouse learned it; the lighthouse's interface counts
 * far fewer datagrams than the two nodes exchanged.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { prereqs } from '../helpers/prereq';
import type { Mesh, NodeKind } from '../../src/testbed/netns-mesh';
import { masqueradedPackets, putBehindNat, type NatRouter } from '../../src/testbed/nat';
import { newMesh, ROOT, status, until } from './helpers';

const LH = '192.168.100.1';
const A = '192.168.100.11';
const B = '192.168.100.12';
const CLIENT = { lighthouse: { am_lighthouse: false, hosts: [LH], interval: 1 }, punchy: { punch: true, respond: true } };

interface AddrMapEntry {
  vpnIp: string;
  learned: string[];
  reported: string[];
}

/** `nebula-ctl list-lighthouse-addrmap -json` of the lighthouse, reduced to what each host said of itself. */
async function addrMap(mesh: Mesh): Promise<AddrMapEntry[]> {
  const out = await mesh.exec('lh', process.execPath, [path.join(ROOT, 'dist/ctl/main.js'), '-socket', mesh.node('lh').controlSocket, 'list-lighthouse-addrmap', '-json']);
  const rows = JSON.parse(out) as Array<{ vpnIp: string; addrs: Record<string, { learned?: Array<{ ip: string; port: number }>; reported?: Array<{ ip: string; port: number }> }> }>;
  const text = (l: Array<{ ip: string; port: number }> | undefined): string[] => (l ?? []).map((a) => `${a.ip}:${a.port}`);
  return rows.map((r) => ({ vpnIp: r.vpnIp, learned: text(r.addrs[r.vpnIp]?.learned), reported: text(r.addrs[r.vpnIp]?.reported) }));
}

async function rxPackets(mesh: Mesh, name: string): Promise<number> {
  return Number((await mesh.exec(name, 'cat', ['/sys/class/net/eth0/statistics/rx_packets'])).trim());
}

/** Node `a` is nebula-ts, `b` is `kindB`; `initiator` sends the first packet (so it queries, the other is punched). */
async function natPunch(t: Test, kindB: NodeKind, initiator: 'a' | 'b'): Promise<void> {
  const mesh = await newMesh(t);
  await mesh.add({ name: 'lh', kind: 'ts', overlayIp: LH, staticHosts: [], config: { lighthouse: { am_lighthouse: true }, tun: { disabled: true } } });
  await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, staticHosts: ['lh'], config: CLIENT });
  await mesh.add({ name: 'b', kind: kindB, overlayIp: B, staticHosts: ['lh'], config: CLIENT });
  const routers: Record<'a' | 'b', NatRouter> = { a: await putBehindNat(mesh, 'a', t), b: await putBehindNat(mesh, 'b', t) };
  mesh.writeConfigs();
  await mesh.start('lh');
  await Promise.all(['a', 'b'].map((n) => mesh.start(n)));

  // Nothing is listening on the routers' public side until the nodes have sent: this is punching or nothing.
  const [from, to, toIp] = initiator === 'a' ? (['a', 'b', B] as const) : (['b', 'a', A] as const);
  t.ok(await mesh.pingUntilReply(from, toIp, 20_000), `${from} -> ${to}: found through the lighthouse, punched, ping answered`);
  t.equal(await mesh.ping(to, initiator === 'a' ? A : B, 5, 2), 5, `${to} -> ${from}: 5/5 pings`);

  // The NAT is in the path: the lighthouse learned each node at its router's public address (the tunnel's source),
  // while the node reported only its private one (lighthouse.interval 1: normally there by now, so one nebula-ctl).
  const entry = (m: AddrMapEntry[], vpnIp: string): AddrMapEntry | undefined => m.find((e) => e.vpnIp === vpnIp);
  const map = await until('both nodes learned and reported in the lighthouse map', () => addrMap(mesh), (m) => [A, B].every((ip) => Boolean(entry(m, ip)?.learned.length && entry(m, ip)?.reported.length)), 10_000, 200);
  const publicAddr = { a: entry(map, A)!.learned[0]!, b: entry(map, B)!.learned[0]! };
  for (const [n, vpnIp] of [['a', A], ['b', B]] as const) {
    const e = entry(map, vpnIp)!;
    t.match(publicAddr[n], new RegExp(`^${routers[n].publicIp.replace(/\./g, '\\.')}:\\d+$`), `${n}: the lighthouse learned its router's public address`);
    t.ok(e.reported.includes(`${routers[n].privateIp}:4242`), `${n}: reported its private address ${routers[n].privateIp}:4242 (got ${e.reported.join(', ')})`);
    t.notOk(e.reported.some((r) => r.startsWith(`${routers[n].publicIp}:`)), `${n}: knows nothing of its public address itself`);
    t.ok((await masqueradedPackets(routers[n])) > 0, `${n}'s router masqueraded its flows`);
  }

  const aStatus = await status(mesh, 'a');
  t.equal(aStatus.tunnels.find((x) => x.vpnIp === B)?.remote, publicAddr.b, "a's tunnel to b goes to b's router, not through the lighthouse");
  if (kindB === 'ts') {
    const bStatus = await status(mesh, 'b');
    t.equal(bStatus.tunnels.find((x) => x.vpnIp === A)?.remote, publicAddr.a, "b's tunnel to a goes to a's router");
  }
  // The queried node (nebula-ts in both cases) was told by the lighthouse to punch towards the querier, and did.
  const punched = (await status(mesh, to)).counters;
  t.ok((punched['lighthouse.rx.HostPunchNotification'] ?? 0) >= 1, `${to} got a punch notification from the lighthouse`);
  t.ok((punched['messages.tx.holepunch'] ?? 0) >= 1, `${to} punched (messages.tx.holepunch ${punched['messages.tx.holepunch']})`);

  // 200 quick pings are 400 datagrams between a and b; the lighthouse's own traffic meanwhile is a handful.
  const before = await rxPackets(mesh, 'lh');
  const out = await mesh.exec(from, 'ping', ['-c', '200', '-i', '0.005', '-W', '2', '-q', toIp]);
  t.match(out, /200 packets transmitted, 200 received/, `${from} -> ${to}: 200/200 quick pings`);
  const through = (await rxPackets(mesh, 'lh')) - before;
  t.ok(through < 100, `the lighthouse's interface received ${through} datagrams while a and b exchanged 400: the data went direct`);
}

t.test('NAT punching: two nebula-ts nodes behind their own NATs, nebula-ts lighthouse', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nft'])) return;
  t.setTimeout(90_000);
  await natPunch(t, 'ts', 'a');
});

// The Go node asks: the nebula-ts node is the one the lighthouse tells to punch (and to respond).
t.test('NAT punching: a Go 1.6.1 node reaches a nebula-ts node, both behind their own NATs, nebula-ts lighthouse', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nft', 'nebula'])) return;
  t.setTimeout(90_000);
  await natPunch(t, 'go', 'b');
});
