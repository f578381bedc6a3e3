/**
 * The shared-memory region every process maps: fixed-size tables with capacities from config, so the layout is a
 * pure function of those numbers and every process computes the same offsets.
 *
 *   [header 64 B][tunnel slots: tunnels × TUNNEL_SLOT_WORDS int32][counters: routines × COUNTER_COUNT float64]
 *   [conntrack: conntrack × CONNTRACK_WORDS int32]
 *
 * Nothing here holds a lock across a syscall; the one spin lock per tunnel slot (replay window) is held for a few
 * dozen instructions and the supervisor releases it if its holder dies (see tunnel-slots.ts).
 */
import { COUNTER_COUNT } from './counters';
import { REPLAY_WINDOW_WORDS } from '../protocol/replay-window';

export const REGION_MAGIC = 0x4e545331; // "NTS1"
export const HEADER_BYTES = 64;

/** Tunnel slot: lock, send counter (low, then high word at 6), liveness marks, recvError count, in-use, the replay window. */
export const TS_LOCK = 0;
export const TS_SEND_COUNTER = 1;
export const TS_RX_MARK = 2;
export const TS_TX_MARK = 3;
export const TS_RECV_ERRORS = 4;
export const TS_IN_USE = 5;
/** High 32 bits of the 64-bit send counter (TS_SEND_COUNTER holds the low 32). */
export const TS_SEND_COUNTER_HI = 6;
export const TS_REPLAY = 8;
export const TUNNEL_SLOT_WORDS = TS_REPLAY + REPLAY_WINDOW_WORDS;

/** One conntrack entry: 16 int32 words (64 bytes), room for two IPv6 addresses (layout in conntrack.ts). */
export const CONNTRACK_WORDS = 16;

export interface RegionCapacities {
  tunnels: number;
  routines: number;
  conntrack: number;
}

export interface RegionLayout extends RegionCapacities {
  tunnelsOffset: number;
  countersOffset: number;
  conntrackOffset: number;
  totalBytes: number;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function computeLayout(cap: RegionCapacities): RegionLayout {
  const tunnelsOffset = HEADER_BYTES;
  const countersOffset = align(tunnelsOffset + cap.tunnels * TUNNEL_SLOT_WORDS * 4, 64);
  const conntrackOffset = align(countersOffset + cap.routines * COUNTER_COUNT * 8, 64);
  const totalBytes = align(conntrackOffset + cap.conntrack * CONNTRACK_WORDS * 4, 4096);
  return { ...cap, tunnelsOffset, countersOffset, conntrackOffset, totalBytes };
}

/** Typed views over one mapping of the region. */
export interface RegionViews {
  layout: RegionLayout;
  header: Int32Array;
  tunnels: Int32Array;
  counters: Float64Array;
  conntrack: Int32Array;
}

export function viewsOver(buffer: ArrayBufferLike, layout: RegionLayout): RegionViews {
  if (buffer.byteLength < layout.totalBytes) throw new Error('shared region is smaller than its layout');
  return {
    layout,
    header: new Int32Array(buffer, 0, HEADER_BYTES / 4),
    tunnels: new Int32Array(buffer, layout.tunnelsOffset, layout.tunnels * TUNNEL_SLOT_WORDS),
    counters: new Float64Array(buffer, layout.countersOffset, layout.routines * COUNTER_COUNT),
    conntrack: new Int32Array(buffer, layout.conntrackOffset, layout.conntrack * CONNTRACK_WORDS),
  };
}

/** The supervisor stamps the header once; routines check it so a layout mismatch fails loudly at start. */
export function stampHeader(v: RegionViews): void {
  v.header[0] = REGION_MAGIC;
  v.header[1] = v.layout.tunnels;
  v.header[2] = v.layout.routines;
  v.header[3] = v.layout.conntrack;
}

export function checkHeader(v: RegionViews): void {
  const h = v.header;
  if (h[0] !== REGION_MAGIC || h[1] !== v.layout.tunnels || h[2] !== v.layout.routines || h[3] !== v.layout.conntrack)
    throw new Error('shared region header does not match the expected layout');
}
