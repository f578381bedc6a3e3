/**
 * What the routine's warm-up (warm-up.ts) sends: the two VPN addresses of its throwaway tunnel and the IPv4 packets
 * that cross it (an ICMP echo as ping sends it, a UDP datagram, a TCP segment).
 */

/**
 * Our own VPN address and another host of our VPN network, so the warm-up computes with numbers of the same kinds
 * as production (an address above 2^31 is not a small integer to V8). A network with no second host (/31, /32)
 * gets 10.255.0.1 and .2 in a /24 instead.
 */
export function warmUpAddresses(vpnIp: number, vpnMask: number): { a: number; b: number; mask: number } {
  const hostBits = ~vpnMask >>> 0;
  if (hostBits >= 3) {
    const net = (vpnIp & vpnMask) >>> 0;
    const host = (vpnIp & hostBits) >>> 0;
    // The next host after ours, skipping the network (0) and broadcast (all ones) addresses.
    let other = (host % (hostBits - 1)) + 1;
    if (other === host) other = (other % (hostBits - 1)) + 1;
    return { a: vpnIp >>> 0, b: (net | other) >>> 0, mask: vpnMask >>> 0 };
  }
  return { a: 0x0aff0001, b: 0x0aff0002, mask: 0xffffff00 };
}

/**
 * A 20-byte IPv4 header (checksum set) and a transport header of protocol `proto` (1 ICMP, 17 UDP, 6 TCP) with a
 * payload, in flow `flow` (the client's port, the ICMP id): `reply` swaps the ports and makes the ICMP an echo reply
 * and the TCP a SYN-ACK to the request's SYN.
 */
export function ipv4Packet(proto: 1 | 6 | 17, src: number, dst: number, reply: boolean, flow: number): Buffer {
  const client = 20000 + (flow % 40000);
  const transport = proto === 1 ? icmpEcho(reply, flow & 0xffff) : proto === 17 ? udp(reply, client) : tcp(reply, client);
  const p = Buffer.alloc(20 + transport.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = proto;
  p.writeUInt32BE(src >>> 0, 12);
  p.writeUInt32BE(dst >>> 0, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += p.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16BE(~sum & 0xffff, 10);
  transport.copy(p, 20);
  return p;
}

/** Moves a packet made by `ipv4Packet` (same protocol and direction) to flow `flow`, in place. */
export function setFlow(packet: Buffer, reply: boolean, flow: number): void {
  const client = 20000 + (flow % 40000);
  if (packet[9] === 1) packet.writeUInt16BE(flow & 0xffff, 24);
  else packet.writeUInt16BE(client, reply ? 22 : 20);
}

/** ping's default: 8 bytes of header and 56 of data (an 84-byte packet). */
function icmpEcho(reply: boolean, id: number): Buffer {
  const m = Buffer.alloc(64);
  m[0] = reply ? 0 : 8;
  m.writeUInt16BE(id, 4);
  return m;
}

function udp(reply: boolean, client: number): Buffer {
  const d = Buffer.alloc(8 + 32);
  d.writeUInt16BE(reply ? 5001 : client, 0);
  d.writeUInt16BE(reply ? client : 5001, 2);
  d.writeUInt16BE(d.length, 4);
  return d;
}

function tcp(reply: boolean, client: number): Buffer {
  const s = Buffer.alloc(20 + 100);
  s.writeUInt16BE(reply ? 5201 : client, 0);
  s.writeUInt16BE(reply ? client : 5201, 2);
  s[12] = 0x50;
  s[13] = reply ? 0x12 : 0x02;
  return s;
}
