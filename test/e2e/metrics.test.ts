/**
 * The Prometheus endpoint (stats.type: prometheus): the supervisor-side series (cached packets, the handshakes
 * histogram, host map and udp gauges) equal to what happened. Names against Go 1.6.1, meta and lighthouse counters
 * against an underlay capture, the message_metrics gate and graphite: metrics-go.test.ts.
 */
import t from 'tap';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { newMesh } from './helpers';

const PORT = 9123;

/** GET /metrics inside the node's namespace (bash's /dev/tcp: cheaper than starting node for each scrape). */
async function scrape(mesh: Mesh, node: string): Promise<Map<string, number>> {
  const response = await mesh.exec(node, 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${PORT}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`]);
  const text = response.slice(response.indexOf('\r\n\r\n') + 4);
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
