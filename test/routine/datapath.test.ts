/**
 * The data path without root: two Datapath objects wired to each other through in-memory edges (fixtures/
 * memory-node.ts), with real crypto, real firewall, real shared-state code. Each test asserts what reaches the wire
 * or the inside, and the counters, so removing the logic under test fails it.
 */
import t from 'tap';
import { createPacketCipher } from '../../src/shared/crypto';
import { sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';
import { HEADER_LEN, SUBTYPE_TEST_REPLY, SUBTYPE_TEST_REQUEST, TYPE_MESSAGE, TYPE_RECV_ERROR, TYPE_TEST } from '../../src/shared/protocol/header';
import { sendOnTunnel, type DatagramOutbox } from '../../src/shared/tunnel/send';
import { EARLY_MAX, EARLY_WAIT_MS } from '../../src/routine/early-arrivals';
import { RECV_ERROR_BURST, RECV_ERROR_PER_SECOND } from '../../src/routine/context';
import { HANDSHAKE_BURST, HANDSHAKE_SOURCE_BURST, HANDSHAKES_PER_SOURCE_PER_SECOND } from '../../src/routine/handshake-limiter';
import { SEND_COUNTER_LIMIT } from '../../src/shared/state/tunnel-slots';
import { udp4Packet } from '../native/fixtures/packets';
import { ANY_RULE, firewall, ip, MemoryNode, pair, sockaddr, type Datagram } from './fixtures/memory-node';

const A = { vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 } };
const B = { vpnIp: '192.168.100.2', underlay: { ip: '10.0.0.2', port: 4243 } };

function header(d: Datagram): { type: number; subtype: number; index: number; counter: number } {
  return { type: d.data[0]! & 0x0f, subtype: d.data[1]!, index: d.data.readUInt32BE(4), counter: d.data.readUInt32BE(12) };
}

t.test('a packet read from A\'s inside arrives byte-identical at B\'s inside', async (t) => {
  const { a, b, deliverAtoB } = pair(A, B);
  const packet = udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('hello through the tunnel'));
  a.fromInside(packet);
  const sent = deliverAtoB();
  t.equal(sent.length, 1, 'one datagram on the wire');
  t.same(header(sent[0]!), { type: TYPE_MESSAGE, subtype: 0, index: 0x2222, counter: 3 }, 'header: message to B\'s index, first counter after the handshake');
  t.equal(sent[0]!.data.length, HEADER_LEN + packet.length + 16, 'header + ciphertext + tag');
  t.equal(sockaddrIPv4(sent[0]!.addr), ip(B.underlay.ip));
  t.equal(sockaddrPort(sent[0]!.addr), B.underlay.port);
  t.notOk(sent[0]!.data.subarray(HEADER_LEN).includes(Buffer.from('hello through')), 'payload is encrypted on the wire');
  t.equal(b.inside.written.length, 1);
  t.ok(b.inside.written[0]!.equals(packet), 'byte-identical at B\'s inside');
  t.equal(a.counter('routine.inside.rx_packets'), 1);
  t.equal(a.counter('routine.outside.tx_packets'), 1);
  t.equal(b.counter('routine.outside.rx_packets'), 1);
  t.equal(b.counter('routine.inside.tx_packets'), 1);

  // Counters advance per packet: the second one carries 4.
  a.fromInside(packet);
  t.equal(header(deliverAtoB()[0]!).counter, 4);
  t.equal(b.inside.written.length, 2);
});

t.test('a replayed datagram is dropped and counted, and gets no recvError (a replay must not tear the tunnel down)', async (t) => {
  const { a, b } = pair(A, B);
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('once')));
  const [d] = a.takeSent();
  b.receive({ data: d!.data, addr: a.address });
  b.receive({ data: d!.data, addr: a.address });
  t.equal(b.inside.written.length, 1, 'delivered once');
  t.equal(b.counter('network.packets.duplicate'), 1);
  t.same(b.takeSent(), [], 'nothing sent back');
  t.equal(b.counter('messages.tx.recv_error'), 0);
});

