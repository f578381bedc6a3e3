/**
 * The data path of one routine, as an object built from its dependencies: the shared state (tunnel slots,
 * conntrack, this routine's counters), the two edges (edges.ts) and the link to the supervisor. It owns no fd and
 * does no I/O of its own, so the unit tests drive two of them against each other in memory; the worker entry
 * (datapath-worker.ts) gives it real fds and a poll loop.
 *
 * Queue affinity (nebula-spec §8.4): what is read from this routine's inside queue leaves on its UDP socket, what
 * arrives on its socket is written to its inside queue. Per packet nothing is allocated: batches, the parsed
 * firewall tuple and the sockaddrs are reused; counters are plain stores into this routine's row of shared memory.
 */
import { formatIPv6, parseIPv6 } from '../shared/util/ipv6';
import type { FirewallUpdate, RoutineSetup, SupervisorToRoutine, RoutineToSupervisor } from '../shared/ipc/messages';
import { C } from '../shared/state/counters';
import { ConntrackTable } from '../shared/state/conntrack';
import { TunnelSlots } from '../shared/state/tunnel-slots';
import { HEADER_LEN } from '../shared/protocol/header';
import { TAG_LEN } from '../shared/crypto';
import { RoutineCounters, DatapathContext, type SupervisorLink } from './context';
import { EARLY_WAIT_MS, EarlyArrivals } from './early-arrivals';
import { EchoResponder } from './echo-responder';
import { DatagramBatch, PacketBatch, type InsideQueue, type UnderlaySocket } from './edges';
import { FirewallGate } from './firewall-gate';
import { compileFirewall } from './firewall-compile';
import { InsideToOutside } from './inside-to-outside';
import { OutboundParking } from './outbound-parking';
import { InsideOutbox, UnderlayOutbox } from './outboxes';
import { OutsideToInside } from './outside-to-inside';
import { Rejecter } from './reject';
import { TunnelRegistry } from './tunnel-registry';

/** Packets taken from one edge per wake-up before the other edge gets its turn. */
export const BATCH = 64;
/**
 * Largest packet a batch entry holds: Go nebula reads the underlay with a 9001-byte buffer (udp.MTU) and the tun
 * with an MTU-sized one; a bigger tun.mtu raises it. A longer datagram is truncated by the kernel and then fails
 * to authenticate, as in Go.
 */
const MIN_PACKET_BYTES = 9001;
/** Parked packets older than this are dropped (the handshake timed out). */
const PARKED_MAX_AGE_MS = 10_000;
const PARKING_SWEEP_MS = 1000;

export interface DatapathDeps {
  setup: RoutineSetup;
  /** The tunnel-slot, conntrack and counter views of the shared region (or of a plain SharedArrayBuffer in tests). */
  tunnelWords: Int32Array;
  conntrackWords: Int32Array;
  conntrackCapacity: number;
  counterView: Float64Array;
  underlay: UnderlaySocket;
  /** null when the inside is disabled: the routine then answers pings to its own VPN IP itself. */
  inside: InsideQueue | null;
  supervisor: SupervisorLink;
  /** Milliseconds, monotonic enough for timeouts (Date.now in production, a test clock in tests). */
  clock: () => number;
  /** Entries per batch (default BATCH): the warm-up's throwaway data paths take a few, not 64 x 9 KB per batch. */
  batchSize?: number;
}

export class Datapath {
  private readonly ctx: DatapathContext;
  private readonly parking = new OutboundParking();
  private readonly early = new EarlyArrivals();
  private readonly toOutside: InsideToOutside;
  private readonly toInside: OutsideToInside;
  private readonly recvBatch: DatagramBatch;
  private readonly readBatch: PacketBatch | null;
  private readonly inside: InsideQueue | null;
  private readonly underlay: UnderlaySocket;
  private lastSweep: number;

  constructor(deps: DatapathDeps) {
    const setup = deps.setup;
    const owner = setup.routine + 1;
    const gate = new FirewallGate(new ConntrackTable(deps.conntrackWords, deps.conntrackCapacity, owner), compileFirewall(setup.firewall, setup));
    this.inside = deps.inside;
    this.underlay = deps.underlay;
    const counters = new RoutineCounters(deps.counterView, setup.routine);
    const packetBytes = Math.max(MIN_PACKET_BYTES, setup.mtu);
    const batch = deps.batchSize ?? BATCH;
    this.ctx = new DatapathContext(
      setup,
      new TunnelSlots(deps.tunnelWords, owner),
      new TunnelRegistry(setup.cipher),
      gate,
      counters,
      // Room for a relay frame: the datagram plus an outer header and tag.
      new UnderlayOutbox(deps.underlay, batch, packetBytes + 2 * (HEADER_LEN + TAG_LEN), counters),
      new InsideOutbox(deps.inside, batch, packetBytes, counters),
      deps.supervisor,
      deps.clock,
    );
    this.recvBatch = new DatagramBatch(batch, packetBytes + 2 * (HEADER_LEN + TAG_LEN));
    this.readBatch = deps.inside ? new PacketBatch(batch, packetBytes) : null;
    const reject = new Rejecter(this.ctx);
    this.toOutside = new InsideToOutside(this.ctx, this.parking, reject);
    this.toInside = new OutsideToInside(this.ctx, this.early, deps.inside ? null : new EchoResponder(this.ctx), reject, packetBytes + HEADER_LEN + TAG_LEN);
    this.toInside.relays.setRoutes(setup.relays ?? []);
    this.lastSweep = deps.clock();
    for (const t of setup.tunnels) this.control({ type: 'tunnelUp', tunnel: t });
  }

