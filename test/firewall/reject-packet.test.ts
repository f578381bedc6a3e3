/**
 * The reject builder (firewall.inbound_action / outbound_action: reject) against Go v1.11.1 iputil/packet.go
 * CreateRejectPacket: exact bytes for a TCP RST (seq/ack as netfilter's REJECT sets them) and an ICMP type 3 code 13
 * quoting the original header + 8 bytes; checksums recomputed here with an independent implementation; and the
 * cases Go answers with nothing.
 */
import t, { type Test } from 'tap';
import { buildRejectPacket, MAX_REJECT_PACKET_LEN } from '../../src/shared/firewall';
import {
  checksum,
  icmp4Packet,
  ip,
  ipv4Packet,
  pseudoHeaderSum,
  tcp4Packet,
  udp4Packet,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
} from './fixtures/packets';

const A = '192.168.100.1';
const B = '192.168.100.2';

function reject(packet: Buffer, outSize = MAX_REJECT_PACKET_LEN): Buffer | undefined {
  const out = Buffer.alloc(outSize, 0xee); // garbage: every byte of the answer must be written
  const n = buildRejectPacket(packet, packet.length, out);
  return n === 0 ? undefined : out.subarray(0, n);
}

/** The IPv4 header checks every reject must pass: swapped addresses, fixed fields, a valid header checksum. */
function checkIPv4Header(t: Test, r: Buffer, original: Buffer, proto: number): void {
  t.equal(r[0], 0x45, 'version 4, no options');
  t.equal(r[1], 0, 'TOS 0');
  t.equal(r.readUInt16BE(2), r.length, 'total length');
  t.equal(r.readUInt32BE(4), 0, 'id 0, no flags, offset 0');
  t.equal(r[8], 64, 'TTL 64');
  t.equal(r[9], proto);
  t.equal(r.readUInt32BE(12), original.readUInt32BE(16), 'source = original destination');
  t.equal(r.readUInt32BE(16), original.readUInt32BE(12), 'destination = original source');
  t.equal(checksum(r.subarray(0, 20)), 0, 'header checksum verifies');
}

function checkTcpChecksum(t: Test, r: Buffer): void {
  t.equal(checksum(r.subarray(20), pseudoHeaderSum(r, 6, r.length - 20)), 0, 'TCP checksum (with pseudo header) verifies');
}

t.test('TCP SYN (with TCP options, DF, TOS): RST+ACK acking seq + 1; golden bytes', async (t) => {
  const syn = tcp4Packet(A, B, { sport: 40000, dport: 7777, seq: 0x11223344, flags: TCP_SYN, tcpOptions: Buffer.from('020405b40101040201030307', 'hex') }, { tos: 0x10, ttl: 63 });
  const r = reject(syn)!;
  // Computed independently (Python, from Go's algorithm): 20-byte IP header + 20-byte TCP header.
  t.equal(r.toString('hex'), '45000028000000004006317cc0a86402c0a864011e619c4000000000112233455014000067730000');
  checkIPv4Header(t, r, syn, 6);
  t.equal(r.readUInt16BE(20), 7777, 'source port = original destination port');
  t.equal(r.readUInt16BE(22), 40000);
  t.equal(r.readUInt32BE(24), 0, 'seq 0 (the SYN carried no ACK)');
  t.equal(r.readUInt32BE(28), 0x11223345, 'ack = seq + 1 for the SYN');
  t.equal(r[32], 0x50, 'data offset 5, no options');
  t.equal(r[33], TCP_RST | TCP_ACK);
  t.equal(r.readUInt16BE(34), 0, 'window 0');
  t.equal(r.readUInt16BE(38), 0, 'urgent pointer 0');
  checkTcpChecksum(t, r);
});

