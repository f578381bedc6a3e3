import t from 'tap';
import { newFirewallPacket, parseIPv4Packet, type FirewallPacket } from '../../src/shared/firewall';
import { parseIPv4 } from '../../src/shared/util/ipv4';

const ip = (s: string): number => parseIPv4(s)!;

/** A minimal IPv4 packet: header of `ihl` 32-bit words, then `l4` bytes. */
function ipv4(opts: { proto: number; src: string; dst: string; ihl?: number; fragOffset?: number; flags?: number; l4?: number[] }): Buffer {
  const ihl = opts.ihl ?? 5;
  const l4 = opts.l4 ?? [];
  const b = Buffer.alloc(ihl * 4 + l4.length);
  b[0] = 0x40 | ihl;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(((opts.flags ?? 0) << 13) | (opts.fragOffset ?? 0), 6);
  b[8] = 64;
  b[9] = opts.proto;
  Buffer.from(opts.src.split('.').map(Number)).copy(b, 12);
  Buffer.from(opts.dst.split('.').map(Number)).copy(b, 16);
  Buffer.from(l4).copy(b, ihl * 4);
  return b;
}

const TCP_PORTS = [0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0]; // 40000 -> 80

/** The IPv4 tuple of a parsed packet (local6 / remote6 are not read for IPv4). */
function tuple(p: FirewallPacket): Omit<FirewallPacket, 'local6' | 'remote6'> {
  const { local6: _l, remote6: _r, ...rest } = p;
  return rest;
}

t.test('inbound: remote = source, local = destination', async (t) => {
  const out = newFirewallPacket();
  const b = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', l4: TCP_PORTS });
  t.ok(parseIPv4Packet(b, b.length, true, out));
  t.same(tuple(out), { version: 4, proto: 6, remoteIp: ip('10.0.0.2'), localIp: ip('10.0.0.1'), remotePort: 40000, localPort: 80, fragment: false });
});

t.test('outbound: the reverse, so both directions of a flow give the same tuple', async (t) => {
  const out = newFirewallPacket();
  const b = ipv4({ proto: 6, src: '10.0.0.1', dst: '10.0.0.2', l4: [0x00, 0x50, 0x9c, 0x40] });
  t.ok(parseIPv4Packet(b, b.length, false, out));
  t.same(tuple(out), { version: 4, proto: 6, remoteIp: ip('10.0.0.2'), localIp: ip('10.0.0.1'), remotePort: 40000, localPort: 80, fragment: false });
});

t.test('the same object is reused: no per-packet allocation', async (t) => {
  const out = newFirewallPacket();
  const a = ipv4({ proto: 17, src: '10.0.0.2', dst: '10.0.0.1', l4: [0, 53, 0, 54] });
  const b = ipv4({ proto: 1, src: '10.0.0.3', dst: '10.0.0.1', l4: [8, 0, 0, 0] });
  t.ok(parseIPv4Packet(a, a.length, true, out));
  t.equal(out.localPort, 54);
  t.ok(parseIPv4Packet(b, b.length, true, out));
  t.same(tuple(out), { version: 4, proto: 1, remoteIp: ip('10.0.0.3'), localIp: ip('10.0.0.1'), remotePort: 0, localPort: 0, fragment: false }, 'ICMP has no ports');
});

t.test('header options: ports are read after IHL*4 bytes', async (t) => {
  const out = newFirewallPacket();
  const b = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', ihl: 6, l4: TCP_PORTS });
  t.ok(parseIPv4Packet(b, b.length, true, out));
  t.equal(out.localPort, 80);
  t.equal(out.remotePort, 40000);
});

t.test('fragments: non-first fragments have no ports; first fragments (offset 0, MF set) do', async (t) => {
  const out = newFirewallPacket();
  const frag = ipv4({ proto: 17, src: '10.0.0.2', dst: '10.0.0.1', fragOffset: 185 });
  t.ok(parseIPv4Packet(frag, frag.length, true, out), 'a fragment needs no L4 bytes');
  t.equal(out.fragment, true);
  t.equal(out.localPort, 0);
  const first = ipv4({ proto: 17, src: '10.0.0.2', dst: '10.0.0.1', flags: 1, l4: [0, 53, 0, 54] });
  t.ok(parseIPv4Packet(first, first.length, true, out));
  t.equal(out.fragment, false);
  t.equal(out.localPort, 54);
});

t.test('rejects non-IPv4, short packets and bad IHL', async (t) => {
  const out = newFirewallPacket();
  const v6 = Buffer.alloc(40);
  v6[0] = 0x60;
  t.notOk(parseIPv4Packet(v6, v6.length, true, out), 'IPv6');
  const short = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', l4: TCP_PORTS });
  t.notOk(parseIPv4Packet(short, 19, true, out), 'less than 20 bytes');
  t.notOk(parseIPv4Packet(short, 23, true, out), 'TCP without 4 bytes of ports');
  t.ok(parseIPv4Packet(short, 24, true, out), 'exactly enough');
  const badIhl = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', l4: TCP_PORTS });
  badIhl[0] = 0x44;
  t.notOk(parseIPv4Packet(badIhl, badIhl.length, true, out), 'IHL < 5');
  const longIhl = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', l4: TCP_PORTS });
  longIhl[0] = 0x4f;
  t.notOk(parseIPv4Packet(longIhl, longIhl.length, true, out), 'IHL beyond the packet');
  t.notOk(parseIPv4Packet(Buffer.alloc(0), 0, true, out), 'empty');
  const icmpHeaderOnly = ipv4({ proto: 1, src: '10.0.0.2', dst: '10.0.0.1' });
  t.ok(parseIPv4Packet(icmpHeaderOnly, 20, true, out), 'ICMP needs only the IP header (as in Nebula)');
});

t.test('len bounds the read even when the buffer is larger (a reused receive buffer)', async (t) => {
  const out = newFirewallPacket();
  const big = Buffer.alloc(2048);
  const p = ipv4({ proto: 6, src: '10.0.0.2', dst: '10.0.0.1', l4: TCP_PORTS });
  p.copy(big);
  t.ok(parseIPv4Packet(big, p.length, true, out));
  t.equal(out.localPort, 80);
  t.notOk(parseIPv4Packet(big, 10, true, out));
});
