/**
 * The data path of one routine, run in a worker thread of the routine process.
 *
 * One thread, one loop: block in poll() on the UDP socket, the eventfd the routine's main thread rings when it has
 * posted control messages, and the inside fd (tun queue or userspace seqpacket); then drain each ready fd with
 * non-blocking read/recvfrom into preallocated buffers. Blocking koffi calls in a worker keep the data path off
 * the libuv threadpool and off the main thread's event loop, with no internal Node APIs (platform-notes §2).
 *
 * Queue affinity (nebula-spec §8.4): what is read from inside queue i is sent on UDP socket i; what arrives on UDP
 * socket i is written to inside queue i. Per packet nothing is allocated: buffers, the parsed firewall tuple and
 * the sockaddrs are reused; counters are plain stores into this routine's row of shared memory.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { newFirewallPacket, parseIPv4Packet } from '../shared/firewall';
import { POLLIN, pollFds, readFd, writeFd } from '../shared/native/libc';
import { allocSockaddrIn, sockaddrIPv4, sockaddrPort } from '../shared/native/sockaddr';
import { recvFrom, sendTo } from '../shared/native/udp';
import { mapRegion } from '../shared/shm/region';
import {
  HEADER_LEN,
  SUBTYPE_TEST_REPLY,
  SUBTYPE_TEST_REQUEST,
  TYPE_CLOSE_TUNNEL,
  TYPE_CONTROL,
  TYPE_HANDSHAKE,
  TYPE_LIGHTHOUSE,
  TYPE_MESSAGE,
  TYPE_RECV_ERROR,
  TYPE_TEST,
  writeHeader,
} from '../shared/protocol/header';
import { REPLAY_DUPLICATE, REPLAY_WINDOW, replayCheck, replayCurrent, replayUpdate } from '../shared/protocol/replay-window';
import type { FirewallUpdate, RoutineSetup, SupervisorToRoutine, RoutineToSupervisor, MetaPacket } from '../shared/ipc/messages';
import { C, COUNTER_COUNT } from '../shared/state/counters';
import { ConntrackTable } from '../shared/state/conntrack';
import { TS_LOCK, TS_RX_MARK, TS_REPLAY, TS_SEND_COUNTER, TS_TX_MARK, TUNNEL_SLOT_WORDS, checkHeader, computeLayout, viewsOver, type RegionCapacities } from '../shared/state/layout';
import { ALLOW, FirewallGate } from './firewall-gate';
import { OutboundParking } from './outbound-parking';
import { EARLY_WAIT_MS, EarlyArrivals, type EarlyArrival } from './early-arrivals';
import { TunnelRegistry, type RoutineTunnel } from './tunnel-registry';
import { compileFirewall } from './firewall-compile';

export interface DatapathInit {
  udpFd: number;
  /** -1 when the inside is disabled (no device: the routine answers pings to its own VPN IP itself). */
  insideFd: number;
  wakeFd: number;
  regionFd: number;
  capacities: RegionCapacities;
  setup: RoutineSetup;
}

/** Last counter we send on before the tunnel must be re-handshaked (the shared send counter is 32 bits, see state/layout.ts). */
const SEND_COUNTER_LIMIT = 0xffffff00;
const BATCH = 64;
/** struct pollfd { int fd; short events; short revents; }: revents at byte 6 of each 8-byte entry. */
const REVENTS = 6;
const MAX_PACKET = 65536;
const AEAD_TAG = 16;

const port = parentPort!;
const init = workerData as DatapathInit;
const setup = init.setup;
const routine = setup.routine;

const layout = computeLayout(init.capacities);
const region = mapRegion(init.regionFd, layout.totalBytes);
const views = viewsOver(region.buffer, layout);
checkHeader(views);
const slots = views.tunnels;
const counters = views.counters;
const cbase = routine * COUNTER_COUNT;

const tunnels = new TunnelRegistry(setup.cipher);
const gate = new FirewallGate(new ConntrackTable(views.conntrack, layout.conntrack, routine + 1), compileFirewall(setup.firewall, setup));
const parking = new OutboundParking();
const early = new EarlyArrivals();

