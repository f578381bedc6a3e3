/**
 * firewall.outbound_action / inbound_action `reject` through two in-memory data paths (fixtures/memory-node.ts), as
 * Go v1.11.1 sends them: an outbound refusal is answered on our own inside (rejectInside), an inbound refusal is
 * sealed back through the tunnel to the sender (rejectOutside) without passing our outbound firewall. Each test
 * asserts what reaches the inside or the wire, and the counters.
 */
import t from 'tap';
import type { FirewallRule } from '../../src/shared/firewall';
import type { FirewallUpdate } from '../../src/shared/ipc/messages';
import { TYPE_MESSAGE } from '../../src/shared/protocol/header';
import { checksum, icmp4Packet, ipv4Packet, tcp4Packet, udp4Packet, TCP_ACK, TCP_RST, TCP_SYN } from '../firewall/fixtures/packets';
import { ANY_RULE, firewall, ip, MemoryNode, pair } from './fixtures/memory-node';

const A = { vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 } };
const B = { vpnIp: '192.168.100.2', underlay: { ip: '10.0.0.2', port: 4243 } };

const rule = (proto: number, port = 0): FirewallRule => ({ ...ANY_RULE, proto, startPort: port, endPort: port });
const ICMP_ANY = rule(1);
const UDP_53 = rule(17, 53);

function withActions(fw: FirewallUpdate, inboundAction: 'drop' | 'reject', outboundAction: 'drop' | 'reject'): FirewallUpdate {
  return { ...fw, inboundAction, outboundAction };
}

const syn = (dport: number, seq = 0x01020304): Buffer => tcp4Packet(A.vpnIp, B.vpnIp, { sport: 40000, dport, seq, flags: TCP_SYN });

t.test('outbound reject: a refused TCP SYN is answered with a RST on our own inside, nothing goes on the wire', async (t) => {
  const { a } = pair({ ...A, firewall: withActions(firewall([ANY_RULE], [UDP_53, ICMP_ANY]), 'drop', 'reject') }, B);
  a.fromInside(syn(7777));
  t.same(a.takeSent(), [], 'nothing sealed for the peer');
  t.equal(a.inside.written.length, 1, 'one packet back to the inside');
  const rst = a.inside.written[0]!;
  t.equal(rst.length, 40);
  t.equal(rst.readUInt32BE(12), ip(B.vpnIp), 'as if from the peer');
  t.equal(rst.readUInt32BE(16), ip(A.vpnIp));
  t.equal(rst.readUInt16BE(20), 7777);
  t.equal(rst.readUInt16BE(22), 40000);
  t.equal(rst.readUInt32BE(28), 0x01020305, 'acks the SYN');
  t.equal(rst[33], TCP_RST | TCP_ACK);
  t.equal(checksum(rst.subarray(0, 20)), 0);
  t.equal(a.counter('firewall.outgoing.dropped.no_rule'), 1, 'still counted as a drop');
  t.equal(a.counter('routine.firewall.outgoing.rejects_sent'), 1);
  t.equal(a.counter('routine.inside.tx_packets'), 1);
  t.equal(a.counter('routine.outside.tx_packets'), 0);

  const udp = udp4Packet(A.vpnIp, B.vpnIp, 5000, 9999, Buffer.from('not allowed'));
  a.fromInside(udp);
  const icmp = a.inside.written[1]!;
  t.equal(icmp[9], 1, 'UDP: an ICMP');
  t.same([icmp[20], icmp[21]], [3, 13], 'destination unreachable, administratively prohibited');
  t.ok(icmp.subarray(28).equals(udp.subarray(0, 28)), 'quoting the refused header and UDP header');
  t.equal(a.counter('routine.firewall.outgoing.rejects_sent'), 2);

  a.fromInside(udp4Packet(A.vpnIp, B.vpnIp, 5000, 53, Buffer.from('allowed')));
  t.equal(a.takeSent().length, 1, 'an allowed packet still leaves');
  t.equal(a.inside.written.length, 2, 'and is not answered');
});

t.test('outbound drop (the default): a refused packet is not answered', async (t) => {
  const { a } = pair({ ...A, firewall: firewall([ANY_RULE], [UDP_53]) }, B);
  a.fromInside(syn(7777));
  t.same(a.inside.written, []);
  t.same(a.takeSent(), []);
  t.equal(a.counter('firewall.outgoing.dropped.no_rule'), 1);
  t.equal(a.counter('routine.firewall.outgoing.rejects_sent'), 0);
});

