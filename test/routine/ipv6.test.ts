/**
 * The IPv6 overlay in the data path, without root (fixtures/memory-node.ts): IPv6 packets routed to the host whose
 * certificate holds the destination, or through an IPv6 unsafe route, with the real firewall and crypto; what is
 * dropped instead, and counted.
 */
import t from 'tap';
import { parseIPv6 } from '../../src/shared/util/ipv6';
import { Vpn6Index, MAX_ADDRESSES } from '../../src/routine/vpn6-index';
import { randomBytes } from 'node:crypto';
import { ip, MemoryNode, pair, peer } from './fixtures/memory-node';
import { sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';
import { MAX_PARKED_PER_HOST } from '../../src/routine/outbound-parking';

const A = { vpnIp: '192.168.100.1', vpn6: 'fd42::1/64', underlay: { ip: '10.0.0.1', port: 4242 } };
const B = { vpnIp: '192.168.100.2', vpn6: 'fd42::2/64', underlay: { ip: '10.0.0.2', port: 4243 } };
const C = { vpnIp: '192.168.100.3', vpn6: 'fd42::3/64', underlay: { ip: '10.0.0.3', port: 4244 } };

/** An IPv6 UDP packet (next header 17, hop limit 64) with a correct UDP checksum over the IPv6 pseudo-header. */
function udp6Packet(src: string, sport: number, dst: string, dport: number, payload: Buffer): Buffer {
  const p = Buffer.alloc(40 + 8 + payload.length);
  p.writeUInt32BE(0x60000000, 0);
  p.writeUInt16BE(8 + payload.length, 4);
  p[6] = 17;
  p[7] = 64;
  const words = (text: string, off: number): void => parseIPv6(text)!.forEach((w, i) => p.writeUInt32BE(w, off + 4 * i));
  words(src, 8);
  words(dst, 24);
  p.writeUInt16BE(sport, 40);
  p.writeUInt16BE(dport, 42);
  p.writeUInt16BE(8 + payload.length, 44);
  payload.copy(p, 48);
  let sum = 17 + 8 + payload.length;
  for (let i = 8; i < 40; i += 2) sum += p.readUInt16BE(i);
  for (let i = 40; i < p.length; i += 2) sum += i + 1 < p.length ? p.readUInt16BE(i) : p[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16BE(~sum & 0xffff || 0xffff, 46);
  return p;
}

/** The one's complement sum of an ICMPv6 message with its pseudo-header: 0xffff when the checksum is right. */
function icmp6Sum(p: Buffer): number {
  const len = p.length - 40;
  let sum = 58 + len;
  for (let i = 8; i < 40; i += 2) sum += p.readUInt16BE(i);
  for (let i = 40; i < p.length; i += 2) sum += i + 1 < p.length ? p.readUInt16BE(i) : p[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** An ICMPv6 echo request (type 128) with a correct checksum. */
function echo6Request(src: string, dst: string, id: number, seq: number, data: Buffer): Buffer {
  const p = Buffer.alloc(48 + data.length);
  p.writeUInt32BE(0x60000000, 0);
  p.writeUInt16BE(8 + data.length, 4);
  p[6] = 58;
  p[7] = 64;
  parseIPv6(src)!.forEach((w, i) => p.writeUInt32BE(w, 8 + 4 * i));
  parseIPv6(dst)!.forEach((w, i) => p.writeUInt32BE(w, 24 + 4 * i));
  p[40] = 128;
  p.writeUInt16BE(id, 44);
  p.writeUInt16BE(seq, 46);
  data.copy(p, 48);
  p.writeUInt16BE(~icmp6Sum(p) & 0xffff, 42);
  return p;
}

t.test('with the inside disabled, an ICMPv6 echo to our IPv6 VPN address is answered (as Go 1.11)', async (t) => {
  const { a, deliverAtoB, deliverBtoA } = pair(A, { ...B, insideDisabled: true });
  const request = echo6Request('fd42::1', 'fd42::2', 0x1234, 7, Buffer.from('ping6 odd length'));
  t.equal(icmp6Sum(request), 0xffff, 'the request\'s checksum is right');
  a.fromInside(request);
  deliverAtoB();
  deliverBtoA();
  const reply = a.inside.written[0];
  t.ok(reply, 'a reply reached A\'s inside');
  t.equal(reply![40], 129, 'an echo reply');
  t.same([reply!.subarray(8, 24), reply!.subarray(24, 40)], [request.subarray(24, 40), request.subarray(8, 24)], 'addresses swapped');
  t.ok(reply!.subarray(44).equals(request.subarray(44)), 'id, sequence and data echoed');
  t.equal(icmp6Sum(reply!), 0xffff, 'the reply\'s checksum is right');
  a.fromInside(echo6Request('fd42::1', 'fd42::9', 1, 1, Buffer.alloc(8)));
  t.equal(deliverAtoB().length, 0, 'fd42::9 is nobody: not even sent');
});

t.test('an IPv6 packet for a peer\'s IPv6 VPN address arrives byte-identical at its inside', async (t) => {
  const { a, b, deliverAtoB, deliverBtoA } = pair(A, B);
  const packet = udp6Packet('fd42::1', 5000, 'fd42::2', 53, Buffer.from('over the IPv6 overlay'));
  a.fromInside(packet);
  t.equal(deliverAtoB().length, 1, 'one datagram on the wire');
  t.equal(b.inside.written.length, 1);
  t.ok(b.inside.written[0]!.equals(packet), 'byte-identical at B\'s inside');
  const reply = udp6Packet('fd42::2', 53, 'fd42::1', 5000, Buffer.from('and back'));
  b.fromInside(reply);
  t.equal(deliverBtoA().length, 1);
  t.ok(a.inside.written[0]?.equals(reply), 'the reply comes back the same way');
  t.equal(a.counter('routine.outside.tx_packets'), 1);
  t.equal(b.counter('routine.outside.rx_packets'), 1);
});

t.test('an IPv6 packet claiming another source than the peer\'s certificate holds is dropped by the inbound firewall', async (t) => {
  const { a, b, deliverAtoB } = pair(A, B);
  // A's own firewall sees a local source that is not ours: dropped before the wire (local_ip, as for IPv4).
  a.fromInside(udp6Packet('fd42::99', 5000, 'fd42::2', 53, Buffer.from('spoofed')));
  t.equal(deliverAtoB().length, 0, 'nothing leaves A');
  t.equal(a.counter('firewall.outgoing.dropped.local_ip'), 1);
  t.equal(b.inside.written.length, 0);
});

t.test('first contact by IPv6 address: packets wait under the address, one tunnel request names it, the install flushes them', async (t) => {
  const { a } = pair(A, B);
  const c = new MemoryNode(C);
  const first = udp6Packet('fd42::1', 5000, 'fd42::3', 53, Buffer.from('first contact'));
  const second = udp6Packet('fd42::1', 5000, 'fd42::3', 53, Buffer.from('and a second packet'));
  a.fromInside(first);
  a.fromInside(second);
  t.same(a.takeSent(), [], 'nothing is sent before a tunnel exists');
  t.same(a.posted.filter((m) => m.type === 'needTunnel6' || m.type === 'needTunnel'), [{ type: 'needTunnel6', routine: 0, vpnAddr6: 'fd42::3' }], 'asked once, by the IPv6 address');
  // The supervisor's handshake found C (its certificate holds fd42::3) and keyed it by its IPv4 VPN IP.
  const keyAC = randomBytes(32);
  const keyCA = randomBytes(32);
  a.installTunnel({ slot: 3, localIndex: 0x3333, remoteIndex: 0x4444, vpnIp: ip(C.vpnIp), sendKey: keyAC, recvKey: keyCA, remoteIp: sockaddrIPv4(c.address), remotePort: sockaddrPort(c.address), peer: peer('c', C.vpnIp, C.vpn6) });
  c.installTunnel({ slot: 4, localIndex: 0x4444, remoteIndex: 0x3333, vpnIp: ip(A.vpnIp), sendKey: keyCA, recvKey: keyAC, remoteIp: sockaddrIPv4(a.address), remotePort: sockaddrPort(a.address), peer: peer('a', A.vpnIp, A.vpn6) });
  const sent = a.takeSent();
  t.equal(sent.length, 2, 'both waiting packets sealed and sent on the install');
  c.receive(...sent.map((d) => ({ data: d.data, addr: a.address })));
  t.same(c.inside.written.map((p) => p.toString('hex')), [first, second].map((p) => p.toString('hex')), 'byte-identical at C, in order');
  t.equal(a.counter('hostinfo.cached_packets.sent'), 2);
});

t.test('first contact is bounded: past the parking room packets are dropped and counted', async (t) => {
  const { a } = pair(A, B);
  for (let i = 0; i < MAX_PARKED_PER_HOST + 3; i++) a.fromInside(udp6Packet('fd42::1', 5000, 'fd42::3', 53, Buffer.from(`n${i}`)));
  t.equal(a.counter('routine.dropped.parked_overflow'), 3);
  t.equal(a.posted.filter((m) => m.type === 'needTunnel6').length, 1, 'asked once within the re-ask interval');
});

t.test('a host whose tunnel went is remembered: IPv6 traffic alone asks for the tunnel again', async (t) => {
  const { a, tunnelA } = pair(A, B);
  a.datapath.control({ type: 'tunnelDown', localIndex: tunnelA.localIndex });
  a.fromInside(udp6Packet('fd42::1', 5000, 'fd42::2', 53, Buffer.from('wait for me')));
  t.same(a.takeSent(), []);
  t.same(a.posted.filter((m) => m.type === 'needTunnel'), [{ type: 'needTunnel', routine: 0, vpnIp: ip(B.vpnIp) }], 'asked by B\'s IPv4 VPN IP');
  t.same(a.posted.filter((m) => m.type === 'needTunnel6'), [], 'no first contact either');
});

t.test('an IPv6 unsafe route sends through its gateway\'s tunnel', async (t) => {
  const behindB = '2001:db8:7::/48';
  const { a, b, deliverAtoB } = pair({ ...A, unsafeRoutes6: [{ route: behindB, via: ip(B.vpnIp) }] }, { ...B, subnets6: [behindB] });
  const packet = udp6Packet('fd42::1', 5000, '2001:db8:7::10', 53, Buffer.from('behind b'));
  a.fromInside(packet);
  t.equal(deliverAtoB().length, 1, 'sealed to B');
  t.ok(b.inside.written[0]?.equals(packet), 'B takes it in: the network is in its certificate');
  a.fromInside(udp6Packet('fd42::1', 5000, '2001:db8:8::10', 53, Buffer.from('nowhere')));
  t.equal(deliverAtoB().length, 0, 'no route, nothing sent');
});

t.test('an IPv6 unsafe route to a gateway whose certificate lacks the network: refused by our outbound firewall', async (t) => {
  const { a, deliverAtoB } = pair({ ...A, unsafeRoutes6: [{ route: '2001:db8:7::/48', via: ip(B.vpnIp) }] }, B);
  a.fromInside(udp6Packet('fd42::1', 5000, '2001:db8:7::10', 53, Buffer.from('behind b?')));
  t.equal(deliverAtoB().length, 0);
  t.equal(a.counter('firewall.outgoing.dropped.remote_ip'), 1);
});

t.test('without IPv6 networks or routes, IPv6 packets are dropped quietly', async (t) => {
  const { a, deliverAtoB } = pair({ vpnIp: A.vpnIp, underlay: A.underlay }, B);
  a.fromInside(udp6Packet('fd42::1', 5000, 'fd42::2', 53, Buffer.from('no v6 here')));
  t.equal(deliverAtoB().length, 0);
  t.same(a.posted.filter((m) => m.type === 'needTunnel6'), [], 'no first contact asked');
  t.equal(a.counter('routine.dropped.malformed'), 0);
});

t.test('packets to our own IPv6 address or (with drop_multicast) multicast never leave', async (t) => {
  const { a, deliverAtoB } = pair(A, B);
  a.fromInside(udp6Packet('fd42::1', 5000, 'fd42::1', 53, Buffer.from('self')));
  t.equal(deliverAtoB().length, 0);
  t.same(a.posted.filter((m) => m.type === 'needTunnel6'), [], 'no first contact: it is us');
});

t.test('Vpn6Index: learns, follows a moved address, stays bounded', async (t) => {
  const index = new Vpn6Index();
  const words = (text: string): Uint32Array => Uint32Array.from(parseIPv6(text)!);
  index.learn(['fd42::2', 'fd43::2', 'not an address'], ip('192.168.100.2'));
  t.equal(index.vpnIpFor(words('fd42::2')), ip('192.168.100.2'));
  t.equal(index.vpnIpFor(words('fd43::2')), ip('192.168.100.2'));
  t.equal(index.vpnIpFor(words('fd42::3')), -1);
  t.equal(index.size, 2, 'the bad text is skipped');
  index.learn(['fd42::2'], ip('192.168.100.9'));
  t.equal(index.vpnIpFor(words('fd42::2')), ip('192.168.100.9'), 'a reissued certificate moves the address');
  t.equal(index.size, 2);
  for (let i = 0; i < MAX_ADDRESSES; i++) index.learn([`fd44::${(i + 1).toString(16)}`], i + 1);
  t.equal(index.size, MAX_ADDRESSES, 'never more than MAX_ADDRESSES');
  t.equal(index.vpnIpFor(words('fd42::2')), -1, 'the oldest is forgotten first');
  t.equal(index.vpnIpFor(words(`fd44::${MAX_ADDRESSES.toString(16)}`)), MAX_ADDRESSES, 'the newest is kept');
});