const insideBuf = Buffer.alloc(MAX_PACKET);
const sendBuf = Buffer.alloc(MAX_PACKET + HEADER_LEN + AEAD_TAG);
const recvBuf = Buffer.alloc(MAX_PACKET);
const plainBuf = Buffer.alloc(MAX_PACKET);
const ctlBuf = Buffer.alloc(HEADER_LEN);
const fromSa = allocSockaddrIn();
const eventBuf = Buffer.alloc(8);
const pkt = newFirewallPacket();

const vpnIp = setup.vpnIp >>> 0;
const vpnMask = setup.vpnMask >>> 0;
const vpnNet = (vpnIp & vpnMask) >>> 0;
const broadcast = (vpnNet | ~vpnMask) >>> 0;

function post(msg: RoutineToSupervisor): void {
  port.postMessage(msg);
}

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  post({ type: 'log', level, msg, fields });
}

// ---------------------------------------------------------------------------------------------- shared tunnel slot

function lockSlot(slot: number): number {
  const w = slot * TUNNEL_SLOT_WORDS;
  // Held for a few dozen instructions (replay check or update); the supervisor clears it if we die holding it.
  while (Atomics.compareExchange(slots, w + TS_LOCK, 0, routine + 1) !== 0);
  return w;
}

function unlockSlot(w: number): void {
  Atomics.store(slots, w + TS_LOCK, 0);
}

/** Next send counter of the tunnel, or -1 when the counter space is spent. Unique across every process. */
function nextCounter(t: RoutineTunnel): number {
  const c = (Atomics.add(slots, t.slot * TUNNEL_SLOT_WORDS + TS_SEND_COUNTER, 1) + 1) >>> 0;
  return c >= SEND_COUNTER_LIMIT ? -1 : c;
}

function markTx(t: RoutineTunnel): void {
  const w = t.slot * TUNNEL_SLOT_WORDS + TS_TX_MARK;
  if (slots[w] === 0) Atomics.store(slots, w, 1);
}

function markRx(t: RoutineTunnel): void {
  const w = t.slot * TUNNEL_SLOT_WORDS + TS_RX_MARK;
  if (slots[w] === 0) Atomics.store(slots, w, 1);
}

// ------------------------------------------------------------------------------------------------ sending

/** Encrypts `src[0..len)` as (type, subtype) on tunnel `t` and sends it on this routine's socket. */
function sendEncrypted(t: RoutineTunnel, type: number, subtype: number, src: Buffer, len: number): boolean {
  const counter = nextCounter(t);
  if (counter < 0) {
    counters[cbase + C['routine.dropped.no_tunnel']]++;
    return false;
  }
  writeHeader(sendBuf, 0, type, subtype, t.remoteIndex, 0, counter);
  const n = t.encrypt.encrypt(sendBuf, HEADER_LEN, sendBuf, 0, HEADER_LEN, src, 0, len, counter);
  sendTo(init.udpFd, sendBuf, HEADER_LEN + n, t.remoteSockaddr);
  markTx(t);
  return true;
}

function sendRecvError(localIndex: number, to: Buffer): void {
  if (setup.sendRecvError === 'never') return;
  if (setup.sendRecvError === 'private' && !isPrivate(sockaddrIPv4(to))) return;
  writeHeader(ctlBuf, 0, TYPE_RECV_ERROR, 0, localIndex, 0, 0);
  sendTo(init.udpFd, ctlBuf, HEADER_LEN, to);
  counters[cbase + C['messages.tx.recv_error']]++;
}

function isPrivate(ip: number): boolean {
  return ip >>> 24 === 10 || (ip & 0xfff00000) >>> 0 === 0xac100000 || (ip & 0xffff0000) >>> 0 === 0xc0a80000;
}

// --------------------------------------------------------------------------------------- inside -> outside

function routeFor(dst: number): number {
  if (((dst & vpnMask) >>> 0) === vpnNet) return dst;
  const routes = setup.unsafeRoutes;
  let best = -1;
  let bestMask = -1;
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    if (((dst & r.mask) >>> 0) === ((r.ip & r.mask) >>> 0) && r.mask >>> 0 > bestMask) {
      best = r.via;
      bestMask = r.mask >>> 0;
    }
  }
  return best;
}

