/**
 * Warms a routine's packet path before it reports ready (issue 13: a fresh node answered its first pings slower, and at
 * low packet rates its data path ran unoptimised for thousands of packets). Two throwaway Datapaths pass pings, UDP and
 * TCP packets to each other, as production would, through a tunnel in the routine's cipher:
 *  - over the same kinds of objects as the real one, so V8 optimises the shared code for what production feeds it and
 *    the first real packets do not throw that code away again ("wrong map" deopts): a region mapped from a memfd like
 *    the shared one, inside queues over SOCK_SEQPACKET socketpairs built by the worker's own factory, UDP sockets on
 *    127.0.0.1 (in this process's network namespace, never on the underlay);
 *  - with numbers of production's kinds: our own VPN network and address, random 32-bit tunnel indexes;
 *  - through the branches production reaches again and again: a tunnel re-made every few dozen rounds (its first
 *    packet parked then flushed, the peer's first datagram held then delivered, cipher contexts created), a stage 1
 *    handed up and a test request answered, as the supervisor's handshakes and connection manager make them, liveness
 *    marks cleared as the connection manager does;
 *  - with new flows every round (conntrack misses and inserts, not only hits);
 *  - in two generations of throwaway paths: what happens once per new object (a socket's first batch) runs again
 *    once V8 records what it sees, so the optimised code already covers it when the real path's objects are new.
 * The real region, counters, conntrack, tunnels and supervisor see none of it.
 */
import { randomBytes } from 'node:crypto';
import { createPacketCipher } from '../shared/crypto';
import type { FirewallRule } from '../shared/firewall/rule';
import type { FirewallUpdate, PeerIdentity, RoutineSetup, TunnelInstall } from '../shared/ipc/messages';
import koffi from '../shared/native/koffi';
import { close, POLLIN, pollFds, readFd, setNonBlocking, writeFd } from '../shared/native/libc';
import { fillSockaddrIn } from '../shared/native/sockaddr';
import { connectUdp, createUdpSocket, localPort } from '../shared/native/udp';
import { HEADER_LEN, SUBTYPE_TEST_REQUEST, TYPE_HANDSHAKE, TYPE_TEST, writeHeader } from '../shared/protocol/header';
import { socketpairSeqpacket } from '../shared/native/unix';
import { createRegion } from '../shared/shm/region';
import { computeLayout, viewsOver } from '../shared/state/layout';
import { TunnelSlots } from '../shared/state/tunnel-slots';
import { sendOnTunnel } from '../shared/tunnel/send';
import { RoutineCounters } from './context';
import { Datapath } from './datapath';
import { DatagramBatch, type InsideQueue, type UnderlaySocket } from './edges';
import { ipv4Packet, setFlow, warmUpAddresses } from './warm-up-packets';

/** Round trips per packet kind: V8 optimises a function after some hundreds of calls (docs/performance.md). */
export const WARM_UP_ROUNDS = 400;
/** A tunnel is re-made this often (in rounds), so the branches of a tunnel's first packets are hot too. */
const REMAKE_EVERY = 40;
const LOOPBACK = 0x7f000001;
const PROTOCOLS = [1, 17, 6] as const;
const SLOT = 1;

/** How the worker builds its edges; the warm-up builds its own the same way, over its own fds. */
export interface EdgeFactory {
  inside(fd: number, counters: RoutineCounters): InsideQueue;
  underlay(fd: number): UnderlaySocket;
}

const ANY: FirewallRule = { proto: 0, startPort: 0, endPort: 0, host: 'any', groups: [], cidr: '', caName: '', caSha: '' };
const ALLOW_ALL: FirewallUpdate = { version: 1, inbound: [ANY], outbound: [ANY], tcpTimeout: 720_000, udpTimeout: 180_000, defaultTimeout: 600_000 };

export interface Side {
  vpnIp: number;
  datapath: Datapath;
  slots: TunnelSlots;
  /** The far end of the datapath's inside queue: the warm-up writes packets here and reads what was delivered. */
  far: number;
  fds: number[];
  udp: number;
  port: number;
  /** struct pollfd for the socket and the inside queue: each step polls first, as the worker's loop does. */
  pollBuf: Buffer;
  tunnel?: TunnelInstall;
}