t.test('recvErrors are rate-limited per routine; the rest are counted, not sent', async (t) => {
  const b = new MemoryNode(B);
  const flood = (count: number, firstIndex: number) => {
    for (let i = 0; i < count; i++) {
      const d = Buffer.alloc(HEADER_LEN + 20);
      d[0] = 0x11;
      d.writeUInt32BE(firstIndex + i, 4);
      b.receive({ data: d, addr: sockaddr('10.0.0.66', 1000 + (i % 50)) });
    }
    b.now += EARLY_WAIT_MS;
    b.datapath.tick();
  };
  flood(EARLY_MAX, 0x10000); // held first, then expired: one recvError each, as far as the budget goes
  flood(EARLY_MAX + 1000, 0x20000); // the waiting room fills again, the rest is dropped unanswered
  const sent = b.takeSent().length;
  // The first expiry spends the whole burst (the bucket starts full and cannot overfill); the second gets what
  // refilled in the EARLY_WAIT_MS between them; everything else was refused.
  t.equal(sent, RECV_ERROR_BURST + Math.floor((EARLY_WAIT_MS / 1000) * RECV_ERROR_PER_SECOND), 'a burst, then the refill rate');
  t.equal(b.counter('messages.tx.recv_error'), sent);
  t.equal(b.counter('routine.dropped.recv_error_limited'), 2 * EARLY_MAX - sent);
  t.equal(b.counter('routine.dropped.early_overflow'), 1000);
  b.now += 60_000;
  flood(1, 0x30000);
  t.equal(b.takeSent().length, 1, 'the budget comes back');
});

t.test('sends the socket refuses are counted as errors, not as packets sent', async (t) => {
  const { a } = pair(A, B);
  a.underlay.failSends = true;
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('lost')));
  t.equal(a.counter('routine.outside.tx_packets'), 0);
  t.equal(a.counter('routine.outside.tx_errors'), 1);
  a.underlay.failSends = false;
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('sent')));
  t.equal(a.counter('routine.outside.tx_packets'), 1);
  t.equal(a.counter('routine.outside.tx_errors'), 1);
});

t.test('a tunnel whose counter space is spent sends nothing more and counts it', async (t) => {
  const { a, tunnelA } = pair(A, B);
  a.slots.setSendCounter(tunnelA.slot, SEND_COUNTER_LIMIT);
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('no nonce left')));
  t.same(a.takeSent(), []);
  t.equal(a.counter('routine.dropped.counter_spent'), 1);
  t.equal(a.slots.sendCounter(tunnelA.slot), SEND_COUNTER_LIMIT, 'and the counter did not wrap');
});

t.test('an outbound packet refused by the firewall is counted under its reason and never sent', async (t) => {
  const tcp80 = { ...ANY_RULE, proto: 6, startPort: 80, endPort: 80 };
  const { a } = pair({ ...A, firewall: firewall([ANY_RULE], [tcp80]) }, B);
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('not allowed out')));
  t.same(a.takeSent(), [], 'nothing on the wire');
  t.equal(a.counter('firewall.outgoing.dropped.no_rule'), 1);
  t.equal(a.counter('routine.outside.tx_packets'), 0);
});

t.test('an inbound packet refused by the firewall is counted and never reaches the inside', async (t) => {
  const icmpOnly = { ...ANY_RULE, proto: 1 };
  const { a, b, deliverAtoB } = pair(A, { ...B, firewall: firewall([icmpOnly], [ANY_RULE]) });
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('udp is not allowed in')));
  t.equal(deliverAtoB().length, 1);
  t.same(b.inside.written, []);
  t.equal(b.counter('firewall.incoming.dropped.no_rule'), 1);
});

t.test('a datagram for an unknown index is held, then answered with a recvError when it expires', async (t) => {
  const b = new MemoryNode(B);
  const from = sockaddr('10.0.0.7', 9999);
  const datagram = Buffer.alloc(HEADER_LEN + 40);
  datagram[0] = 0x11; // version 1, type message
  datagram.writeUInt32BE(0x9999, 4);
  datagram.writeUInt32BE(3, 12);
  b.receive({ data: datagram, addr: from });
  t.same(b.takeSent(), [], 'held, not answered at once');
  t.equal(b.datapath.pollTimeoutMs, EARLY_WAIT_MS, 'the loop wakes in time to expire it');

  b.now += EARLY_WAIT_MS - 1;
  b.datapath.tick();
  t.same(b.takeSent(), [], 'still held just before the deadline');

  b.now += 1;
  b.datapath.tick();
  const answers = b.takeSent();
  t.equal(answers.length, 1);
  t.same(header(answers[0]!), { type: TYPE_RECV_ERROR, subtype: 0, index: 0x9999, counter: 0 });
  t.equal(sockaddrIPv4(answers[0]!.addr), ip('10.0.0.7'));
  t.equal(sockaddrPort(answers[0]!.addr), 9999);
  t.equal(b.counter('routine.dropped.no_tunnel'), 1);
  t.equal(b.counter('messages.tx.recv_error'), 1);
});

