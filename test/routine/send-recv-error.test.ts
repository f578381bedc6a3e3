/**
 * listen.send_recv_error changed by a reload reaches a running data path (Go 1.6.1 reloadSendRecvError): two data
 * paths over in-memory edges; B has lost the tunnel A still uses, so A's datagrams are for an unknown index. Under
 * `always` B answers each with a recvError that A hands to its supervisor; after a `sendRecvError: never` message B
 * stays silent; `private` answers private underlay addresses only.
 */
import t from 'tap';
import { EARLY_WAIT_MS } from '../../src/routine/early-arrivals';
import { TYPE_RECV_ERROR } from '../../src/shared/protocol/header';
import { udp4Packet } from '../native/fixtures/packets';
import { pair, sockaddr, type MemoryNode, type Pair } from './fixtures/memory-node';

const A = { vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 } };
const B = { vpnIp: '192.168.100.2', underlay: { ip: '10.0.0.2', port: 4243 } };

/** A sends one data packet on its tunnel; B (which no longer has it) holds it until it expires. */
function sendOnLostTunnel(p: Pair): void {
  p.a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('for a tunnel B forgot')));
  p.deliverAtoB();
  expire(p.b);
}

function expire(n: MemoryNode): void {
  n.now += EARLY_WAIT_MS;
  n.datapath.tick();
}

/** recvErrors A's supervisor was handed so far. */
function recvErrorsAtA(p: Pair): number {
  return p.a.posted.filter((m) => m.type === 'meta' && m.packet.type === TYPE_RECV_ERROR).length;
}

t.test('a reload to never silences recvErrors at once, and back to always brings them back', async (t) => {
  const p = pair(A, B);
  p.b.datapath.control({ type: 'tunnelDown', localIndex: p.tunnelB.localIndex });

  sendOnLostTunnel(p);
  const answers = p.deliverBtoA();
  t.equal(answers.length, 1, 'always: B answers the unknown index');
  t.equal(answers[0]!.data[0]! & 0x0f, TYPE_RECV_ERROR);
  t.equal(answers[0]!.data.readUInt32BE(4), p.tunnelA.remoteIndex, 'for the index A used');
  t.equal(recvErrorsAtA(p), 1, "A's supervisor is told (it tears the tunnel down)");

  t.equal(p.b.datapath.control({ type: 'sendRecvError', sendRecvError: 'never' }), true, 'the message keeps the routine running');
  sendOnLostTunnel(p);
  sendOnLostTunnel(p);
  t.same(p.deliverBtoA(), [], 'never: nothing on the wire');
  t.equal(p.b.counter('routine.dropped.no_tunnel'), 3, 'the datagrams were still dropped and counted');
  t.equal(p.b.counter('messages.tx.recv_error'), 1, 'only the first one was answered');
  t.equal(recvErrorsAtA(p), 1);

  p.b.datapath.control({ type: 'sendRecvError', sendRecvError: 'always' });
  sendOnLostTunnel(p);
  t.equal(p.deliverBtoA().length, 1, 'always again: answered');
  t.equal(p.b.counter('messages.tx.recv_error'), 2);
  t.equal(recvErrorsAtA(p), 2);
});

t.test('private: answers a private underlay address, not a public one', async (t) => {
  const p = pair(A, B);
  p.b.datapath.control({ type: 'tunnelDown', localIndex: p.tunnelB.localIndex });
  p.b.datapath.control({ type: 'sendRecvError', sendRecvError: 'private' });
  p.a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('x')));
  const [datagram] = p.a.takeSent();
  p.b.receive({ data: datagram!.data, addr: sockaddr('10.0.0.1', 4242) }, { data: datagram!.data, addr: sockaddr('203.0.113.9', 4242) });
  expire(p.b);
  const answered = p.b.takeSent().map((d) => d.addr.subarray(4, 8).join('.'));
  t.same(answered, ['10.0.0.1'], 'only the private sender gets a recvError');
  t.equal(p.b.counter('routine.dropped.no_tunnel'), 2);
});