t.test('inbound reject: the RST goes back through the tunnel to the sender, past our (closed) outbound firewall', async (t) => {
  // A: everything out, nothing in (the RST gets in on A's conntrack entry for its SYN, as a reply does).
  // B: only ICMP in, nothing out, inbound_action reject.
  const { a, b, deliverAtoB, deliverBtoA } = pair(
    { ...A, firewall: firewall([], [ANY_RULE]) },
    { ...B, firewall: withActions(firewall([ICMP_ANY], []), 'reject', 'drop') },
  );
  a.fromInside(syn(7777, 0xfffffff0));
  t.equal(deliverAtoB().length, 1);
  t.same(b.inside.written, [], 'refused at B');
  t.equal(b.counter('firewall.incoming.dropped.no_rule'), 1);
  const back = deliverBtoA();
  t.equal(back.length, 1, 'one datagram back');
  t.equal(back[0]!.data[0]! & 0x0f, TYPE_MESSAGE);
  t.equal(back[0]!.data.readUInt32BE(4), 0x1111, 'to A\'s index on the same tunnel');
  t.equal(b.counter('routine.firewall.incoming.rejects_sent'), 1, 'counted once the socket took it');
  t.equal(b.counter('routine.outside.tx_packets'), 0, 'not counted as forwarded data');
  t.equal(b.counter('firewall.outgoing.dropped.no_rule'), 0, 'not judged by B\'s outbound rules');
  t.equal(a.inside.written.length, 1, 'A delivers it to its inside');
  const rst = a.inside.written[0]!;
  t.equal(rst.readUInt32BE(12), ip(B.vpnIp));
  t.equal(rst.readUInt32BE(16), ip(A.vpnIp));
  t.equal(rst.readUInt16BE(20), 7777);
  t.equal(rst.readUInt32BE(28), 0xfffffff1);
  t.equal(rst[33], TCP_RST | TCP_ACK);
  t.equal(a.counter('firewall.incoming.dropped.no_rule'), 0, 'the RST passed A\'s inbound firewall on conntrack');

  // UDP: an ICMP unreachable, which A lets in only if its inbound rules allow ICMP (no conntrack entry matches it).
  const udp = udp4Packet(A.vpnIp, B.vpnIp, 5000, 9999, Buffer.from('nope'));
  a.fromInside(udp);
  deliverAtoB();
  t.equal(deliverBtoA().length, 1, 'the ICMP unreachable is sent back');
  t.equal(a.inside.written.length, 1, 'and dropped by A, whose inbound rules allow nothing');
  t.equal(a.counter('firewall.incoming.dropped.no_rule'), 1);
  t.equal(b.counter('routine.firewall.incoming.rejects_sent'), 2);
});

t.test('inbound reject: an ICMP unreachable for UDP reaches a sender that allows ICMP in', async (t) => {
  const { a, b, deliverAtoB, deliverBtoA } = pair(
    { ...A, firewall: firewall([ICMP_ANY], [ANY_RULE]) },
    { ...B, firewall: withActions(firewall([ICMP_ANY], [ANY_RULE]), 'reject', 'drop') },
  );
  const udp = udp4Packet(A.vpnIp, B.vpnIp, 5000, 9999, Buffer.from('probe'));
  a.fromInside(udp);
  deliverAtoB();
  deliverBtoA();
  t.equal(a.inside.written.length, 1);
  const icmp = a.inside.written[0]!;
  t.equal(icmp.readUInt32BE(12), ip(B.vpnIp));
  t.same([icmp[9], icmp[20], icmp[21]], [1, 3, 13]);
  t.ok(icmp.subarray(28).equals(udp.subarray(0, 28)));
  t.equal(checksum(icmp.subarray(20)), 0);
});

t.test('inbound drop (the default): nothing goes back', async (t) => {
  const { a, b, deliverAtoB } = pair(A, { ...B, firewall: firewall([ICMP_ANY], []) });
  a.fromInside(syn(7777));
  deliverAtoB();
  t.same(b.takeSent(), []);
  t.equal(b.counter('firewall.incoming.dropped.no_rule'), 1);
  t.equal(b.counter('routine.firewall.incoming.rejects_sent'), 0);
});

