/**
 * Reject answers for IPv6 as Go nebula 1.11.1 builds them (iputil/packet.go CreateRejectPacket ->
 * ipv6CreateRejectPacket): the extension headers are walked first (IPv6FindUpperProtocol), a truncated chain or a
 * non-first fragment gets nothing, TCP gets a RST (ipv6CreateRejectTCPPacket), everything else an ICMPv6
 * destination unreachable / administratively prohibited quoting up to 1000 bytes of the packet
 * (ipv6CreateRejectICMPPacket), except ICMPv6 errors (types 1-4). The golden bytes were computed independently (a
 * Python transcription of Go's functions); checksums are re-verified here with the fixture's own RFC 1071 sum over
 * the IPv6 pseudo header.
 */
import t, { type Test } from 'tap';
import { buildRejectPacket, MAX_REJECT_PACKET_LEN } from '../../src/shared/firewall';
import {
  checksum,
  extHeader,
  fragmentHeader,
  icmp6Packet,
  ip6Bytes,
  ipv6Packet,
  pseudoHeaderSum6,
  tcp6Packet,
  udp6Packet,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
} from './fixtures/packets';

const A = 'fd00:1::1';
const B = 'fd00:1::2';

function reject(packet: Buffer, outSize = MAX_REJECT_PACKET_LEN): Buffer | undefined {
  const out = Buffer.alloc(outSize, 0xee); // garbage: every byte of the answer must be written
  const n = buildRejectPacket(packet, packet.length, out);
  return n === 0 ? undefined : out.subarray(0, n);
}

/** The IPv6 header every reject has: version 6, no traffic class / flow label, hop limit 64, addresses swapped. */
function checkIPv6Header(t: Test, r: Buffer, original: Buffer, nextHeader: number): void {
  t.equal(r.readUInt32BE(0), 0x60000000, 'version 6, traffic class 0, flow label 0');
  t.equal(r.readUInt16BE(4), r.length - 40, 'payload length');
  t.equal(r[6], nextHeader, 'next header');
  t.equal(r[7], 64, 'hop limit 64');
  t.same(r.subarray(8, 24), original.subarray(24, 40), 'source = original destination');
  t.same(r.subarray(24, 40), original.subarray(8, 24), 'destination = original source');
}

function checkUpperChecksum(t: Test, r: Buffer, proto: number): void {
  t.equal(checksum(r.subarray(40), pseudoHeaderSum6(r, proto, r.length - 40)), 0, 'checksum over the IPv6 pseudo header verifies');
}

t.test('TCP SYN: RST+ACK acking seq + 1; golden bytes', async (t) => {
  const syn = tcp6Packet(A, B, { sport: 40000, dport: 7777, seq: 0x11223344, flags: TCP_SYN, tcpOptions: Buffer.from('020405b40101040201030307', 'hex') });
  const r = reject(syn)!;
  t.equal(r.toString('hex'), '6000000000140640fd000001000000000000000000000002fd0000010000000000000000000000011e619c40000000001122334550140000b6c10000');
  checkIPv6Header(t, r, syn, 6);
  t.equal(r.readUInt16BE(40), 7777, 'source port = original destination port');
  t.equal(r.readUInt16BE(42), 40000);
  t.equal(r.readUInt32BE(48), 0x11223345, 'ack = seq + 1');
  t.equal(r[53], TCP_RST | TCP_ACK);
  checkUpperChecksum(t, r, 6);
});

t.test('TCP with ACK behind a hop-by-hop header: a bare RST whose seq is the ack number; golden bytes', async (t) => {
  const seg = tcp6Packet(A, B, { sport: 40000, dport: 7777, seq: 1000, ack: 0xdeadbeef, flags: TCP_PSH | TCP_ACK, payload: Buffer.alloc(100, 7) }, extHeader(6, 0), 0);
  const r = reject(seg)!;
  t.equal(r.toString('hex'), '6000000000140640fd000001000000000000000000000002fd0000010000000000000000000000011e619c40deadbeef00000000500400005d9b0000');
  t.equal(r[53], TCP_RST, 'RST only');
  t.equal(r.length, 60, 'no extension headers in the answer');
  checkUpperChecksum(t, r, 6);
});

t.test('TCP without ACK: ack = seq + SYN + FIN + payload after the TCP header (extension headers not counted)', async (t) => {
  const fin = tcp6Packet(A, B, { sport: 1, dport: 2, seq: 0xfffffff0, flags: TCP_FIN | TCP_PSH, payload: Buffer.alloc(30), tcpOptions: Buffer.alloc(8, 1) }, Buffer.concat([extHeader(43, 1), extHeader(6, 0)]), 60);
  const r = reject(fin)!;
  t.equal(r.readUInt32BE(48), (0xfffffff0 + 1 + 30) >>> 0, 'wraps mod 2^32');
  checkUpperChecksum(t, r, 6);
});

