/**
 * The Prometheus endpoint (stats.type: prometheus): Nebula's metric names, routines' counters merged with the
 * supervisor's, values equal to what was sent, and stats.message_metrics deciding which messages.* are exported.
 */
import t from 'tap';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { newMesh, udpTool } from './helpers';

const PORT = 9123;

async function scrape(mesh: Mesh, node: string): Promise<Map<string, number>> {
  const text = await mesh.exec(node, process.execPath, ['-e', `fetch('http://127.0.0.1:${PORT}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const sp = line.lastIndexOf(' ');
    values.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return values;
}

/** Sum of a metric over all its label sets. */
function total(m: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}

t.test('counters merged from every routine and the supervisor, equal to what was sent', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  const stats = { type: 'prometheus', listen: `127.0.0.1:${PORT}`, path: '/metrics', namespace: 'nebula', interval: '10s', message_metrics: true };
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1', routines: 2, staticHosts: [], config: { stats } });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: '192.168.100.2', staticHosts: ['a'] });
  await mesh.add({ name: 'x', kind: 'ts', overlayIp: '192.168.100.9', staticHosts: [] });
  mesh.writeConfigs();
  await mesh.start('a');
  await mesh.start('b');
  t.ok(await mesh.pingUntilReply('b', '192.168.100.1'));

  const m0 = await scrape(mesh, 'a');
  t.equal(m0.get('nebula_info{version="nebula-ts 0.1.0",goversion="node ' + process.version + '"}'), 1, 'info gauge');
  t.ok(total(m0, 'nebula_messages_rx_handshake_ixpsk0') >= 1, 'the handshake b started was counted');
  t.equal(total(m0, 'nebula_hostmap_main_hosts'), 1);
  t.equal(total(m0, 'nebula_routines'), 2);

  // From a third namespace: 3 datagrams too short for a header, 2 data packets for an index nobody has.
  const truncated = Buffer.alloc(10, 0x11);
  const unknownIndex = Buffer.concat([Buffer.from('11000000deadbeef0000000000000009', 'hex'), Buffer.alloc(32)]);
  await udpTool(mesh, 'x', { op: 'send', to: a.underlayIp, port: 4242, packets: [truncated, truncated, truncated, unknownIndex, unknownIndex].map((p) => p.toString('hex')) });
  t.equal(await mesh.ping('b', '192.168.100.1', 4, 2), 4, 'and 4 pings through the tunnel');

  // The unknown-index packets wait up to 250 ms for a tunnel before they are answered; poll the endpoint for it.
  let m1 = await scrape(mesh, 'a');
  for (const deadline = Date.now() + 5000; total(m1, 'nebula_messages_tx_recv_error') < 2 && Date.now() < deadline; ) m1 = await scrape(mesh, 'a');
  t.equal(total(m1, 'nebula_messages_rx_invalid') - total(m0, 'nebula_messages_rx_invalid'), 3, 'messages.rx.invalid: exactly the 3 truncated datagrams');
  t.equal(total(m1, 'nebula_messages_tx_recv_error') - total(m0, 'nebula_messages_tx_recv_error'), 2, 'messages.tx.recv_error: one per unknown-index packet');
  t.equal(total(m1, 'nebula_routine_dropped_no_tunnel') - total(m0, 'nebula_routine_dropped_no_tunnel'), 2);
  t.equal(total(m1, 'nebula_routine_inside_tx_packets') - total(m0, 'nebula_routine_inside_tx_packets'), 4, 'the 4 echo requests written to the tun (summed over routines)');
  t.equal(total(m1, 'nebula_routine_outside_tx_packets') - total(m0, 'nebula_routine_outside_tx_packets'), 4, 'and the 4 replies sent');
});

t.test('without stats.message_metrics only recv_error of the messages.* counters is exported (as Nebula 1.6.1)', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1', config: { stats: { type: 'prometheus', listen: `127.0.0.1:${PORT}`, path: '/metrics', interval: '10s' } } });
  mesh.writeConfigs();
  await mesh.start('a');
  const m = await scrape(mesh, 'a');
  const names = [...m.keys()].map((k) => k.replace(/\{.*$/, ''));
  t.same(names.filter((n) => n.startsWith('messages_')).sort(), ['messages_rx_recv_error', 'messages_tx_recv_error'], 'no namespace, and only recv_error');
  t.ok(names.includes('network_packets_duplicate'), 'other counters still exported');
  t.ok(names.includes('firewall_conntrack_count'));
});

t.test('cached packets, the handshakes histogram, host map and udp gauges, equal to what happened', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  const stats = { type: 'prometheus', listen: `127.0.0.1:${PORT}`, path: '/metrics', namespace: 'nebula', interval: '10s', message_metrics: true };
  // a knows b from static_host_map and handshakes at once, but b is not up yet: with one try that handshake times
  // out (after try_interval), so the tunnel to b is only made when a's first ping needs it.
  await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1', routines: 2, staticHosts: ['b'], config: { stats, handshakes: { try_interval: '1s', retries: 1 } } });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: '192.168.100.2', staticHosts: [] });
  mesh.writeConfigs();
  await mesh.start('a');
  let m0 = await scrape(mesh, 'a');
  for (const deadline = Date.now() + 10_000; total(m0, 'nebula_handshake_manager_timed_out') < 1 && Date.now() < deadline; ) m0 = await scrape(mesh, 'a');
  t.equal(total(m0, 'nebula_handshake_manager_timed_out'), 1, 'the handshake at start timed out');
  t.equal(m0.get('nebula_handshakes{type="count"}'), 0, 'a timed-out handshake is not in the histogram');
  t.equal(total(m0, 'nebula_hostmap_pending_indexes'), 0);
  await mesh.start('b');

  // One echo request: it is parked while a handshakes with b, sent when the tunnel is up, and answered.
  t.equal(await mesh.ping('a', '192.168.100.2', 1, 5), 1, 'the parked ping was answered');
  const m1 = await scrape(mesh, 'a');
  t.equal(total(m1, 'nebula_hostinfo_cached_packets_sent'), 1, 'cached_packets.sent: the one parked echo request');
  t.equal(total(m1, 'nebula_hostinfo_cached_packets_dropped'), 0);
  t.equal(total(m1, 'nebula_routine_outside_tx_packets') - total(m0, 'nebula_routine_outside_tx_packets'), 1, 'and it is the one data packet sent');
  t.equal(total(m1, 'nebula_handshake_manager_initiated'), 2);
  t.equal(m1.get('nebula_handshakes{type="count"}'), 1, 'handshakes count: the one handshake a initiated that completed');
  t.ok(m1.get('nebula_handshakes{type="min"}')! > 0 && m1.get('nebula_handshakes{type="min"}') === m1.get('nebula_handshakes{type="max"}'), 'its duration (ns)');
  t.equal(m1.get('nebula_handshakes{type="sum"}'), m1.get('nebula_handshakes{type="max"}'));
  t.equal(total(m1, 'nebula_hostmap_main_hosts'), 1);
  t.equal(total(m1, 'nebula_hostmap_main_indexes'), 1);
  t.equal(total(m1, 'nebula_hostmap_main_remoteIndexes'), 1);
  t.equal(total(m1, 'nebula_hostmap_main_relayIndexes'), 0);
  t.equal(total(m1, 'nebula_hostmap_pending_hosts'), 0);
  t.equal(total(m1, 'nebula_hostmap_pending_indexes'), 0);

  // udp.<i>.* (SO_MEMINFO) for each routine's socket, as Nebula on Linux.
  for (const i of [0, 1]) {
    for (const f of ['rmem_alloc', 'rcvbuf', 'wmem_alloc', 'sndbuf', 'fwd_alloc', 'wmem_queued', 'optmem', 'backlog', 'drops']) {
      const v = m1.get(`nebula_udp_${i}_${f}`);
      t.ok(v !== undefined && Number.isInteger(v) && v >= 0, `udp.${i}.${f} = ${v}`);
    }
    t.ok(m1.get(`nebula_udp_${i}_rcvbuf`)! > 0, `udp.${i}.rcvbuf is the socket's receive buffer`);
  }
  t.notOk(m1.has('nebula_udp_2_rcvbuf'), 'one set per routine socket');
});