export function side(setup: RoutineSetup, vpnIp: number, edges: EdgeFactory, fds: number[]): Side {
  const layout = computeLayout({ tunnels: 4, routines: 1, conntrack: 64 });
  const region = createRegion(layout.totalBytes, 'nebula-ts-warm-up');
  // The mapping stays (a few pages, once): the throwaway path's typed arrays point into it until they are collected.
  close(region.fd);
  const views = viewsOver(region.buffer, layout);
  const [near, far] = socketpairSeqpacket();
  fds.push(near, far);
  setNonBlocking(near, true);
  setNonBlocking(far, true);
  const udp = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false });
  fds.push(udp);
  setNonBlocking(udp, true);
  const datapath = new Datapath({
    setup: {
      ...setup,
      routine: 0,
      routines: 1,
      vpnIp,
      localSubnets: [],
      unsafeRoutes: [],
      vpnNetworks6: [],
      localSubnets6: [],
      unsafeRoutes6: [],
      insideKind: 'tun',
      keepWarm: false,
      sendRecvError: 'never',
      firewall: ALLOW_ALL,
      tunnels: [],
      relays: [],
    },
    tunnelWords: views.tunnels,
    conntrackWords: views.conntrack,
    conntrackCapacity: layout.conntrack,
    counterView: views.counters,
    underlay: edges.underlay(udp),
    inside: edges.inside(near, new RoutineCounters(views.counters, 0)),
    supervisor: { post: () => undefined },
    clock: Date.now,
    // One packet in flight at a time: more entries would only cost allocation (each is a 9 KB buffer).
    batchSize: 2,
  });
  const pollBuf = Buffer.alloc(16);
  pollBuf.writeInt32LE(udp, 0);
  pollBuf.writeInt16LE(POLLIN, 4);
  pollBuf.writeInt32LE(near, 8);
  pollBuf.writeInt16LE(POLLIN, 12);
  return { vpnIp, datapath, slots: new TunnelSlots(views.tunnels, -1), far, fds, udp, port: localPort(udp), pollBuf };
}

/**
 * Two sides in our VPN network, their loopback sockets connected to each other: nobody else on this host can put a
 * datagram into the throwaway path (the keep-warm sockets live as long as the routine).
 */
export function sidePair(setup: RoutineSetup, edges: EdgeFactory, fds: number[]): { a: Side; b: Side } {
  const ips = warmUpAddresses(setup.vpnIp, setup.vpnMask);
  const a = side({ ...setup, vpnMask: ips.mask }, ips.a, edges, fds);
  const b = side({ ...setup, vpnMask: ips.mask }, ips.b, edges, fds);
  connectUdp(a.udp, '127.0.0.1', b.port);
  connectUdp(b.udp, '127.0.0.1', a.port);
  return { a, b };
}

function identity(name: string, ip: number): PeerIdentity {
  return { name, groups: [], issuer: '', caName: '', ips: [ip], subnets: [], ips6: [], subnets6: [] };
}

/** A random tunnel index, as the host map draws them (most are not small integers). */
function randomIndex(): number {
  return randomBytes(4).readUInt32BE(0) || 1;
}

/** Tears down the tunnel between the sides (if any) and makes a new one, as a handshake would. */
export function remake(a: Side, b: Side): { toB: TunnelInstall; toA: TunnelInstall } {
  for (const s of [a, b]) if (s.tunnel) s.datapath.control({ type: 'tunnelDown', localIndex: s.tunnel.localIndex });
  const keyAB = randomBytes(32);
  const keyBA = randomBytes(32);
  const ia = randomIndex();
  const ib = randomIndex();
  const toB: TunnelInstall = { slot: SLOT, localIndex: ia, remoteIndex: ib, vpnIp: b.vpnIp, sendKey: keyAB, recvKey: keyBA, remoteIp: LOOPBACK, remotePort: b.port, peer: identity('b', b.vpnIp) };
  const toA: TunnelInstall = { slot: SLOT, localIndex: ib, remoteIndex: ia, vpnIp: a.vpnIp, sendKey: keyBA, recvKey: keyAB, remoteIp: LOOPBACK, remotePort: a.port, peer: identity('a', a.vpnIp) };
  a.tunnel = toB;
  b.tunnel = toA;
  a.slots.reset(SLOT);
  b.slots.reset(SLOT);
  return { toB, toA };
}

/** Everything `s` delivered to its inside so far, read off the far end; returns how many packets. */
export function drain(s: Side, scratch: Buffer): number {
  let n = 0;
  while (readFd(s.far, scratch, scratch.length) > 0) n++;
  return n;
}

/** `packet` into `from`'s inside, through its tunnel, out of `to`'s inside. */
export function roundTrip(from: Side, to: Side, packet: Buffer): void {
  writeFd(from.far, packet, packet.length);
  pollFds(from.pollBuf, 2, 0);
  from.datapath.onInsideReadable();
  pollFds(to.pollBuf, 2, 0);
  to.datapath.onUnderlayReadable();
  from.datapath.tick();
  to.datapath.tick();
}

/**
 * What the supervisor sends on `from`'s socket (it shares the routines' port): a handshake stage 1 (garbage after the
 * header: the data path only hands it up) and a test request on `from`'s tunnel, sealed under the tunnel's shared
 * send counter as the connection manager's are. `to` answers the test request; `from` takes the reply.
 */
class SupervisorStandIn {
  private readonly socket: UnderlaySocket;
  private readonly batch = new DatagramBatch(1, 256);

  constructor(
    private readonly from: Side,
    private readonly to: Side,
    edges: EdgeFactory,
  ) {
    this.socket = edges.underlay(from.udp);
    fillSockaddrIn(this.batch.addrs[0]!, LOOPBACK, to.port);
  }