t.test('TCP segment with ACK: a bare RST whose seq is the segment\'s ack number; golden bytes', async (t) => {
  const seg = tcp4Packet(A, B, { sport: 40000, dport: 7777, seq: 1000, ack: 0xdeadbeef, flags: TCP_PSH | TCP_ACK, payload: Buffer.alloc(100, 7) });
  const r = reject(seg)!;
  t.equal(r.toString('hex'), '45000028000000004006317cc0a86402c0a864011e619c40deadbeef00000000500400000e4d0000');
  t.equal(r[33], TCP_RST, 'RST only');
  t.equal(r.readUInt32BE(24), 0xdeadbeef);
  t.equal(r.readUInt32BE(28), 0, 'no ack number');
  checkIPv4Header(t, r, seg, 6);
  checkTcpChecksum(t, r);
});

t.test('TCP without ACK: ack = seq + SYN + FIN + payload length (not counting TCP options), mod 2^32', async (t) => {
  const fin = tcp4Packet(A, B, { sport: 1, dport: 2, seq: 5000, flags: TCP_FIN | TCP_PSH, payload: Buffer.alloc(10), tcpOptions: Buffer.alloc(8, 1) });
  t.equal(reject(fin)!.readUInt32BE(28), 5000 + 1 + 10);
  const bare = tcp4Packet(A, B, { sport: 1, dport: 2, seq: 77, flags: 0, payload: Buffer.alloc(3) });
  t.equal(reject(bare)!.readUInt32BE(28), 80, 'no flags: seq + payload');
  const synFin = tcp4Packet(A, B, { sport: 1, dport: 2, seq: 10, flags: TCP_SYN | TCP_FIN });
  t.equal(reject(synFin)!.readUInt32BE(28), 12);
  const wrap = tcp4Packet(A, B, { sport: 1, dport: 2, seq: 0xffffffff, flags: TCP_SYN });
  const r = reject(wrap)!;
  t.equal(r.readUInt32BE(28), 0, 'wraps like Go\'s uint32');
  checkTcpChecksum(t, r);
});

t.test('TCP behind IP options: ports and seq are read after the options; the answer has none', async (t) => {
  const syn = tcp4Packet(A, B, { sport: 40001, dport: 22, seq: 9, flags: TCP_SYN }, { options: Buffer.from('01010100', 'hex') });
  const r = reject(syn)!;
  t.equal(r.length, 40);
  t.equal(r[0], 0x45);
  t.equal(r.readUInt16BE(20), 22);
  t.equal(r.readUInt16BE(22), 40001);
  t.equal(r.readUInt32BE(28), 10);
  checkIPv4Header(t, r, syn, 6);
  checkTcpChecksum(t, r);
});

t.test('UDP (with IP options): ICMP type 3 code 13 quoting the original header and 8 bytes; golden bytes', async (t) => {
  // 24-byte header (options NOP NOP NOP EOL), UDP 40000 -> 7778 with checksum 0xbeef, 16 bytes of payload.
  const udp = Buffer.from('46000030abcd400040111111c0a86401c0a86402010101009c401e620018beef7369787465656e206279746573212121', 'hex');
  const r = reject(udp)!;
  // Computed independently (Python, from Go's algorithm).
  t.equal(
    r.toString('hex'),
    '4500003c000000004001316dc0a86402c0a86401030db4d10000000046000030abcd400040111111c0a86401c0a86402010101009c401e620018beef',
  );
  checkIPv4Header(t, r, udp, 1);
  t.equal(r[20], 3, 'destination unreachable');
  t.equal(r[21], 13, 'communication administratively prohibited');
  t.equal(r.readUInt32BE(24), 0, 'unused word 0');
  t.ok(r.subarray(28).equals(udp.subarray(0, 24 + 8)), 'quotes the 24-byte header (checksum and all) and the UDP header');
  t.equal(checksum(r.subarray(20)), 0, 'ICMP checksum verifies');
});

