/**
 * The routine's warm-up (src/routine/warm-up.ts): every warm-up packet crosses its throwaway tunnel in both ciphers
 * (so the code it runs is the real packet path, not an early exit), over fd edges like the worker's (a socketpair
 * and loopback UDP: no root needed), in our own VPN network; and a live data path in the same thread sees nothing of
 * it: no datagram, no inside packet, no supervisor message, not one word of its region changed.
 */
import { testRoutineSetup } from '../../src/testbed/routine-setup';
import t from 'tap';
import type { RoutineSetup } from '../../src/shared/ipc/messages';
import { FdInsideQueue, FdUnderlaySocket } from '../../src/routine/fd-edges';
import { sidePair, warmUpDatapath, type EdgeFactory } from '../../src/routine/warm-up';
import { close, EAGAIN } from '../../src/shared/native/libc';
import { allocSockaddrIn, fillSockaddrIn } from '../../src/shared/native/sockaddr';
import { createUdpSocket, recvFrom, sendTo } from '../../src/shared/native/udp';
import { ipv4Packet, setFlow, warmUpAddresses } from '../../src/routine/warm-up-packets';
import { udp4Packet } from '../native/fixtures/packets';
import { ANY_RULE, firewall, ip, pair } from './fixtures/memory-node';

/** The plain fd edges (the worker's factory also picks the offload edge for a tun with virtio-net headers). */
const FD_EDGES: EdgeFactory = { inside: (fd) => new FdInsideQueue(fd), underlay: (fd) => new FdUnderlaySocket(fd) };

function setup(cipher: RoutineSetup['cipher']): RoutineSetup {
  // A firewall that refuses everything: the warm-up still runs the path that passes (it brings its own rules).
  return testRoutineSetup(ip('192.168.100.1'), { routine: 1, routines: 2, cipher, insideKind: 'tun', firewall: firewall([], []) });
}

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`${cipher}: every warm-up packet (ICMP, UDP, TCP, both ways) reaches the far inside`, async (t) => {
    t.equal(warmUpDatapath(setup(cipher), FD_EDGES, 7), 2 * 3 * 7);
    t.equal(warmUpDatapath({ ...setup(cipher), mtu: 9000 }, FD_EDGES, 41), 2 * 3 * 41, 'and past a tunnel re-made mid-way');
  });
}

t.test('a live data path in the same thread is untouched by a warm-up', async (t) => {
  const A = { vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 }, firewall: firewall([ANY_RULE], [ANY_RULE]) };
  const B = { vpnIp: '192.168.100.2', underlay: { ip: '10.0.0.2', port: 4243 }, firewall: firewall([ANY_RULE], [ANY_RULE]) };
  const { a, b, deliverAtoB } = pair(A, B);
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('before')));
  deliverAtoB();
  const snapshot = (n: typeof a) => [Buffer.from(new Uint8Array(n.views.tunnels.buffer)), n.inside.written.length, n.underlay.sent.length, n.posted.length];
  const before = [snapshot(a), snapshot(b)];
  t.equal(warmUpDatapath({ ...setup('aes'), firewall: A.firewall }, FD_EDGES, 20), 120);
  t.same([snapshot(a), snapshot(b)], before, 'region (slots, counters, conntrack), edges and supervisor link unchanged');
  a.fromInside(udp4Packet(A.vpnIp, 5000, B.vpnIp, 53, Buffer.from('after')));
  const sent = deliverAtoB();
  t.equal(sent[0]!.data.readUInt32BE(12), 4, 'the live tunnel goes on with its own next counter');
  t.equal(b.inside.written.length, 2);
  t.equal(a.counter('routine.inside.rx_packets'), 2, 'counted only the live packets');
});

t.test('the warm-up tunnel joins our own VPN address to another host of our network (or a stand-in network)', async (t) => {
  t.same(warmUpAddresses(ip('192.168.100.1'), 0xffffff00), { a: ip('192.168.100.1'), b: ip('192.168.100.2'), mask: 0xffffff00 });
  t.same(warmUpAddresses(ip('192.168.100.254'), 0xffffff00), { a: ip('192.168.100.254'), b: ip('192.168.100.1'), mask: 0xffffff00 });
  t.same(warmUpAddresses(ip('10.0.0.2'), 0xfffffffc), { a: ip('10.0.0.2'), b: ip('10.0.0.1'), mask: 0xfffffffc });
  t.same(warmUpAddresses(ip('10.0.0.7'), 0xffffffff), { a: ip('10.255.0.1'), b: ip('10.255.0.2'), mask: 0xffffff00 }, '/32: no second host');
});

t.test('setFlow moves a warm-up packet to another flow: the ports (or the ICMP id) change, nothing else', async (t) => {
  for (const proto of [1, 6, 17] as const) {
    for (const reply of [false, true]) {
      const made = ipv4Packet(proto, ip('192.168.100.1'), ip('192.168.100.2'), reply, 77);
      const moved = ipv4Packet(proto, ip('192.168.100.1'), ip('192.168.100.2'), reply, 5);
      setFlow(moved, reply, 77);
      t.same(moved, made, `proto ${proto}${reply ? ' reply' : ''}`);
    }
  }
});

t.test('the throwaway sockets take datagrams only from each other', async (t) => {
  const fds: number[] = [];
  t.teardown(() => fds.forEach((fd) => close(fd)));
  const { a, b } = sidePair(setup('aes'), FD_EDGES, fds);
  const stranger = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false });
  fds.push(stranger);
  const to = allocSockaddrIn();
  const from = allocSockaddrIn();
  const rx = Buffer.alloc(64);
  fillSockaddrIn(to, 0x7f000001, a.port);
  t.equal(sendTo(stranger, Buffer.from('injected'), 8, to), 8, 'the stranger could send');
  t.equal(sendTo(b.udp, Buffer.from('from b'), 6, to), 6);
  t.equal(recvFrom(a.udp, rx, from), 6, "only b's datagram is there");
  t.equal(rx.subarray(0, 6).toString(), 'from b');
  t.equal(recvFrom(a.udp, rx, from), -EAGAIN, "and nothing else: the stranger's was dropped by the kernel");
});
