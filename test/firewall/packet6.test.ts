/**
 * IPv6 parsing for the firewall, as Go nebula 1.11.1 does it (outside.go parseV6 and iputil.IPv6FindUpperProtocol):
 * the extension header chain (0 hop-by-hop, 43 routing, 60 destination options, 44 fragment, 51 AH) is walked to the
 * upper layer, anything else ends the walk; a truncated chain, a header length past the packet, and TCP/UDP/ICMPv6
 * headers too short for what Go reads are invalid; a non-first fragment has no ports and the fragment's protocol;
 * ICMPv6 has no local port and, for echo, the identifier as its remote port.
 */
import t from 'tap';
import { newFirewallPacket, parseIPPacket, type FirewallPacket } from '../../src/shared/firewall';
import {
  extHeader,
  fragmentHeader,
  icmp6Packet,
  ip6Words,
  ipv6Packet,
  tcp4Packet,
  tcp6Packet,
  udp6Packet,
  udpDatagram,
  TCP_SYN,
} from './fixtures/packets';

const PEER = 'fd00:1::2';
const US = 'fd00:1::1';

function parse(p: Buffer, incoming = true, len = p.length): FirewallPacket | undefined {
  const out = newFirewallPacket();
  return parseIPPacket(p, len, incoming, out) ? out : undefined;
}

function view(p: FirewallPacket): Record<string, unknown> {
  return {
    version: p.version,
    proto: p.proto,
    local6: [...p.local6],
    remote6: [...p.remote6],
    localIp: p.localIp,
    remoteIp: p.remoteIp,
    localPort: p.localPort,
    remotePort: p.remotePort,
    fragment: p.fragment,
  };
}

t.test('TCP inbound: remote = source, local = destination; localIp/remoteIp are the last words', async (t) => {
  const p = parse(tcp6Packet(PEER, US, { sport: 40000, dport: 80, flags: TCP_SYN }))!;
  t.same(view(p), {
    version: 6,
    proto: 6,
    local6: ip6Words(US),
    remote6: ip6Words(PEER),
    localIp: 1,
    remoteIp: 2,
    localPort: 80,
    remotePort: 40000,
    fragment: false,
  });
});

t.test('UDP outbound: the reverse, so both directions of a flow give the same tuple', async (t) => {
  const out = parse(udp6Packet(US, PEER, 5353, 53, Buffer.from('q')), false)!;
  const back = parse(udp6Packet(PEER, US, 53, 5353, Buffer.from('a')), true)!;
  t.same(view(out), { ...view(back) });
  t.same([out.localPort, out.remotePort], [5353, 53]);
  t.same([...out.local6], ip6Words(US));
});

t.test('the extension header chain is walked to the upper layer', async (t) => {
  // hop-by-hop (8 bytes) -> routing (24 bytes) -> destination options (16 bytes) -> AH (12 bytes) -> UDP
  const ext = Buffer.concat([extHeader(43, 0), extHeader(60, 2), extHeader(51, 1), extHeader(17, 1, true)]);
  const p = parse(udp6Packet(PEER, US, 1111, 2222, Buffer.alloc(4), ext, 0))!;
  t.equal(p.proto, 17);
  t.same([p.remotePort, p.localPort], [1111, 2222], 'ports read after 8 + 24 + 16 + 12 bytes of headers');
  // hop-by-hop is walked wherever it appears (Go does not insist on it being first)
  const late = parse(tcp6Packet(PEER, US, { sport: 7, dport: 8, flags: TCP_SYN }, Buffer.concat([extHeader(0, 0), extHeader(6, 0)]), 60))!;
  t.same([late.proto, late.localPort], [6, 8]);
});

t.test('fragments: a first fragment is judged by its transport header, a non-first one has no ports', async (t) => {
  const first = parse(udp6Packet(PEER, US, 1000, 53, Buffer.alloc(8), fragmentHeader(17, 0, true), 44))!;
  t.same([first.proto, first.fragment, first.localPort, first.remotePort], [17, false, 53, 1000], 'offset 0, M set');
  const later = ipv6Packet({ src: PEER, dst: US, nextHeader: 44, body: Buffer.concat([fragmentHeader(6, 185, false), Buffer.from([1, 2])]) });
  const p = parse(later)!;
  t.same([p.proto, p.fragment, p.localPort, p.remotePort], [6, true, 0, 0], 'the fragment\'s protocol, no ports');
  const bare = ipv6Packet({ src: PEER, dst: US, nextHeader: 44, body: fragmentHeader(17, 1, true) });
  t.equal(parse(bare)?.fragment, true, 'a non-first fragment needs nothing past its fragment header');
  // Go tests offset bits only (byte 2, and the top 5 bits of byte 3): reserved bits and M do not make a fragment.
  const reservedBits = fragmentHeader(17, 0, true);
  reservedBits[3] |= 0x06;
  t.equal(parse(udp6Packet(PEER, US, 1, 2, Buffer.alloc(0), reservedBits, 44))?.fragment, false);
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 44, body: fragmentHeader(17, 0, false).subarray(0, 7) })), undefined, 'a 7-byte fragment header');
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 44, body: fragmentHeader(17, 0, false) })), undefined, 'first fragment without its UDP header');
});