t.test('a held datagram is delivered when its tunnel comes up in time', async (t) => {
  const { a, tunnelB } = pair(A, B);
  const packet = udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('early bird'));
  a.fromInside(packet);
  const [d] = a.takeSent();
  // A node that does not know index 0x2222 yet gets the datagram before its tunnelUp (the IPC race).
  const late = new MemoryNode(B);
  late.receive({ data: d!.data, addr: a.address });
  t.same(late.inside.written, []);
  late.now += EARLY_WAIT_MS - 1;
  late.installTunnel(tunnelB);
  t.equal(late.inside.written.length, 1);
  t.ok(late.inside.written[0]!.equals(packet), 'processed as if it had just arrived');
  late.now += 1;
  late.datapath.tick();
  t.same(late.takeSent(), [], 'and not answered with a recvError later');
  t.equal(late.counter('routine.dropped.no_tunnel'), 0);
});

t.test('a tunnel installed under a full-rate transfer: the overflow is dropped, never answered with a recvError', async (t) => {
  // The peer sends on the new index before this routine's tunnelUp (re-key or fresh tunnel under load). A recvError
  // for any of it would make the peer tear the new tunnel down; the datagrams that fit are delivered once it comes.
  const { a, tunnelB } = pair(A, B);
  const late = new MemoryNode(B);
  for (let i = 0; i < EARLY_MAX + 40; i++) {
    a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from(`datagram ${i}`)));
    for (const d of a.takeSent()) late.receive({ data: d.data, addr: a.address });
  }
  t.same(late.takeSent(), [], 'nothing answered while the tunnel is being installed');
  t.equal(late.counter('routine.dropped.early_overflow'), 40);
  late.installTunnel(tunnelB);
  t.equal(late.inside.written.length, EARLY_MAX, 'every held datagram delivered');
  t.ok(late.inside.written[EARLY_MAX - 1]!.includes(Buffer.from(`datagram ${EARLY_MAX - 1}`)), 'in arrival order');
  late.now += EARLY_WAIT_MS;
  late.datapath.tick();
  t.same(late.takeSent(), [], 'and no recvError later');
  t.equal(late.counter('messages.tx.recv_error'), 0);
  t.equal(late.counter('routine.dropped.no_tunnel'), 0);
});

t.test('a packet for a VPN IP without a tunnel is parked and a tunnel is requested', async (t) => {
  const a = new MemoryNode(A);
  const packet = udp4Packet(A.vpnIp, 5000, '192.168.100.3', 53, Buffer.from('wait for me'));
  a.fromInside(packet);
  t.same(a.takeSent(), [], 'nothing sent without a tunnel');
  t.same(a.posted.filter((m) => m.type === 'needTunnel'), [{ type: 'needTunnel', routine: 0, vpnIp: ip('192.168.100.3') }]);

  a.fromInside(packet);
  t.equal(a.posted.filter((m) => m.type === 'needTunnel').length, 1, 'asked once while the handshake runs');

  const key = Buffer.alloc(32, 3);
  a.installTunnel({
    slot: 1, localIndex: 0x3333, remoteIndex: 0x4444, vpnIp: ip('192.168.100.3'), sendKey: key, recvKey: key,
    remoteIp: ip('10.0.0.3'), remotePort: 4242,
    peer: { name: 'c', groups: [], issuer: 'ca', caName: 'test-ca', ips: [ip('192.168.100.3')], subnets: [], ips6: [], subnets6: [] },
  });
  const sent = a.takeSent();
  t.equal(sent.length, 2, 'both parked packets leave when the tunnel is installed');
  const open = createPacketCipher('aes', key);
  const plain = Buffer.alloc(packet.length);
  t.equal(open.decrypt(plain, 0, sent[0]!.data, 0, HEADER_LEN, sent[0]!.data, HEADER_LEN, sent[0]!.data.length - HEADER_LEN, 3), packet.length);
  t.ok(plain.equals(packet), 'the parked packet, sealed with the new tunnel\'s key');
  open.dispose();
});

