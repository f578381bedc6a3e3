/**
 * Multi-queue tun, interface configuration, routes and queue detach, each in a fresh network namespace. The native
 * calls run in an agent process inside the namespace (fixtures/agent.ts); this process inspects the namespace with
 * `ip` and sysfs and makes the assertions.
 */
import t from 'tap';
import { prereqs } from '../helpers/prereq';
import { Teardownable, execInNetns, netnsScope } from '../helpers/netns';
import { Agent } from './fixtures/agent-client';
import { parseUdp4, udp4Packet } from './fixtures/packets';

const TUN_IP = '10.200.0.1';
const PEER_IP = '10.200.0.2';

async function setup(t: Teardownable, queues: number): Promise<{ ns: string; agent: Agent; name: string; fds: number[] }> {
  const scope = await netnsScope(t);
  const ns = await scope.createNetns();
  const agent = await Agent.start(scope, ns);
  const dev = await agent.call('openTun', { name: 'ntsq%d', queues, multiQueue: queues > 1 });
  await agent.call('configure', { name: dev.name, ip: TUN_IP, mask: '255.255.255.0', mtu: 1300, txQueueLen: 1000 });
  return { ns, agent, ...dev };
}

t.test('4-queue tun: created, configured, visible, gone when the fds close', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const { ns, agent, name, fds } = await setup(t, 4);
  t.match(name, /^ntsq\d+$/, 'kernel chose a name from the pattern');
  t.equal(fds.length, 4);

  const link = (await execInNetns(ns, 'ip', ['-d', 'addr', 'show', 'dev', name])).stdout;
  t.match(link, /multi_queue numqueues 4/, 'ip -d link shows 4 queues');
  t.match(link, /pi off/, 'IFF_NO_PI');
  t.match(link, /mtu 1300 /, 'mtu set');
  t.match(link, /qlen 1000/, 'txqueuelen set');
  t.match(link, /<[^>]*\bUP\b[^>]*>/, 'device is up');
  t.match(link, /inet 10\.200\.0\.1\/24 /, 'address and netmask set');
  t.notMatch(link, /inet6/, 'IPv6 disabled: no link-local address');

  const queues = (await execInNetns(ns, 'ls', [`/sys/class/net/${name}/queues`])).stdout.split(/\s+/).filter(Boolean);
  t.same(queues.sort(), ['rx-0', 'rx-1', 'rx-2', 'rx-3', 'tx-0', 'tx-1', 'tx-2', 'tx-3'], 'sysfs has 4 rx and 4 tx queues');

  const state = await agent.call('state', { name });
  t.equal(state.mtu, 1300);
  t.equal(state.txQueueLen, 1000);
  t.ok(state.up);
  t.ok(state.index > 0);

  await agent.call('closeFds', { fds: fds.slice(0, 3) });
  t.match((await execInNetns(ns, 'ip', ['-d', 'link', 'show', 'dev', name])).stdout, /numqueues 1/, 'one queue left');
  await agent.call('closeFds', { fds: fds.slice(3) });
  await t.rejects(execInNetns(ns, 'ip', ['link', 'show', 'dev', name]), /does not exist/, 'device gone with the last fd');
});

t.test('a packet written to a queue reaches a UDP socket in the namespace', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const { agent, fds } = await setup(t, 2);
  const sock = await agent.call('udpSocket', { host: TUN_IP, port: 0, reusePort: false });
  const payload = Buffer.from('hello from the overlay');
  const pkt = udp4Packet(PEER_IP, 4444, TUN_IP, sock.port, payload);
  t.equal(await agent.call('writeTun', { fd: fds[1], packet: pkt.toString('base64') }), pkt.length, 'one write, whole packet');
  const got = await agent.call('recvUdp', { fd: sock.fd, timeoutMs: 5000 });
  t.ok(got, 'datagram received');
  t.equal(Buffer.from(got!.data, 'base64').toString(), payload.toString());
  t.equal(got!.ip, PEER_IP);
  t.equal(got!.port, 4444);
});

t.test('a datagram routed into the tun is read from a queue; routes with mtu and metric', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const { ns, agent, name, fds } = await setup(t, 2);
  const sock = await agent.call('udpSocket', { host: '0.0.0.0', port: 0, reusePort: false });

  const payload = Buffer.from('to the peer');
  t.equal(await agent.call('sendUdp', { fd: sock.fd, ip: PEER_IP, port: 9999, data: payload.toString('base64') }), payload.length);
  const read = await agent.call('readTun', { fds, timeoutMs: 5000 });
  t.ok(read, 'packet read from the tun');
  const p = parseUdp4(Buffer.from(read!.packet, 'base64'));
  t.same({ src: p.src, dst: p.dst, proto: p.proto, sport: p.sport, dport: p.dport }, {
    src: TUN_IP,
    dst: PEER_IP,
    proto: 17,
    sport: sock.port,
    dport: 9999,
  });
  t.equal(p.payload.toString(), payload.toString());

  const spec = { cidr: '10.201.0.0/16', dev: name, mtu: 1200, metric: 7 };
  await agent.call('route', { action: 'add', spec });
  const routes = (await execInNetns(ns, 'ip', ['route', 'show', 'dev', name])).stdout;
  t.match(routes, /10\.201\.0\.0\/16 .*metric 7 .*mtu 1200/, 'route has metric and mtu');
  await t.rejects(agent.call('route', { action: 'add', spec }), /ip route add 10\.201\.0\.0\/16 .*File exists/, 'clear error');
  await agent.call('route', { action: 'replace', spec: { ...spec, mtu: 1100 } });
  t.match((await execInNetns(ns, 'ip', ['route', 'show', 'dev', name])).stdout, /mtu 1100/, 'replaced');

  await agent.call('sendUdp', { fd: sock.fd, ip: '10.201.3.4', port: 53, data: payload.toString('base64') });
  const viaRoute = await agent.call('readTun', { fds, timeoutMs: 5000 });
  t.equal(viaRoute && parseUdp4(Buffer.from(viaRoute.packet, 'base64')).dst, '10.201.3.4', 'unsafe-route style route leads into the tun');
});

t.test('detached queues receive nothing; detaching twice is EINVAL', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const { ns, agent, name, fds } = await setup(t, 2);
  await agent.call('setQueueAttached', { fd: fds[0], attached: false });
  t.match((await execInNetns(ns, 'ip', ['-d', 'link', 'show', 'dev', name])).stdout, /numqueues 1 numdisabled 1/);
  await t.rejects(agent.call('setQueueAttached', { fd: fds[0], attached: false }), { code: 'EINVAL' }, 'EINVAL');

  // Many flows (source ports): all of them must land on the attached queue 1.
  for (let i = 0; i < 16; i++) {
    const s = await agent.call('udpSocket', { host: '0.0.0.0', port: 0, reusePort: false });
    await agent.call('sendUdp', { fd: s.fd, ip: PEER_IP, port: 7000 + i, data: 'AA==' });
    const r = await agent.call('readTun', { fds, timeoutMs: 5000 });
    if (r?.queue !== 1) t.fail(`flow ${i} arrived on queue ${r?.queue}`);
  }
  t.pass('16 flows all on the attached queue');

  await agent.call('setQueueAttached', { fd: fds[0], attached: true });
  t.match((await execInNetns(ns, 'ip', ['-d', 'link', 'show', 'dev', name])).stdout, /numqueues 2 numdisabled 0/);
});