t.test('ICMPv6: no local port; echo request and reply carry the identifier as the remote port', async (t) => {
  const req = parse(icmp6Packet(PEER, US, 128, 0, Buffer.alloc(4), 0xbeef))!;
  t.same([req.proto, req.localPort, req.remotePort, req.fragment], [58, 0, 0xbeef, false]);
  const replyOut = parse(icmp6Packet(US, PEER, 129, 0, Buffer.alloc(0), 0xbeef), false)!;
  t.same([replyOut.localPort, replyOut.remotePort], [0, 0xbeef], 'outbound too: orientation does not matter');
  const ns = parse(icmp6Packet(PEER, US, 135, 0, Buffer.alloc(16), 0x1234))!;
  t.same([ns.localPort, ns.remotePort], [0, 0], 'other types: no identifier');
  const four = ipv6Packet({ src: PEER, dst: US, nextHeader: 58, body: Buffer.from([1, 4, 0, 0]) });
  t.ok(parse(four), 'a non-echo message needs 4 bytes');
  t.equal(parse(four, true, 43), undefined, '3 bytes are too few');
  const echo = icmp6Packet(PEER, US, 128, 0);
  t.equal(parse(echo, true, 45), undefined, 'an echo needs 6 bytes (its identifier)');
  t.ok(parse(echo, true, 46));
});

t.test('anything but the five extension headers ends the walk, with no ports', async (t) => {
  for (const [proto, what] of [[50, 'ESP'], [59, 'no next header'], [132, 'SCTP'], [135, 'mobility'], [139, 'HIP'], [253, 'experimental'], [1, 'ICMPv4 in IPv6']] as const) {
    const p = parse(ipv6Packet({ src: PEER, dst: US, nextHeader: proto, body: Buffer.from([0, 80, 0, 80, 1, 2, 3, 4]) }));
    t.same(p && [p.proto, p.localPort, p.remotePort, p.fragment], [proto, 0, 0, false], what);
  }
  t.ok(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 59, body: Buffer.alloc(0) })), 'no next header with nothing after it');
  t.ok(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 0, body: extHeader(59, 0) })), 'a chain ending exactly at the end of the packet');
});

t.test('invalid: short, truncated chains, lengths past the packet, transport headers too short', async (t) => {
  const syn = tcp6Packet(PEER, US, { sport: 1, dport: 2, flags: TCP_SYN });
  t.equal(parse(syn, true, 39), undefined, 'less than the fixed header');
  t.equal(parse(syn, true, 43), undefined, 'TCP with 3 bytes of ports');
  t.ok(parse(syn, true, 44), '4 bytes are enough');
  t.equal(parse(udp6Packet(PEER, US, 1, 2, Buffer.alloc(0)), true, 41), undefined, 'UDP with 1 byte');
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 0, body: Buffer.alloc(0) })), undefined, 'hop-by-hop announced, absent');
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 60, body: Buffer.from([17]) })), undefined, 'one byte of a header');
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 51, body: Buffer.from([17]) })), undefined, 'one byte of AH');
  const pastEnd = Buffer.concat([extHeader(59, 0), Buffer.alloc(0)]);
  pastEnd[1] = 200; // claims 1608 bytes
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 43, body: pastEnd })), undefined, 'a header length past the packet, then a terminal protocol');
  const inner = Buffer.concat([extHeader(60, 0), Buffer.from([17, 50])]);
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 0, body: inner })), undefined, 'a length past the packet, then an extension header');
  const v4 = tcp4Packet('10.0.0.2', '10.0.0.1', { sport: 1, dport: 2, flags: TCP_SYN });
  const v5 = Buffer.from(v4);
  v5[0] = 0x55;
  t.equal(parse(v5), undefined, 'IP version 5');
  t.equal(parse(Buffer.alloc(0)), undefined, 'empty');
});

t.test('hostile chains end: 8000 hop-by-hop headers, and random bytes never throw', async (t) => {
  const many = Buffer.concat(Array.from({ length: 8000 }, () => extHeader(0, 0)));
  t.equal(parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 0, body: many })), undefined, 'a chain with no end is truncated');
  many[many.length - 8] = 17;
  const ok = parse(ipv6Packet({ src: PEER, dst: US, nextHeader: 0, body: Buffer.concat([many, udpDatagram(1, 2, Buffer.alloc(0))]) }));
  t.same(ok && [ok.proto, ok.localPort], [17, 2], 'a long but complete chain reaches its UDP header');
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const buf = Buffer.alloc(160);
  const out = newFirewallPacket();
  let parsed = 0;
  for (let i = 0; i < 20_000; i++) {
    for (let j = 0; j < buf.length; j++) buf[j] = rand(256);
    buf[0] = 0x60;
    buf[6] = [0, 43, 60, 44, 51, 6, 17, 58][rand(8)]!;
    const len = rand(161);
    if (parseIPPacket(buf, len, rand(2) === 0, out)) {
      parsed++;
      if (out.version !== 6 || out.localPort > 0xffff || out.remotePort > 0xffff) t.fail(`bad parse of ${buf.subarray(0, len).toString('hex')}`);
    }
  }
  t.ok(parsed > 1000, `random packets parse sometimes (${parsed})`);
});

t.test('one FirewallPacket serves both families: an IPv4 packet after an IPv6 one is version 4', async (t) => {
  const out = newFirewallPacket();
  const v6 = tcp6Packet(PEER, US, { sport: 1, dport: 2, flags: TCP_SYN });
  const v4 = tcp4Packet('10.0.0.2', '10.0.0.1', { sport: 3, dport: 4, flags: TCP_SYN });
  t.ok(parseIPPacket(v6, v6.length, true, out));
  t.equal(out.version, 6);
  t.ok(parseIPPacket(v4, v4.length, true, out));
  t.same([out.version, out.localIp, out.localPort], [4, 0x0a000001, 4]);
  const local6 = out.local6;
  t.ok(parseIPPacket(v6, v6.length, true, out));
  t.equal(out.local6, local6, 'the address arrays are preallocated and reused');
  const big = Buffer.alloc(2048);
  v6.copy(big);
  t.ok(parseIPPacket(big, v6.length, true, out), 'len bounds the read in a larger buffer');
  t.equal(parseIPPacket(big, 43, true, out), false);
});
