/**
 * Relay frames in the data path (nebula-spec §5.8; Go 1.6.1's outside.go MessageRelay and interface.go SendVia):
 * src/shared/tunnel/send.ts (sending on a relayed tunnel, sendRelayFrame), src/routine/relay-frames.ts and the relay
 * path of outside-to-inside.ts, driven through three in-memory data paths A, R, B (fixtures/relay-trio.ts) with
 * real crypto and real shared state. What goes on the wire is opened here with node:crypto and the peers' keys, not
 * with the code under test.
 */
import t from 'tap';
import { EARLY_WAIT_MS } from '../../src/routine/early-arrivals';
import { createPacketCipher } from '../../src/shared/crypto';
import { sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';
import { REPLAY_WINDOW } from '../../src/shared/protocol/replay-window';
import { SEND_COUNTER_LIMIT } from '../../src/shared/state/tunnel-slots';
import { sendOnTunnel, sendRelayFrame, type DatagramOutbox, type SendableTunnel } from '../../src/shared/tunnel/send';
import { udp4Packet } from '../native/fixtures/packets';
import { ip, MemoryNode, sockaddr } from './fixtures/memory-node';
import { gcmOpen, header, IDX, openFrame, parseHeader, sealFrame, sealMessage, trio, type Trio } from './fixtures/relay-trio';

const A_VPN = '192.168.100.1';
const B_VPN = '192.168.100.2';
const R_VPN = '192.168.100.9';
const TAG = 16;

const packetAB = (text: string) => udp4Packet(A_VPN, 5000, B_VPN, 53, Buffer.from(text));
const packetBA = (text: string) => udp4Packet(B_VPN, 53, A_VPN, 5000, Buffer.from(text));

/** A's first frame for B (what A sends when its inside hands it `packet`), taken off A's socket. */
function frameFromA(x: Trio, packet: Buffer): Buffer {
  x.a.fromInside(packet);
  const sent = x.a.takeSent();
  if (sent.length !== 1) throw new Error(`A sent ${sent.length} datagrams`);
  return sent[0]!.data;
}

const roamed = (n: MemoryNode) => n.posted.filter((m) => m.type === 'roamed');

t.test('A sends on its relayed tunnel: a frame to R under R\'s index and the A-R counter, the inner sealed for B', async (t) => {
  const x = trio();
  x.a.slots.setSendCounter(x.aToR.slot, 100); // the two tunnels' counters apart, so each is seen where it belongs
  const packet = packetAB('through the relay');
  x.a.fromInside(packet);
  const sent = x.a.takeSent();
  t.equal(sent.length, 1);
  const d = sent[0]!;
  t.equal(sockaddrIPv4(d.addr), ip('10.0.0.9'), 'to R\'s underlay address');
  t.equal(sockaddrPort(d.addr), 4249);
  t.equal(d.data.length, 16 + 16 + packet.length + TAG + TAG, 'outer header, inner header, ciphertext, inner tag, outer tag');
  t.same(parseHeader(d.data), { version: 1, type: 1, subtype: 1, reserved: 0, index: IDX.iRA, counter: 101 }, 'outer: message/relay, R\'s relay index, A-R counter');
  t.same(parseHeader(d.data, 16), { version: 1, type: 1, subtype: 0, reserved: 0, index: x.aToB.remoteIndex, counter: 3 }, 'inner: message to B\'s tunnel index, A-B counter');

  const inner = openFrame(x.rToA.recvKey, d.data);
  t.ok(inner, 'the outer tag verifies with the A-R key (empty plaintext, AD = outer header + inner datagram)');
  t.equal(openFrame(x.bToA.recvKey, d.data), undefined, 'and not with another key');
  const plain = gcmOpen(x.bToA.recvKey, 3, inner!.subarray(0, 16), inner!.subarray(16));
  t.ok(plain?.equals(packet), 'the inner datagram decrypts with B\'s key for A, under the inner counter');
  t.notOk(d.data.includes(Buffer.from('through the relay')), 'the payload is not in clear for R');

  t.equal(x.a.slots.sendCounter(x.aToR.slot), 101, 'the relay tunnel\'s counter was taken');
  t.equal(x.a.slots.sendCounter(x.aToB.slot), 3, 'and the relayed tunnel\'s');
  x.a.fromInside(packet);
  const second = x.a.takeSent()[0]!.data;
  t.same([parseHeader(second).counter, parseHeader(second, 16).counter], [102, 4], 'both advance per packet');
});

t.test('R forwards: the inner datagram unchanged, in a new frame on the tunnel to B under B\'s index and the R-B counter', async (t) => {
  const x = trio();
  const frame = frameFromA(x, packetAB('forward me'));
  x.r.receive({ data: frame, addr: x.a.address });
  const out = x.r.takeSent();
  t.equal(out.length, 1);
  const d = out[0]!;
  t.equal(sockaddrIPv4(d.addr), ip('10.0.0.2'), 'to B\'s underlay address');
  t.same(parseHeader(d.data), { version: 1, type: 1, subtype: 1, reserved: 0, index: IDX.iB, counter: 3 }, 'B\'s relay index, R-B counter');
  const inner = openFrame(x.bToR.recvKey, d.data);
  t.ok(inner?.equals(frame.subarray(16, frame.length - TAG)), 'the inner datagram byte for byte, tag by the R-B key');
  t.equal(x.r.counter('routine.relay.forwarded'), 1);
  t.equal(x.r.inside.written.length, 0, 'nothing for R\'s own inside');
  t.equal(x.r.slots.sendCounter(x.rToB.slot), 3);
});

t.test('end to end, both ways: byte-identical at each inside; the relayed tunnels stay relayed; nothing sent to 0.0.0.0', async (t) => {
  const x = trio();
  const ping = packetAB('ping');
  x.a.fromInside(ping);
  const first = x.pump();
  t.same(first.moved.map((m) => `${m.from}>${m.to}`), ['a>r', 'r>b']);
  t.equal(x.b.inside.written.length, 1);
  t.ok(x.b.inside.written[0]!.equals(ping), 'at B\'s inside');

  const pong = packetBA('pong');
  x.b.fromInside(pong);
  const back = x.pump();
  t.same(back.moved.map((m) => `${m.from}>${m.to}`), ['b>r', 'r>a'], 'B answers through R: its tunnel did not roam to R\'s address');
  t.same(parseHeader(back.moved[0]!.data), { version: 1, type: 1, subtype: 1, reserved: 0, index: IDX.iRB, counter: 3 });
  t.ok(x.a.inside.written[0]?.equals(pong), 'at A\'s inside');
  t.same([...first.lost, ...back.lost], [], 'nothing sent straight to a relayed tunnel\'s empty address');
  t.same([roamed(x.a), roamed(x.b), roamed(x.r)], [[], [], []], 'no roaming anywhere');
  t.same([x.a.counter('routine.relay.rx_terminal'), x.b.counter('routine.relay.rx_terminal'), x.r.counter('routine.relay.forwarded')], [1, 1, 2]);
  t.same([x.a.counter('routine.outside.rx_packets'), x.b.counter('routine.outside.rx_packets')], [1, 1]);
});

t.test('terminal: an inner datagram for an unknown tunnel index is dropped and counted, never held, never answered', async (t) => {
  const x = trio();
  const inner = sealMessage(x.aToB.sendKey, 0xdead, 3, packetAB('lost'));
  x.b.receive({ data: sealFrame(x.rToB.sendKey, IDX.iB, 3, inner), addr: x.r.address });
  t.equal(x.b.counter('routine.relay.rx_terminal'), 1, 'the frame itself was good');
  t.equal(x.b.counter('routine.dropped.no_tunnel'), 1);
  x.b.now += EARLY_WAIT_MS * 2;
  x.b.datapath.tick();
  t.same(x.b.takeSent(), [], 'no recvError, now or after the early-arrival wait (there is no address to send it to)');
  t.equal(x.b.counter('messages.tx.recv_error'), 0);
  t.equal(x.b.counter('routine.dropped.no_tunnel'), 1, 'not held for later either');
});

t.test('a frame whose tag does not verify is dropped and counted, and does not move the replay window', async (t) => {
  const x = trio();
  const frame = frameFromA(x, packetAB('genuine'));
  const tampered = Buffer.from(frame);
  tampered[40] ^= 1; // inside the inner datagram: covered by the outer tag
  x.r.receive({ data: tampered, addr: x.a.address });
  const badTag = Buffer.from(frame);
  badTag[badTag.length - 1] ^= 0x80;
  x.r.receive({ data: badTag, addr: x.a.address });
  const forgedAhead = sealFrame(Buffer.alloc(32, 7), IDX.iRA, 3 + REPLAY_WINDOW + 100, frame.subarray(16, frame.length - TAG));
  x.r.receive({ data: forgedAhead, addr: sockaddr('10.0.0.66', 999) });
  t.equal(x.r.counter('routine.dropped.decrypt_failed'), 3);
  t.same(x.r.takeSent(), [], 'nothing forwarded');
  t.same(roamed(x.r), [], 'an unauthenticated frame from a new address moves nothing');

  x.r.receive({ data: frame, addr: x.a.address });
  t.equal(x.r.takeSent().length, 1, 'the genuine frame with the same counter still goes through');
  t.equal(x.r.counter('routine.relay.forwarded'), 1);
});

t.test('a replayed frame (same outer counter) is dropped as a duplicate, forwarded once', async (t) => {
  const x = trio();
  const frame = frameFromA(x, packetAB('once'));
  x.r.receive({ data: frame, addr: x.a.address });
  x.r.receive({ data: frame, addr: x.a.address });
  t.equal(x.r.takeSent().length, 1);
  t.equal(x.r.counter('routine.relay.forwarded'), 1);
  t.equal(x.r.counter('network.packets.duplicate'), 1);

  // At the terminal end too.
  x.b.receive({ data: sealFrame(x.rToB.sendKey, IDX.iB, 9, sealMessage(x.aToB.sendKey, x.aToB.remoteIndex, 9, packetAB('x'))), addr: x.r.address });
  x.b.receive({ data: sealFrame(x.rToB.sendKey, IDX.iB, 9, sealMessage(x.aToB.sendKey, x.aToB.remoteIndex, 10, packetAB('y'))), addr: x.r.address });
  t.equal(x.b.inside.written.length, 1, 'the second frame reuses outer counter 9: dropped before its content is looked at');
  t.equal(x.b.counter('network.packets.duplicate'), 1);
});

t.test('a frame for an unknown relay index, or too short for a tag, is dropped and counted; no recvError', async (t) => {
  const x = trio();
  const inner = sealMessage(x.aToB.sendKey, x.aToB.remoteIndex, 3, packetAB('x'));
  x.r.receive({ data: sealFrame(x.aToR.sendKey, 0x999, 3, inner), addr: x.a.address });
  t.equal(x.r.counter('routine.dropped.no_tunnel'), 1);
  x.r.receive({ data: Buffer.concat([header(1, 1, IDX.iRA, 4), Buffer.alloc(TAG - 1)]), addr: x.a.address });
  t.equal(x.r.counter('routine.dropped.malformed'), 1);
  x.r.now += EARLY_WAIT_MS * 2;
  x.r.datapath.tick();
  t.same(x.r.takeSent(), []);
  t.equal(x.r.counter('routine.relay.forwarded'), 0);
});

t.test('the relay table is replaced whole: a route removed stops forwarding at once', async (t) => {
  const x = trio();
  x.r.datapath.control({ type: 'relays', relays: x.routes.r.filter((r) => r.localIndex !== IDX.iRA) });
  x.r.receive({ data: frameFromA(x, packetAB('x')), addr: x.a.address });
  t.same(x.r.takeSent(), []);
  t.equal(x.r.counter('routine.dropped.no_tunnel'), 1);
});

t.test('forwarding without a tunnel to the target: dropped and counted', async (t) => {
  const x = trio();
  x.r.datapath.control({ type: 'tunnelDown', localIndex: x.rToB.localIndex });
  x.r.receive({ data: frameFromA(x, packetAB('x')), addr: x.a.address });
  t.same(x.r.takeSent(), []);
  t.equal(x.r.counter('routine.dropped.no_tunnel'), 1);
  t.equal(x.r.counter('routine.relay.forwarded'), 0);
});

t.test('forwarding when the target tunnel\'s counter space is spent: nothing sent, counted', async (t) => {
  const x = trio();
  x.r.slots.setSendCounter(x.rToB.slot, SEND_COUNTER_LIMIT);
  x.r.receive({ data: frameFromA(x, packetAB('x')), addr: x.a.address });
  t.same(x.r.takeSent(), []);
  t.equal(x.r.counter('routine.dropped.counter_spent'), 1);
  t.equal(x.r.counter('routine.relay.forwarded'), 0);
});

t.test('a handshake through the relay reaches B\'s supervisor marked with the relay it came by', async (t) => {
  const x = trio();
  const stage1 = Buffer.concat([header(0, 0, 0, 1), Buffer.from('noise stage 1 bytes')]);
  // A's supervisor sends it (handshake manager -> relay manager -> tunnels.sendFrame) on A's tunnel to R.
  const out = collectingOutbox();
  const relay: SendableTunnel = { slot: x.aToR.slot, remoteIndex: x.aToR.remoteIndex, encrypt: createPacketCipher('aes', Buffer.from(x.aToR.sendKey)), remoteSockaddr: x.r.address };
  t.ok(sendRelayFrame(x.a.slots, relay, IDX.iRA, stage1, 0, stage1.length, out));
  x.r.receive({ data: out.sent[0]!.data, addr: x.a.address });
  const { moved } = x.pump();
  t.same(moved.map((m) => `${m.from}>${m.to}`), ['r>b']);
  const metas = x.b.posted.filter((m) => m.type === 'meta');
  t.equal(metas.length, 1);
  const m = metas[0]!;
  if (m.type !== 'meta') throw new Error('unreachable');
  t.equal(m.packet.type, 0);
  t.ok(Buffer.from(m.packet.data).equals(stage1), 'the whole inner datagram');
  t.same(m.packet.via, { relayVpnIp: ip(R_VPN), remoteIndex: IDX.iRB }, 'answers go back through R to R\'s B-side index');
  t.equal(m.packet.fromIp, ip('10.0.0.9'), 'the address is the relay host\'s');
});

t.test('relay frames never nest: a frame inside a frame is counted as other and not looked at', async (t) => {
  const x = trio();
  const nested = sealFrame(x.aToR.sendKey, IDX.iRA, 3, sealMessage(x.aToB.sendKey, x.aToB.remoteIndex, 3, packetAB('x')));
  x.b.receive({ data: sealFrame(x.rToB.sendKey, IDX.iB, 3, nested), addr: x.r.address });
  t.equal(x.b.counter('routine.relay.rx_terminal'), 1);
  t.equal(x.b.counter('messages.rx.other'), 1);
  t.equal(x.b.inside.written.length, 0);
  t.same(x.b.takeSent(), []);
});

t.test('the relay host roaming moves the tunnel to R, never the relayed tunnel', async (t) => {
  const x = trio();
  const moved = sockaddr('10.0.0.99', 5000);
  const inner = sealMessage(x.aToB.sendKey, x.aToB.remoteIndex, 3, packetAB('from a new R address'));
  x.b.receive({ data: sealFrame(x.rToB.sendKey, IDX.iB, 3, inner), addr: moved });
  t.equal(x.b.inside.written.length, 1);
  t.same(
    roamed(x.b).map((m) => (m.type === 'roamed' ? [m.localIndex, m.remoteIp, m.remotePort] : [])),
    [[x.bToR.localIndex, ip('10.0.0.99'), 5000]],
    'only B\'s tunnel to R roamed',
  );
  x.b.fromInside(packetBA('reply'));
  const sent = x.b.takeSent();
  t.equal(sent.length, 1);
  t.same([sockaddrIPv4(sent[0]!.addr), sockaddrPort(sent[0]!.addr)], [ip('10.0.0.99'), 5000], 'the reply is a frame to R\'s new address');
  t.equal(parseHeader(sent[0]!.data).subtype, 1);
});

t.test('an authenticated direct datagram from B moves A\'s relayed tunnel to the direct path', async (t) => {
  const x = trio();
  const packet = packetBA('direct now');
  x.a.receive({ data: sealMessage(x.bToA.sendKey, x.bToA.remoteIndex, 3, packet), addr: x.b.address });
  t.ok(x.a.inside.written[0]?.equals(packet));
  t.same(
    roamed(x.a).map((m) => (m.type === 'roamed' ? [m.localIndex, m.remoteIp, m.remotePort] : [])),
    [[x.aToB.localIndex, ip('10.0.0.2'), 4243]],
  );
  x.a.fromInside(packetAB('reply'));
  const sent = x.a.takeSent();
  t.same([sockaddrIPv4(sent[0]!.addr), sockaddrPort(sent[0]!.addr)], [ip('10.0.0.2'), 4243], 'straight to B');
  t.same(parseHeader(sent[0]!.data), { version: 1, type: 1, subtype: 0, reserved: 0, index: x.aToB.remoteIndex, counter: 3 }, 'a plain message, no frame');
});

t.test('a remoteChanged naming the relay (a roam the supervisor refused) puts A\'s roamed tunnel back on the relay', async (t) => {
  const x = trio();
  x.a.receive({ data: sealMessage(x.bToA.sendKey, x.bToA.remoteIndex, 3, packetBA('from a denied address')), addr: x.b.address });
  t.equal(roamed(x.a).length, 1, 'A roamed its copy to the direct address');
  x.a.datapath.control({ type: 'remoteChanged', localIndex: x.aToB.localIndex, remoteIp: 0, remotePort: 0, via: x.aToB.via });
  const packet = packetAB('back through the relay');
  x.a.fromInside(packet);
  const sent = x.a.takeSent();
  t.equal(sent.length, 1);
  t.same([sockaddrIPv4(sent[0]!.addr), sockaddrPort(sent[0]!.addr)], [ip('10.0.0.9'), 4249], 'to R again');
  const outer = parseHeader(sent[0]!.data);
  t.same([outer.type, outer.subtype, outer.index], [1, 1, IDX.iRA], 'a relay frame under R\'s index');
  const inner = openFrame(x.rToA.recvKey, sent[0]!.data);
  t.ok(inner, 'framed on the A-R tunnel');
  const innerCounter = parseHeader(inner!).counter;
  t.ok(gcmOpen(x.bToA.recvKey, innerCounter, inner!.subarray(0, 16), inner!.subarray(16))?.equals(packet), 'the inner datagram sealed for B');
});

interface Collected {
  data: Buffer;
  to: Buffer;
}

function collectingOutbox(): DatagramOutbox & { sent: Collected[] } {
  const scratch = Buffer.alloc(2048);
  const sent: Collected[] = [];
  return {
    sent,
    buffer: () => scratch,
    commit: (len, to) => void sent.push({ data: Buffer.from(scratch.subarray(0, len)), to: Buffer.from(to) }),
  };
}

t.test('send.ts units: sendRelayFrame layout, and what is refused without sending', async (t) => {
  const n = new MemoryNode({ vpnIp: A_VPN, underlay: { ip: '10.0.0.1', port: 4242 } });
  const relayKey = Buffer.alloc(32, 0x11);
  const innerKey = Buffer.alloc(32, 0x22);
  n.slots.reset(4);
  n.slots.reset(6);
  const relay: SendableTunnel = { slot: 4, remoteIndex: 0x1234, encrypt: createPacketCipher('aes', relayKey), remoteSockaddr: sockaddr('10.0.0.9', 4249) };
  t.teardown(() => relay.encrypt.dispose());

  const out = collectingOutbox();
  const datagram = Buffer.from('a complete nebula datagram, forwarded as is');
  t.ok(sendRelayFrame(n.slots, relay, 0xabcdef01, Buffer.concat([Buffer.from('xx'), datagram]), 2, datagram.length, out));
  t.equal(out.sent.length, 1);
  const f = out.sent[0]!;
  t.same(parseHeader(f.data), { version: 1, type: 1, subtype: 1, reserved: 0, index: 0xabcdef01, counter: 3 });
  t.equal(f.data.length, 16 + datagram.length + TAG);
  t.ok(openFrame(relayKey, f.data)?.equals(datagram), 'the datagram in clear, the tag by the relay tunnel\'s key');
  t.ok(f.to.subarray(0, 16).equals(relay.remoteSockaddr), 'to the relay host');

  n.slots.setSendCounter(4, SEND_COUNTER_LIMIT);
  t.notOk(sendRelayFrame(n.slots, relay, 1, datagram, 0, datagram.length, out), 'relay tunnel\'s counter spent');
  const relayed = (relayTunnel: SendableTunnel | undefined): SendableTunnel => ({
    slot: 6,
    remoteIndex: 0x77,
    encrypt: relay.encrypt,
    remoteSockaddr: sockaddr('0.0.0.0', 0),
    via: { remoteIndex: 0x55, relayTunnel: () => relayTunnel },
  });
  const before = n.slots.sendCounter(6);
  t.notOk(sendOnTunnel(n.slots, relayed(undefined), 1, 0, datagram, 0, datagram.length, out), 'no tunnel to the relay host');
  t.equal(n.slots.sendCounter(6), before, 'and no counter taken');
  t.notOk(sendOnTunnel(n.slots, relayed(relay), 1, 0, datagram, 0, datagram.length, out), 'relay tunnel\'s counter spent');
  t.equal(out.sent.length, 1, 'nothing committed by any refusal');

  // The relayed send with an inner key of its own, checked end to end.
  n.slots.reset(4);
  const innerCipher = createPacketCipher('aes', innerKey);
  t.teardown(() => innerCipher.dispose());
  const tun: SendableTunnel = { ...relayed(relay), encrypt: innerCipher };
  t.ok(sendOnTunnel(n.slots, tun, 4, 0, datagram, 0, datagram.length, out), 'a test packet on a relayed tunnel');
  const g = out.sent[1]!.data;
  t.same(parseHeader(g), { version: 1, type: 1, subtype: 1, reserved: 0, index: 0x55, counter: 3 });
  t.same(parseHeader(g, 16), { version: 1, type: 4, subtype: 0, reserved: 0, index: 0x77, counter: n.slots.sendCounter(6) });
  const inner = openFrame(relayKey, g)!;
  t.ok(gcmOpen(innerKey, parseHeader(g, 16).counter, inner.subarray(0, 16), inner.subarray(16))?.equals(datagram));
});

t.test('a relayed tunnel whose relay tunnel is gone sends nothing and counts relay_down, not counter_spent', async (t) => {
  const x = trio();
  x.a.datapath.control({ type: 'tunnelDown', localIndex: x.aToR.localIndex });
  x.a.fromInside(packetAB('no way to R'));
  t.same(x.a.takeSent(), [], 'nothing on the wire');
  t.equal(x.a.counter('routine.dropped.relay_down'), 1);
  t.equal(x.a.counter('routine.dropped.counter_spent'), 0);
  t.equal(x.a.slots.sendCounter(x.aToB.slot), 2, 'no counter of the relayed tunnel was taken');
});