t.test('UDP without options, and a packet shorter than header + 8: quotes what there is', async (t) => {
  const udp = udp4Packet(A, B, 5000, 53, Buffer.from('query'));
  const r = reject(udp)!;
  t.equal(r.length, 20 + 8 + 28);
  t.ok(r.subarray(28).equals(udp.subarray(0, 28)));
  t.equal(checksum(r.subarray(20)), 0);
  const tiny = ipv4Packet({ src: A, dst: B, proto: 17, body: Buffer.from([0x13, 0x88, 0x00]) });
  const rt = reject(tiny)!;
  t.equal(rt.length, 20 + 8 + 23, 'odd length');
  t.ok(rt.subarray(28).equals(tiny));
  t.equal(checksum(rt.subarray(20)), 0, 'checksum over an odd length verifies');
  t.equal(rt.readUInt16BE(2), rt.length);
});

t.test('ICMP and other protocols get an ICMP unreachable; ICMP errors get nothing', async (t) => {
  const echo = icmp4Packet(A, B, 8, 0, Buffer.alloc(56, 0xab));
  const r = reject(echo)!;
  t.equal(r.length, 20 + 8 + 28);
  t.equal(r[20], 3);
  t.equal(r[21], 13);
  t.ok(r.subarray(28).equals(echo.subarray(0, 28)));
  t.ok(reject(icmp4Packet(A, B, 0, 0)), 'echo reply answered');
  for (const type of [3, 4, 5, 11, 12]) t.equal(reject(icmp4Packet(A, B, type, 1, Buffer.alloc(28))), undefined, `ICMP type ${type} is an error: not answered`);
  const gre = ipv4Packet({ src: A, dst: B, proto: 47, body: Buffer.alloc(12, 1) });
  const rg = reject(gre)!;
  t.equal(rg[9], 1, 'GRE: answered with ICMP');
  t.ok(rg.subarray(28).equals(gre.subarray(0, 28)));
});

t.test('fragments: the first (MF, offset 0) is answered, a later one is not', async (t) => {
  const body = Buffer.alloc(16);
  t.ok(reject(ipv4Packet({ src: A, dst: B, proto: 17, body, flagsFragment: 0x2000 })), 'MF, offset 0');
  t.ok(reject(ipv4Packet({ src: A, dst: B, proto: 17, body, flagsFragment: 0x4000 })), 'DF only');
  t.equal(reject(ipv4Packet({ src: A, dst: B, proto: 17, body, flagsFragment: 0x0001 })), undefined, 'offset 1');
  t.equal(reject(ipv4Packet({ src: A, dst: B, proto: 6, body: Buffer.alloc(40), flagsFragment: 0x2100 })), undefined, 'TCP, offset 256');
});

t.test('nothing for what cannot be answered: another IP version, truncated headers, a too-small output buffer', async (t) => {
  const v5 = Buffer.alloc(60);
  v5[0] = 0x50;
  v5[6] = 17;
  t.equal(reject(v5), undefined, 'IP version 5');
  const syn = tcp4Packet(A, B, { sport: 1, dport: 2, flags: TCP_SYN });
  t.equal(reject(syn.subarray(0, 39)), undefined, 'TCP header cut short');
  t.equal(reject(syn.subarray(0, 19)), undefined, 'IP header cut short');
  const badIhl = Buffer.from(syn);
  badIhl[0] = 0x44;
  t.equal(reject(badIhl), undefined, 'IHL below 5');
  t.equal(reject(syn, 39), undefined, 'output too small for a RST');
  t.equal(reject(udp4Packet(A, B, 1, 2, Buffer.alloc(20)), 55), undefined, 'output too small for the ICMP');
  t.equal(buildRejectPacket(syn, 0, Buffer.alloc(MAX_REJECT_PACKET_LEN)), 0, 'empty');
});

t.test('the largest IPv4 answer (60-byte header quoted) is 96 bytes; MAX_REJECT_PACKET_LEN is Go\'s IPv6-sized one', async (t) => {
  const udp = udp4Packet(A, B, 1, 2, Buffer.alloc(64), { options: Buffer.alloc(40, 1) });
  const r = reject(udp)!;
  t.equal(r.length, 96);
  t.equal(MAX_REJECT_PACKET_LEN, 40 + 8 + 1000, 'iputil.MaxRejectPacketSize (v1.11.1)');
  t.equal(r.readUInt32BE(16), ip(A));
  t.equal(checksum(r.subarray(20)), 0);
});