/** An IPv4 packet from the inside (buf[0..len)), bound for a peer. */
function handleInside(buf: Buffer, len: number): void {
  if (len < 20 || buf[0]! >> 4 !== 4) return; // IPv6 and anything else: dropped quietly, as Nebula does
  const dst = buf.readUInt32BE(16);
  if (dst === vpnIp) return;
  if (setup.dropMulticast && dst >>> 28 === 14) return;
  if (setup.dropLocalBroadcast && dst === broadcast) return;
  const via = routeFor(dst);
  if (via < 0) return;
  const t = tunnels.forVpnIp(via >>> 0);
  if (t === undefined) {
    const r = parking.park(via >>> 0, buf, len, Date.now());
    if (r === 'ask') post({ type: 'needTunnel', routine, vpnIp: via >>> 0 });
    else if (r === 'dropped') counters[cbase + C['routine.dropped.parked_overflow']]++;
    return;
  }
  sendData(t, buf, len);
}

function sendData(t: RoutineTunnel, buf: Buffer, len: number): void {
  if (!parseIPv4Packet(buf, len, false, pkt)) {
    counters[cbase + C['routine.dropped.malformed']]++;
    return;
  }
  const verdict = gate.check(pkt, false, t.firewallPeer);
  if (verdict !== ALLOW) {
    counters[cbase + verdict]++;
    return;
  }
  if (sendEncrypted(t, TYPE_MESSAGE, 0, buf, len)) counters[cbase + C['routine.outside.tx_packets']]++;
}

// --------------------------------------------------------------------------------------- outside -> inside

function forwardMeta(type: number, subtype: number, localIndex: number, counter: number, data: Buffer, len: number): void {
  const packet: MetaPacket = {
    type,
    subtype,
    localIndex,
    remoteIndex: 0,
    counter,
    fromIp: sockaddrIPv4(fromSa),
    fromPort: sockaddrPort(fromSa),
    data: Uint8Array.prototype.slice.call(data, 0, len),
  };
  post({ type: 'meta', routine, packet });
}