/** An outbox that sends at once, as the supervisor's does. */
function directOutbox(): DatagramOutbox & { sent: Datagram[] } {
  const buf = Buffer.alloc(2048);
  const sent: Datagram[] = [];
  return { sent, buffer: () => buf, commit: (len, to) => void sent.push({ data: Buffer.from(buf.subarray(0, len)), addr: Buffer.from(to) }) };
}

t.test('a test request is answered with a test reply carrying the same payload', async (t) => {
  const { a, b, tunnelA, deliverBtoA } = pair(A, B);
  // A's supervisor probes the tunnel (connection manager): the shared send primitive on A's tunnel slot.
  const out = directOutbox();
  const encrypt = createPacketCipher('aes', Buffer.from(tunnelA.sendKey));
  const payload = Buffer.from('probe-payload');
  t.ok(sendOnTunnel(a.slots, { slot: tunnelA.slot, remoteIndex: tunnelA.remoteIndex, encrypt, remoteSockaddr: b.address }, TYPE_TEST, SUBTYPE_TEST_REQUEST, payload, 0, payload.length, out));
  encrypt.dispose();
  t.same(header(out.sent[0]!), { type: TYPE_TEST, subtype: SUBTYPE_TEST_REQUEST, index: 0x2222, counter: 3 });
  b.receive({ data: out.sent[0]!.data, addr: a.address });
  t.equal(b.counter('messages.rx.test_request'), 1);
  t.equal(b.counter('messages.tx.test_response'), 1);
  const replies = deliverBtoA();
  t.equal(replies.length, 1);
  t.same(header(replies[0]!), { type: TYPE_TEST, subtype: SUBTYPE_TEST_REPLY, index: 0x1111, counter: 3 });
  t.equal(replies[0]!.data.length, HEADER_LEN + payload.length + 16, 'the reply echoes the payload');
  t.equal(a.counter('messages.rx.test_response'), 1);
  t.same(a.inside.written, [], 'meta packets never reach the inside');

  // The data path and the supervisor share one counter sequence on the tunnel: A's next data packet carries 4.
  a.fromInside(udp4Packet(A.vpnIp, 1, B.vpnIp, 2, Buffer.from('x')));
  t.equal(header(a.takeSent()[0]!).counter, 4);
});

t.test('counters past 2^32 go on the wire as 64 bits and are accepted by the peer', async (t) => {
  const { a, b, tunnelA, deliverAtoB } = pair(A, B);
  a.slots.setSendCounter(tunnelA.slot, 2 ** 32 - 2);
  const packet = udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('high counters'));
  for (let i = 0; i < 3; i++) a.fromInside(packet);
  const sent = deliverAtoB();
  t.same(
    sent.map((d) => d.data.readUInt32BE(8) * 2 ** 32 + d.data.readUInt32BE(12)),
    [2 ** 32 - 1, 2 ** 32 + 1, 2 ** 32 + 2],
    'hi:lo across the carry (hi+1:0 is skipped, never reused)',
  );
  t.equal(b.inside.written.length, 3, 'all three decrypt and pass the replay window');
});

t.test('closeTunnel and lighthouse messages are decrypted and handed to the supervisor', async (t) => {
  const { a, b, tunnelA } = pair(A, B);
  const out = directOutbox();
  const encrypt = createPacketCipher('aes', Buffer.from(tunnelA.sendKey));
  t.ok(sendOnTunnel(a.slots, { slot: tunnelA.slot, remoteIndex: tunnelA.remoteIndex, encrypt, remoteSockaddr: b.address }, 5, 0, Buffer.alloc(0), 0, 0, out));
  encrypt.dispose();
  b.receive({ data: out.sent[0]!.data, addr: a.address });
  const metas = b.posted.filter((m) => m.type === 'meta');
  t.equal(metas.length, 1);
  const meta = metas[0]!;
  t.ok(meta.type === 'meta' && meta.packet.type === 5 && meta.packet.localIndex === 0x2222 && meta.packet.fromIp === ip(A.underlay.ip));
  t.equal(b.counter('messages.rx.close_tunnel'), 1);
});