  exchange(cipher: RoutineSetup['cipher']): void {
    const stage1 = this.batch.bufs[0]!;
    writeHeader(stage1, 0, TYPE_HANDSHAKE, 0, 0, 0, 1);
    randomBytes(120).copy(stage1, HEADER_LEN);
    this.batch.lens[0] = HEADER_LEN + 120;
    this.socket.sendBatch(this.batch, 1);
    const t = this.from.tunnel!;
    const tunnel = { slot: t.slot, remoteIndex: t.remoteIndex, encrypt: createPacketCipher(cipher, Buffer.from(t.sendKey)), remoteSockaddr: this.batch.addrs[0]! };
    const outbox = {
      buffer: () => this.batch.bufs[0]!,
      commit: (len: number) => {
        this.batch.lens[0] = len;
        this.socket.sendBatch(this.batch, 1);
      },
    };
    sendOnTunnel(this.from.slots, tunnel, TYPE_TEST, SUBTYPE_TEST_REQUEST, EMPTY, 0, 0, outbox);
    tunnel.encrypt.dispose();
    this.to.datapath.onUnderlayReadable();
    this.from.datapath.onUnderlayReadable();
  }
}

const EMPTY = Buffer.alloc(0);

/** One generation: a fresh pair of throwaway data paths running `rounds` rounds; returns the packets delivered. */
function generation(setup: RoutineSetup, edges: EdgeFactory, rounds: number, fds: number[], scratch: Buffer): number {
  const { a, b } = sidePair(setup, edges, fds);
  const supervisor = new SupervisorStandIn(a, b, edges);
  const out = PROTOCOLS.map((p) => ipv4Packet(p, a.vpnIp, b.vpnIp, false, 0));
  const back = PROTOCOLS.map((p) => ipv4Packet(p, b.vpnIp, a.vpnIp, true, 0));
  let delivered = 0;
  for (let r = 0; r < rounds; r++) {
    // New flows every round: the firewall's conntrack misses, rule checks and inserts are as hot as its hits.
    for (let k = 0; k < out.length; k++) {
      setFlow(out[k]!, false, r);
      setFlow(back[k]!, true, r);
    }
    let k = 0;
    if (r % REMAKE_EVERY === 0) {
      // As at the start of a real tunnel: A's first packet waits parked for the tunnel, B's first datagram arrives
      // before B has the tunnel and is held until it does.
      const { toB, toA } = remake(a, b);
      writeFd(a.far, out[0]!, out[0]!.length);
      a.datapath.onInsideReadable();
      a.datapath.control({ type: 'tunnelUp', tunnel: toB });
      b.datapath.onUnderlayReadable();
      b.datapath.control({ type: 'tunnelUp', tunnel: toA });
      roundTrip(b, a, back[0]!);
      supervisor.exchange(setup.cipher);
      k = 1;
    }
    for (; k < out.length; k++) {
      roundTrip(a, b, out[k]!);
      roundTrip(b, a, back[k]!);
    }
    // The connection manager clears the liveness marks between its looks; the next packet sets them again.
    if (r % 4 === 0) for (const s of [a, b]) s.slots.clearMarks(SLOT);
    delivered += drain(a, scratch) + drain(b, scratch);
  }
  // Frees the tunnels' cipher contexts now rather than at garbage collection.
  for (const s of [a, b]) if (s.tunnel) s.datapath.control({ type: 'tunnelDown', localIndex: s.tunnel.localIndex });
  return delivered;
}

/**
 * Runs the warm-up: `rounds` round trips of each packet kind between throwaway data paths in `setup`'s cipher, MTU
 * and VPN network, with edges from `edges` (a first generation of a sixth of the rounds, then a fresh one). Returns
 * how many packets reached the far insides (2 x 3 x rounds when the path works), for the tests. Throws when the
 * sockets cannot be made (the caller logs it; no fd is left open).
 */
export function warmUpDatapath(setup: RoutineSetup, edges: EdgeFactory, rounds = WARM_UP_ROUNDS): number {
  const fds: number[] = [];
  const scratch = Buffer.alloc(Math.max(9001, setup.mtu));
  try {
    const first = Math.ceil(rounds / 6);
    return generation(setup, edges, first, fds, scratch) + generation(setup, edges, rounds - first, fds, scratch);
  } finally {
    for (const fd of fds) close(fd);
    // The optimising compiler's scratch memory is freed to malloc, which keeps it: hand it back (about 2 MiB).
    mallocTrim();
  }
}

type Trim = (pad: number) => number;
let trim: Trim | null | undefined;

/** glibc's malloc_trim(0); nothing where libc has no such call (musl). */
export function mallocTrim(): void {
  if (trim === undefined) {
    try {
      trim = koffi.load(null).func('malloc_trim', 'int', ['size_t']) as Trim;
    } catch {
      trim = null;
    }
  }
  trim?.(0);
}