/** One datagram from the underlay in recvBuf[0..len). */
function handleOutside(len: number): void {
  if (len < HEADER_LEN) {
    // 1-byte datagrams are punches/keep-alives (nebula-spec §5.6); anything else this short is garbage.
    if (len > 1) counters[cbase + C['messages.rx.invalid']]++;
    return;
  }
  const b0 = recvBuf[0]!;
  const type = b0 & 0x0f;
  const subtype = recvBuf[1]!;
  if (b0 >> 4 !== 1) {
    counters[cbase + C['messages.rx.invalid']]++;
    return;
  }
  const fromIp = sockaddrIPv4(fromSa);
  if (((fromIp & vpnMask) >>> 0) === vpnNet) return; // our own overlay as underlay: double encryption (#741)
  const localIndex = recvBuf.readUInt32BE(4);
  const counterHi = recvBuf.readUInt32BE(8);
  const counterLo = recvBuf.readUInt32BE(12);
  const counter = counterHi * 0x100000000 + counterLo;

  switch (type) {
    case TYPE_HANDSHAKE:
      counters[cbase + C['messages.rx.handshake_ixpsk0']]++;
      forwardMeta(type, subtype, localIndex, counter, recvBuf, len);
      return;
    case TYPE_RECV_ERROR:
      counters[cbase + C['messages.rx.recv_error']]++;
      forwardMeta(type, subtype, localIndex, counter, recvBuf, len);
      return;
    case TYPE_MESSAGE:
    case TYPE_LIGHTHOUSE:
    case TYPE_TEST:
    case TYPE_CLOSE_TUNNEL:
    case TYPE_CONTROL:
      break;
    default:
      counters[cbase + C['messages.rx.invalid']]++;
      return;
  }
  if (type === TYPE_MESSAGE && subtype !== 0) {
    counters[cbase + C['messages.rx.other']]++; // relayed frames: relays are not supported yet
    return;
  }

  const t = tunnels.byLocalIndex(localIndex);
  if (t === undefined) {
    // Perhaps a tunnel the supervisor is installing right now: hold it briefly (early-arrivals.ts).
    if (early.hold(localIndex, recvBuf, len, fromSa, Date.now())) return;
    counters[cbase + C['routine.dropped.no_tunnel']]++;
    sendRecvError(localIndex, fromSa);
    return;
  }
  const w = t.slot * TUNNEL_SLOT_WORDS;
  let lock = lockSlot(t.slot);
  const fresh = replayCheck(slots, w + TS_REPLAY, counter);
  const current = fresh ? 0 : replayCurrent(slots, w + TS_REPLAY);
  unlockSlot(lock);
  if (!fresh) {
    // Too late (a whole window behind) is not a replay: with several sender routines sharing one counter, a
    // routine descheduled between taking a counter and sending can be that late.
    const late = counter + REPLAY_WINDOW <= current;
    counters[cbase + (late ? C['network.packets.out_of_window'] : C['network.packets.duplicate'])]++;
    sendRecvError(localIndex, fromSa);
    return;
  }
  const n = t.decrypt.decrypt(plainBuf, 0, recvBuf, 0, HEADER_LEN, recvBuf, HEADER_LEN, len - HEADER_LEN, counter);
  if (n < 0) {
    counters[cbase + C['routine.dropped.decrypt_failed']]++;
    return;
  }
  lock = lockSlot(t.slot);
  const update = replayUpdate(slots, w + TS_REPLAY, counter);
  unlockSlot(lock);
  if (update < 0) {
    counters[cbase + (update === REPLAY_DUPLICATE ? C['network.packets.duplicate'] : C['network.packets.out_of_window'])]++;
    return;
  }
  if (update > 0) counters[cbase + C['network.packets.lost']] += update;
  markRx(t);
  const fromPort = sockaddrPort(fromSa);
  if (fromIp !== t.remoteIp || fromPort !== t.remotePort) {
    // Roaming: an authenticated packet from a new address moves the tunnel there (after decryption, unlike 1.6.1).
    t.setRemote(fromIp, fromPort);
    post({ type: 'roamed', routine, localIndex, remoteIp: fromIp, remotePort: fromPort });
  }

  switch (type) {
    case TYPE_MESSAGE:
      handleInbound(t, n);
      return;
    case TYPE_TEST:
      if (subtype === SUBTYPE_TEST_REQUEST) {
        counters[cbase + C['messages.rx.test_request']]++;
        if (sendEncrypted(t, TYPE_TEST, SUBTYPE_TEST_REPLY, plainBuf, n)) counters[cbase + C['messages.tx.test_response']]++;
      } else if (subtype === SUBTYPE_TEST_REPLY) counters[cbase + C['messages.rx.test_response']]++;
      else counters[cbase + C['messages.rx.other']]++;
      return;
    case TYPE_CLOSE_TUNNEL:
      counters[cbase + C['messages.rx.close_tunnel']]++;
      forwardMeta(type, subtype, localIndex, counter, plainBuf, n);
      return;
    case TYPE_LIGHTHOUSE:
      counters[cbase + C['messages.rx.lighthouse']]++;
      forwardMeta(type, subtype, localIndex, counter, plainBuf, n);
      return;
    default:
      counters[cbase + C['messages.rx.other']]++;
      forwardMeta(type, subtype, localIndex, counter, plainBuf, n);
  }
}

/** A decrypted overlay packet in plainBuf[0..len) from tunnel t. */
function handleInbound(t: RoutineTunnel, len: number): void {
  if (!parseIPv4Packet(plainBuf, len, true, pkt)) {
    counters[cbase + C['routine.dropped.malformed']]++;
    return;
  }
  const verdict = gate.check(pkt, true, t.firewallPeer);
  if (verdict !== ALLOW) {
    counters[cbase + verdict]++;
    return;
  }
  counters[cbase + C['routine.outside.rx_packets']]++;
  if (init.insideFd >= 0) {
    if (writeFd(init.insideFd, plainBuf, len) > 0) counters[cbase + C['routine.inside.tx_packets']]++;
    return;
  }
  counters[cbase + C['messages.rx.message']]++;
  answerEcho(t, len);
}

/**
 * The disabled inside (tun.disabled): no device, so the only thing to deliver to is ourselves. Answer an ICMP echo
 * request to our own VPN IP in place (swap addresses, type 8 -> 0, patch the checksum); drop everything else.
 */