  get tunnelCount(): number {
    return this.ctx.tunnels.size;
  }

  /** How long the poll loop may sleep: short while datagrams wait for their tunnel, so they expire on time. */
  get pollTimeoutMs(): number {
    return this.early.size > 0 ? EARLY_WAIT_MS : 1000;
  }

  /**
   * One batch from the underlay socket, and more while the edge holds datagrams it already received (a GRO receive
   * bigger than a batch); returns how many datagrams were read (0: the socket is drained).
   */
  onUnderlayReadable(): number {
    const batch = this.recvBatch;
    const underlay = this.underlay;
    let total = 0;
    do {
      const n = underlay.recvBatch(batch);
      for (let i = 0; i < n; i++) this.toInside.handle(batch.bufs[i]!, batch.lens[i]!, batch.addrs[i]!);
      this.flush();
      total += n;
    } while (underlay.pending?.() === true);
    return total;
  }

  /** One batch from the inside queue; returns how many packets were read. */
  onInsideReadable(): number {
    const batch = this.readBatch;
    if (batch === null || this.inside === null) return 0;
    const n = this.inside.readBatch(batch);
    const counters = this.ctx.counters;
    for (let i = 0; i < n; i++) {
      counters.inc(C['routine.inside.rx_packets']);
      this.toOutside.handle(batch.bufs[i]!, batch.lens[i]!);
    }
    this.flush();
    return n;
  }

  /** Timers: held datagrams whose tunnel never came get their recvError; stale parked packets are dropped. */
  tick(): void {
    const now = this.ctx.clock();
    if (this.early.size > 0) {
      for (const e of this.early.expire(now)) {
        this.ctx.counters.inc(C['routine.dropped.no_tunnel']);
        this.ctx.sendRecvError(e.localIndex, e.sockaddr);
      }
      this.flush();
    }
    if (now - this.lastSweep > PARKING_SWEEP_MS) {
      const expired = this.parking.expire(now, PARKED_MAX_AGE_MS);
      if (expired > 0) this.ctx.counters.add(C['hostinfo.cached_packets.dropped'], expired);
      this.lastSweep = now;
    }
  }

  /** A control message from the supervisor; false for 'shutdown' (the loop ends). */
  control(msg: SupervisorToRoutine): boolean {
    const ctx = this.ctx;
    switch (msg.type) {
      case 'tunnelUp': {
        const t = ctx.tunnels.install(msg.tunnel);
        // Counted as Go's handshakeComplete does: every cached packet handed to the send path once the tunnel is up.
        const parked = this.parking.take(t.vpnIp);
        // First contact by IPv6 address: what waited under an address of this peer's certificate goes too.
        for (const a of t.peer.ips6) {
          const words = parseIPv6(a);
          if (words !== undefined) parked.push(...this.parking.take(formatIPv6(words)));
        }
        for (const p of parked) this.toOutside.sendData(t, p, p.length);
        if (parked.length > 0) ctx.counters.add(C['hostinfo.cached_packets.sent'], parked.length);
        // Held datagrams are processed as if they had just arrived.
        for (const e of this.early.takeFor(t.localIndex)) this.toInside.handle(e.data, e.data.length, e.sockaddr);
        this.flush();
        return true;
      }
      case 'tunnelDown':
        ctx.tunnels.removeByIndex(msg.localIndex);
        return true;
      case 'ipcShed':
        ctx.counters.add(C['routine.dropped.ipc_backlog'], msg.count);
        return true;
      case 'remoteChanged':
        ctx.tunnels.setRemote(msg.localIndex, msg.remoteIp, msg.remotePort, msg.via);
        return true;
      case 'firewall':
        this.installFirewall(msg.firewall);
        return true;
      case 'relays':
        this.toInside.relays.setRoutes(msg.relays);
        return true;
      case 'sendRecvError':
        ctx.sendRecvErrorPolicy = msg.sendRecvError;
        return true;
      case 'shutdown':
        return false;
      case 'setup':
        return true;
    }
  }

  post(msg: RoutineToSupervisor): void {
    this.ctx.post(msg);
  }

  private installFirewall(update: FirewallUpdate): void {
    this.ctx.gate.setFirewall(compileFirewall(update, this.ctx.setup));
  }

  private flush(): void {
    this.ctx.outbox.flush();
    this.ctx.insideOut.flush();
  }
}