t.test('UDP: ICMPv6 unreachable (1/1) quoting the whole packet; golden bytes', async (t) => {
  const udp = udp6Packet(A, B, 5353, 53, Buffer.from('abc'));
  const r = reject(udp)!;
  t.equal(
    r.toString('hex'),
    '60000000003b3a40fd000001000000000000000000000002fd0000010000000000000000000000010101bfa40000000060000000000b1140fd000001000000000000000000000001fd00000100000000000000000000000214e90035000b0000616263',
  );
  checkIPv6Header(t, r, udp, 58);
  t.same([r[40], r[41]], [1, 1], 'destination unreachable, administratively prohibited');
  t.equal(r.readUInt32BE(44), 0, 'unused word');
  t.same(r.subarray(48), udp, 'the packet quoted');
  checkUpperChecksum(t, r, 58);
});

t.test('a large packet is quoted up to 1000 bytes: the answer is MAX_REJECT_PACKET_LEN', async (t) => {
  const big = udp6Packet(A, B, 1, 2, Buffer.alloc(1400, 9));
  const r = reject(big)!;
  t.equal(r.length, 40 + 8 + 1000);
  t.equal(r.length, MAX_REJECT_PACKET_LEN);
  t.same(r.subarray(48), big.subarray(0, 1000));
  checkUpperChecksum(t, r, 58);
  t.equal(reject(big, MAX_REJECT_PACKET_LEN - 1), undefined, 'nothing when the output cannot hold it');
});

t.test('ICMPv6: errors (types 1-4) get nothing, informational messages an unreachable', async (t) => {
  for (const type of [1, 2, 3, 4]) t.equal(reject(icmp6Packet(A, B, type, 0, Buffer.alloc(48))), undefined, `type ${type}`);
  for (const type of [0, 5, 128, 129, 135, 136]) {
    const p = icmp6Packet(A, B, type, 0, Buffer.alloc(8));
    const r = reject(p);
    t.equal(r?.[40], 1, `type ${type} answered`);
    if (r) checkUpperChecksum(t, r, 58);
  }
  const behindHeader = ipv6Packet({ src: B, dst: A, nextHeader: 60, body: Buffer.concat([extHeader(58, 0), Buffer.from([1, 4, 0, 0, 0, 0, 0, 0])]) });
  t.equal(reject(behindHeader), undefined, 'an ICMPv6 error behind a destination options header');
});

t.test('other protocols (ESP, SCTP, no next header) get an ICMPv6 unreachable', async (t) => {
  for (const proto of [50, 132, 59]) {
    const p = ipv6Packet({ src: A, dst: B, nextHeader: proto, body: Buffer.alloc(proto === 59 ? 0 : 12) });
    const r = reject(p);
    t.same(r && [r[6], r[40], r[41]], [58, 1, 1], `protocol ${proto}`);
  }
});

t.test('fragments: nothing for a non-first one, a first one is answered by its transport', async (t) => {
  const later = ipv6Packet({ src: A, dst: B, nextHeader: 44, body: Buffer.concat([fragmentHeader(6, 100, true), Buffer.alloc(40)]) });
  t.equal(reject(later), undefined, 'non-first TCP fragment');
  const laterUdp = ipv6Packet({ src: A, dst: B, nextHeader: 44, body: Buffer.concat([fragmentHeader(17, 1, false), Buffer.alloc(40)]) });
  t.equal(reject(laterUdp), undefined, 'non-first UDP fragment');
  const first = tcp6Packet(A, B, { sport: 5, dport: 6, seq: 7, flags: TCP_SYN }, fragmentHeader(6, 0, true), 44);
  const r = reject(first)!;
  t.same([r[6], r[53], r.readUInt32BE(48)], [6, TCP_RST | TCP_ACK, 8], 'first fragment of a SYN: RST');
  checkUpperChecksum(t, r, 6);
});

t.test('nothing for what cannot be answered: short, truncated chains, short TCP, small output', async (t) => {
  const syn = tcp6Packet(A, B, { sport: 1, dport: 2, flags: TCP_SYN });
  t.equal(buildRejectPacket(syn, 39, Buffer.alloc(MAX_REJECT_PACKET_LEN)), 0, 'less than an IPv6 header');
  t.equal(buildRejectPacket(syn, 59, Buffer.alloc(MAX_REJECT_PACKET_LEN)), 0, 'TCP header cut short');
  t.equal(reject(ipv6Packet({ src: A, dst: B, nextHeader: 0, body: Buffer.alloc(1) })), undefined, 'truncated hop-by-hop');
  const pastEnd = extHeader(17, 0);
  pastEnd[1] = 100;
  t.equal(reject(ipv6Packet({ src: A, dst: B, nextHeader: 43, body: pastEnd })), undefined, 'a header length past the packet');
  t.equal(reject(syn, 59), undefined, 'output too small for a RST');
  t.equal(reject(udp6Packet(A, B, 1, 2, Buffer.alloc(20)), 40 + 8 + 68 - 1), undefined, 'output too small for the ICMPv6');
});

t.test('an answer is itself a packet our parser and Go would not answer again (no reject loops)', async (t) => {
  const r = reject(udp6Packet(A, B, 1, 2, Buffer.alloc(4)))!;
  t.equal(reject(Buffer.from(r)), undefined, 'an ICMPv6 unreachable is an error: no answer to it');
  const rst = reject(tcp6Packet(A, B, { sport: 1, dport: 2, flags: TCP_SYN }))!;
  t.same(rst.subarray(8, 24), ip6Bytes(B));
});