function answerEcho(t: RoutineTunnel, len: number): void {
  const ihl = (plainBuf[0]! & 0x0f) << 2;
  if (pkt.proto !== 1 || pkt.fragment || pkt.localIp !== vpnIp || len < ihl + 8 || plainBuf[ihl] !== 8) return;
  const src = plainBuf.readUInt32BE(12);
  plainBuf.writeUInt32BE(plainBuf.readUInt32BE(16), 12);
  plainBuf.writeUInt32BE(src, 16);
  plainBuf[ihl] = 0;
  // RFC 1624 incremental update: the type byte went from 8 to 0, so the one's complement sum drops by 0x0800.
  let sum = plainBuf.readUInt16BE(ihl + 2) + 0x0800;
  sum = (sum & 0xffff) + (sum >>> 16);
  plainBuf.writeUInt16BE(sum & 0xffff, ihl + 2);
  if (parseIPv4Packet(plainBuf, len, false, pkt) && gate.check(pkt, false, t.firewallPeer) === ALLOW) {
    if (sendEncrypted(t, TYPE_MESSAGE, 0, plainBuf, len)) counters[cbase + C['messages.tx.message']]++;
  }
}

/** Processes a held datagram as if it had just arrived (recvBuf and fromSa are free between packets). */
function replayArrival(e: EarlyArrival): void {
  e.data.copy(recvBuf);
  e.sockaddr.copy(fromSa);
  handleOutside(e.data.length);
}

/** Held datagrams whose tunnel never came: they get the recvError they would have got at once. */
function expireEarlyArrivals(now: number): void {
  for (const e of early.expire(now)) {
    counters[cbase + C['routine.dropped.no_tunnel']]++;
    sendRecvError(e.localIndex, e.sockaddr);
  }
}

// ------------------------------------------------------------------------------------------- control messages

function installFirewall(update: FirewallUpdate): void {
  gate.setFirewall(compileFirewall(update, setup));
}

function onControl(msg: SupervisorToRoutine): boolean {
  switch (msg.type) {
    case 'tunnelUp': {
      const t = tunnels.install(msg.tunnel);
      for (const parked of parking.take(t.vpnIp)) sendData(t, parked, parked.length);
      for (const e of early.takeFor(t.localIndex)) replayArrival(e);
      return true;
    }
    case 'tunnelDown':
      tunnels.removeByIndex(msg.localIndex);
      return true;
    case 'remoteChanged':
      tunnels.byLocalIndex(msg.localIndex)?.setRemote(msg.remoteIp, msg.remotePort);
      return true;
    case 'firewall':
      installFirewall(msg.firewall);
      return true;
    case 'shutdown':
      return false;
    case 'setup':
      return true;
  }
}

function drainControl(): boolean {
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m === undefined) return true;
    if (!onControl(m.message as SupervisorToRoutine)) return false;
  }
}

// ---------------------------------------------------------------------------------------------------- loop

function run(): void {
  for (const t of setup.tunnels) onControl({ type: 'tunnelUp', tunnel: t });
  const hasInside = init.insideFd >= 0;
  const nfds = hasInside ? 3 : 2;
  const pollBuf = Buffer.alloc(8 * nfds);
  const fds = [init.udpFd, init.wakeFd, init.insideFd];
  for (let i = 0; i < nfds; i++) {
    pollBuf.writeInt32LE(fds[i]!, i * 8);
    pollBuf.writeInt16LE(POLLIN, i * 8 + 4);
  }
  let lastExpire = Date.now();
  log('info', 'routine data path running', { routine, tunnels: tunnels.size });
  for (;;) {
    const ready = pollFds(pollBuf, nfds, early.size > 0 ? EARLY_WAIT_MS : 1000);
    if (ready < 0) continue; // EINTR
    // Control first: a tunnelUp already waiting is installed before data that arrived in the same wake-up.
    if (pollBuf.readInt16LE(8 + REVENTS) !== 0) readFd(init.wakeFd, eventBuf, 8);
    if (!drainControl()) break;
    if (pollBuf.readInt16LE(REVENTS) !== 0) {
      for (let i = 0; i < BATCH; i++) {
        const len = recvFrom(init.udpFd, recvBuf, fromSa);
        if (len < 0) break;
        handleOutside(len);
      }
    }
    if (hasInside && pollBuf.readInt16LE(16 + REVENTS) !== 0) {
      for (let i = 0; i < BATCH; i++) {
        const len = readFd(init.insideFd, insideBuf, insideBuf.length);
        if (len <= 0) break;
        counters[cbase + C['routine.inside.rx_packets']]++;
        handleInside(insideBuf, len);
      }
    }
    const now = Date.now();
    if (early.size > 0) expireEarlyArrivals(now);
    if (now - lastExpire > 1000) {
      parking.expire(now, 10_000);
      lastExpire = now;
    }
  }
  port.postMessage({ type: 'stopped' });
}

run();