t.test('no answer to what Go does not answer: ICMP errors, later fragments, unparsable packets', async (t) => {
  const { a, b, deliverAtoB } = pair(
    { ...A, firewall: withActions(firewall([ANY_RULE], [rule(17), rule(1)]), 'drop', 'reject') },
    { ...B, firewall: withActions(firewall([rule(6, 80)], []), 'reject', 'drop') },
  );
  a.fromInside(icmp4Packet(A.vpnIp, B.vpnIp, 3, 3, Buffer.alloc(28)));
  a.fromInside(ipv4Packet({ src: A.vpnIp, dst: B.vpnIp, proto: 17, body: Buffer.alloc(16), flagsFragment: 0x0010 }));
  t.equal(deliverAtoB().length, 2, 'both reach B');
  t.same(b.takeSent(), [], 'neither is answered');
  t.equal(b.counter('firewall.incoming.dropped.no_rule'), 2);
  t.equal(b.counter('routine.firewall.incoming.rejects_sent'), 0);
  // Outbound, a TCP packet too short for its ports is malformed (Go: newPacket fails), not refused: no answer.
  a.fromInside(ipv4Packet({ src: A.vpnIp, dst: B.vpnIp, proto: 6, body: Buffer.alloc(2) }));
  t.equal(a.counter('routine.dropped.malformed'), 1);
  t.same(a.inside.written, []);
  t.equal(a.counter('routine.firewall.outgoing.rejects_sent'), 0);
});

t.test('outbound reject answers a packet that nothing routes (Go: no hostinfo), not one it cannot parse', async (t) => {
  const a = new MemoryNode({ ...A, firewall: withActions(firewall([ANY_RULE], [ANY_RULE]), 'drop', 'reject') });
  a.fromInside(udp4Packet(A.vpnIp, '10.5.5.5', 5000, 53, Buffer.from('where?')));
  t.equal(a.inside.written.length, 1);
  t.equal(a.inside.written[0]!.readUInt32BE(12), ip('10.5.5.5'), 'answered as from the unroutable destination');
  t.same([a.inside.written[0]![20], a.inside.written[0]![21]], [3, 13]);
  a.fromInside(ipv4Packet({ src: A.vpnIp, dst: '10.5.5.5', proto: 17, body: Buffer.alloc(3) }));
  t.equal(a.inside.written.length, 1, 'too short for ports: not answered');
  t.same(a.posted.filter((m) => m.type === 'needTunnel'), [], 'and no tunnel asked for');
  t.equal(a.counter('routine.firewall.outgoing.rejects_sent'), 1);
});

t.test('a parked packet refused when its tunnel comes up is dropped without a reject (Go: cached packets)', async (t) => {
  const a = new MemoryNode({ ...A, firewall: withActions(firewall([ANY_RULE], [UDP_53]), 'drop', 'reject') });
  a.fromInside(syn(7777));
  t.same(a.inside.written, [], 'parked, not judged yet');
  const key = Buffer.alloc(32, 9);
  a.installTunnel({
    slot: 1, localIndex: 0x3333, remoteIndex: 0x4444, vpnIp: ip(B.vpnIp), sendKey: key, recvKey: key,
    remoteIp: ip(B.underlay.ip), remotePort: B.underlay.port,
    peer: { name: 'b', groups: [], issuer: 'ca', caName: 'test-ca', ips: [ip(B.vpnIp)], subnets: [], ips6: [], subnets6: [] },
  });
  t.same(a.takeSent(), []);
  t.same(a.inside.written, []);
  t.equal(a.counter('firewall.outgoing.dropped.no_rule'), 1);
  a.fromInside(syn(7777));
  t.equal(a.inside.written.length, 1, 'the retransmission, with the tunnel up, is rejected');
});

t.test('a firewall reload switches the action both ways', async (t) => {
  const rules = firewall([ANY_RULE], [UDP_53]);
  const { a } = pair({ ...A, firewall: rules }, B);
  a.fromInside(syn(7777));
  t.same(a.inside.written, [], 'drop');
  a.datapath.control({ type: 'firewall', firewall: withActions({ ...rules, version: 2 }, 'drop', 'reject') });
  a.fromInside(syn(7777));
  t.equal(a.inside.written.length, 1, 'reject after the reload');
  a.datapath.control({ type: 'firewall', firewall: { ...rules, version: 3 } });
  a.fromInside(syn(7777));
  t.equal(a.inside.written.length, 1, 'drop again');
});

t.test('an inbound reject the socket refuses is counted as a send error, not as sent', async (t) => {
  const { a, b, deliverAtoB } = pair(A, { ...B, firewall: withActions(firewall([ICMP_ANY], []), 'reject', 'drop') });
  b.underlay.failSends = true;
  a.fromInside(syn(7777));
  deliverAtoB();
  t.equal(b.counter('routine.firewall.incoming.rejects_sent'), 0);
  t.equal(b.counter('routine.outside.tx_errors'), 1);
});