t.test('roaming: an authenticated packet from a new address moves the tunnel and tells the supervisor', async (t) => {
  const { a, b } = pair(A, B);
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('from a new place')));
  const [d] = a.takeSent();
  const moved = sockaddr('10.0.0.9', 5555);
  b.receive({ data: d!.data, addr: moved });
  t.same(b.posted.filter((m) => m.type === 'roamed'), [{ type: 'roamed', routine: 0, localIndex: 0x2222, remoteIp: ip('10.0.0.9'), remotePort: 5555 }]);
  b.fromInside(udp4Packet(B.vpnIp, 53, A.vpnIp, 5000, Buffer.from('reply')));
  const [reply] = b.takeSent();
  t.equal(sockaddrIPv4(reply!.addr), ip('10.0.0.9'), 'replies follow the peer');
  t.equal(sockaddrPort(reply!.addr), 5555);

  // A forged datagram (bad tag) from yet another address moves nothing.
  const forged = Buffer.from(d!.data);
  forged.writeUInt32BE(999, 12);
  forged[forged.length - 1]! ^= 1;
  b.receive({ data: forged, addr: sockaddr('10.0.0.66', 6666) });
  t.equal(b.posted.filter((m) => m.type === 'roamed').length, 1);
  t.equal(b.counter('routine.dropped.decrypt_failed'), 1);
});

t.test('with the inside disabled, a ping to our own VPN IP is answered through the tunnel', async (t) => {
  const { a, b, deliverAtoB, deliverBtoA } = pair(A, { ...B, insideDisabled: true });
  const echo = Buffer.alloc(28);
  echo[0] = 0x45;
  echo.writeUInt16BE(28, 2);
  echo[8] = 64;
  echo[9] = 1;
  echo.writeUInt32BE(ip(A.vpnIp), 12);
  echo.writeUInt32BE(ip(B.vpnIp), 16);
  echo[20] = 8; // echo request
  echo.writeUInt16BE(0xf7ff, 22); // checksum of an all-zero echo request
  a.fromInside(echo);
  deliverAtoB();
  t.equal(b.counter('messages.rx.message'), 1);
  t.equal(deliverBtoA().length, 1);
  t.equal(a.inside.written.length, 1);
  const reply = a.inside.written[0]!;
  t.equal(reply[20], 0, 'echo reply');
  t.equal(reply.readUInt32BE(12), ip(B.vpnIp));
  t.equal(reply.readUInt32BE(16), ip(A.vpnIp));
  t.equal(reply.readUInt16BE(22), 0xffff, 'checksum patched for type 0');
});

t.test('handshakes are handed up at a bounded rate per source and in total; the rest are counted', async (t) => {
  const b = new MemoryNode(B);
  const stage1 = Buffer.alloc(HEADER_LEN + 100);
  stage1[0] = 0x10; // version 1, type handshake
  stage1.writeUInt32BE(1, 12);
  const fromOne = sockaddr('10.0.0.66', 4242);
  for (let i = 0; i < 200; i++) b.receive({ data: stage1, addr: fromOne });
  const handedUp = () => b.posted.filter((m) => m.type === 'meta').length;
  t.equal(handedUp(), HANDSHAKE_SOURCE_BURST, 'one source: its burst, no more');
  t.equal(b.counter('routine.dropped.handshake_limited'), 200 - HANDSHAKE_SOURCE_BURST);
  t.equal(b.counter('messages.rx.handshake_ixpsk0'), 200, 'every one is still counted as received');
  b.receive({ data: stage1, addr: sockaddr('10.0.0.67', 4242) });
  t.equal(handedUp(), HANDSHAKE_SOURCE_BURST + 1, 'another source is not starved by the first');
  b.now += 1000;
  for (let i = 0; i < 100; i++) b.receive({ data: stage1, addr: fromOne });
  t.equal(handedUp(), HANDSHAKE_SOURCE_BURST + 1 + HANDSHAKES_PER_SOURCE_PER_SECOND, 'a second later, the refill rate');

  // Many sources at once: the total bound holds.
  const c = new MemoryNode(B);
  for (let i = 0; i < HANDSHAKE_BURST + 1000; i++) c.receive({ data: stage1, addr: sockaddr(`10.${(i >> 8) & 255}.${i & 255}.1`, 4242) });
  t.equal(c.posted.filter((m) => m.type === 'meta').length, HANDSHAKE_BURST, 'in total, the burst');
});
