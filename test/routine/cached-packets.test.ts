/**
 * Go's `hostinfo.cached_packets.{sent,dropped}` in the routines: packets parked while their tunnel is made are
 * counted as sent when the tunnel comes up (as many as leave), and as dropped when the per-host cache is full or
 * the handshake never completes, with the in-memory data path (fixtures/memory-node.ts).
 */
import t from 'tap';
import { MAX_PARKED_PER_HOST } from '../../src/routine/outbound-parking';
import type { TunnelInstall } from '../../src/shared/ipc/messages';
import { udp4Packet } from '../native/fixtures/packets';
import { ip, MemoryNode, peer } from './fixtures/memory-node';

const A = { vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 } };
const C_VPN = '192.168.100.3';

function tunnelToC(): TunnelInstall {
  const key = Buffer.alloc(32, 3);
  return { slot: 1, localIndex: 0x3333, remoteIndex: 0x4444, vpnIp: ip(C_VPN), sendKey: key, recvKey: key, remoteIp: ip('10.0.0.3'), remotePort: 4242, peer: peer('c', C_VPN) };
}

const packet = (n: number): Buffer => udp4Packet(A.vpnIp, 5000, C_VPN, 53, Buffer.from(`parked ${n}`));

t.test('packets parked during the handshake are counted as sent when the tunnel comes up', async (t) => {
  const a = new MemoryNode(A);
  for (let i = 0; i < 3; i++) a.fromInside(packet(i));
  t.equal(a.counter('hostinfo.cached_packets.sent'), 0, 'nothing sent yet');
  a.installTunnel(tunnelToC());
  const sent = a.takeSent();
  t.equal(sent.length, 3);
  t.equal(a.counter('hostinfo.cached_packets.sent'), sent.length, 'equal to what left');
  t.equal(a.counter('hostinfo.cached_packets.dropped'), 0);
  a.fromInside(packet(9));
  t.equal(a.takeSent().length, 1);
  t.equal(a.counter('hostinfo.cached_packets.sent'), 3, 'a packet on an established tunnel is not a cached one');
});

t.test('a full per-host cache drops and counts the overflow', async (t) => {
  const a = new MemoryNode(A);
  for (let i = 0; i < MAX_PARKED_PER_HOST + 5; i++) a.fromInside(packet(i));
  t.equal(a.counter('hostinfo.cached_packets.dropped'), 5);
  t.equal(a.counter('routine.dropped.parked_overflow'), 5, 'our own series unchanged');
  a.installTunnel(tunnelToC());
  t.equal(a.takeSent().length, MAX_PARKED_PER_HOST);
  t.equal(a.counter('hostinfo.cached_packets.sent'), MAX_PARKED_PER_HOST);
});

t.test('packets whose handshake never completes are dropped and counted when they expire', async (t) => {
  const a = new MemoryNode(A);
  for (let i = 0; i < 4; i++) a.fromInside(packet(i));
  a.now += 5_000;
  a.datapath.tick();
  t.equal(a.counter('hostinfo.cached_packets.dropped'), 0, 'still waiting');
  a.now += 6_000;
  a.datapath.tick();
  t.equal(a.counter('hostinfo.cached_packets.dropped'), 4, 'all four expired');
  a.installTunnel(tunnelToC());
  t.same(a.takeSent(), [], 'nothing left to send');
  t.equal(a.counter('hostinfo.cached_packets.sent'), 0);
});
