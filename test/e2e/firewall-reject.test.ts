/**
 * firewall.outbound_action / inbound_action `reject` seen from the applications at both ends (Nebula 1.7+):
 * a TCP connect to a refused port fails at once with ECONNREFUSED (a RST came back) and a UDP datagram gets an ICMP
 * "administratively prohibited" (EHOSTUNREACH on a connected socket), instead of the silence of a drop.
 * - outbound: a's own outbound rules refuse the port: the answer comes from a's own tun;
 * - inbound: b's inbound rules refuse it: b seals the answer back through the tunnel, to a nebula-ts peer and to a
 *   Go 1.6.1 peer (which lets the RST in on its conntrack, and the ICMP in on its rules).
 */
import t from 'tap';
import { prereqs } from '../helpers/prereq';
import { jsonLines, newMesh, spawnFixture, status } from './helpers';
import type { Mesh } from '../../src/testbed/netns-mesh';

const A = '192.168.100.1';
const B = '192.168.100.2';
const GO = '192.168.100.3';

interface ProbeResult {
  proto: string;
  port: number;
  outcome: string;
}

async function probe(mesh: Mesh, from: string, probes: Array<{ proto: 'tcp' | 'udp'; port: number }>): Promise<ProbeResult[]> {
  const arg = { probes: probes.map((p) => ({ ...p, host: B })), timeoutMs: 3000 };
  const res = await jsonLines(spawnFixture(mesh, from, 'reject-probe.ts', [JSON.stringify(arg)])).first(() => true, 20_000);
  if (res.error) throw new Error(`reject-probe: ${String(res.error)}`);
  return res.results as ProbeResult[];
}

t.test('reject on the wire: RST for TCP, ICMP unreachable for UDP, outbound and inbound, to nebula-ts and Go peers', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const mesh = await newMesh(t);
  await mesh.add({
    name: 'a',
    kind: 'ts',
    overlayIp: A,
    config: {
      firewall: {
        outbound_action: 'reject',
        outbound: [
          { port: 'any', proto: 'icmp', host: 'any' },
          { port: 7777, proto: 'tcp', host: 'any' },
          { port: 7778, proto: 'udp', host: 'any' },
        ],
      },
    },
  });
  await mesh.add({
    name: 'b',
    kind: 'ts',
    overlayIp: B,
    config: { firewall: { inbound_action: 'reject', inbound: [{ port: 'any', proto: 'icmp', host: 'any' }] } },
  });
  await mesh.add({ name: 'go', kind: 'go', overlayIp: GO, staticHosts: ['b'] });
  mesh.writeConfigs();
  await Promise.all(['a', 'b', 'go'].map((n) => mesh.start(n)));
  // Tunnels first: a packet for a peer without one is parked, and a parked packet refused later gets no answer (Go).
  t.same(await Promise.all([mesh.pingUntilReply('a', B), mesh.pingUntilReply('go', B)]), [true, true], 'a and go have a tunnel to b');

  const [fromA, fromGo] = await Promise.all([
    probe(mesh, 'a', [
      { proto: 'tcp', port: 7777 },
      { proto: 'udp', port: 7778 },
      { proto: 'tcp', port: 9999 },
      { proto: 'udp', port: 9998 },
    ]),
    probe(mesh, 'go', [
      { proto: 'tcp', port: 7777 },
      { proto: 'udp', port: 7778 },
    ]),
  ]);
  t.same(
    fromA.map((r) => `${r.proto}/${r.port} ${r.outcome}`),
    ['tcp/7777 ECONNREFUSED', 'udp/7778 EHOSTUNREACH', 'tcp/9999 ECONNREFUSED', 'udp/9998 EHOSTUNREACH'],
    'b rejects 7777/7778 inbound, a rejects 9999/9998 outbound',
  );
  t.same(fromGo.map((r) => `${r.proto}/${r.port} ${r.outcome}`), ['tcp/7777 ECONNREFUSED', 'udp/7778 EHOSTUNREACH'], 'a Go 1.6.1 peer gets them too');

  const sa = await status(mesh, 'a');
  t.equal(sa.counters['firewall.outgoing.dropped.no_rule'], 2, 'a refused two packets outbound');
  t.equal(sa.counters['routine.firewall.outgoing.rejects_sent'], 2, 'and answered both on its inside');
  t.equal(sa.counters['routine.firewall.incoming.rejects_sent'], 0);
  const sb = await status(mesh, 'b');
  t.equal(sb.counters['firewall.incoming.dropped.no_rule'], 4, 'b refused two packets from each peer');
  t.equal(sb.counters['routine.firewall.incoming.rejects_sent'], 4, 'and sent four answers back through the tunnels');
  t.equal(sb.counters['routine.firewall.outgoing.rejects_sent'], 0);
});
