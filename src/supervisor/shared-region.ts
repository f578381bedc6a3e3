/**
 * The supervisor's side of the shared-memory region (DESIGN.md, "Shared state across processes"): it creates the
 * memfd every routine maps, sized from config, and is the one place that reads the routines' rows back (counters,
 * conntrack) and cleans up after a routine that died holding locks.
 */
import type { NebulaConfig } from '../shared/config';
import { createRegion, type Region } from '../shared/shm/region';
import { ConntrackTable, conntrackEntries, conntrackNow, releaseConntrackOwner, type ConntrackEntry } from '../shared/state/conntrack';
import { COUNTER_COUNT } from '../shared/state/counters';
import { computeLayout, stampHeader, viewsOver, type RegionCapacities, type RegionViews } from '../shared/state/layout';
import { TunnelSlots } from '../shared/state/tunnel-slots';
import type { SupervisorCounters } from './counters';

/** The supervisor's lock-owner tag in the tunnel slots (routine i uses i + 1; 0 means unlocked). */
const SUPERVISOR_OWNER = -1;

export class SharedRegion {
  readonly capacities: RegionCapacities;
  /** Every tunnel's send counter, replay window and liveness marks. */
  readonly slots: TunnelSlots;
  private readonly region: Region;
  private readonly views: RegionViews;
  private readonly conntrack: ConntrackTable;

  /** @param own the supervisor's own counters, added to the routines' in `counterTotal` */
  constructor(
    cfg: NebulaConfig,
    private readonly own: SupervisorCounters,
  ) {
    // The conntrack table is open-addressed with a mask, so its capacity is rounded up to a power of two.
    this.capacities = { tunnels: cfg.tunnels.max, routines: cfg.routines, conntrack: nextPow2(cfg.firewall.conntrack.max_entries) };
    const layout = computeLayout(this.capacities);
    this.region = createRegion(layout.totalBytes);
    this.views = viewsOver(this.region.buffer, layout);
    stampHeader(this.views);
    this.slots = new TunnelSlots(this.views.tunnels, SUPERVISOR_OWNER);
    this.conntrack = new ConntrackTable(this.views.conntrack, this.capacities.conntrack);
  }

  /** The memfd, passed to every (re)spawned routine. */
  get fd(): number {
    return this.region.fd;
  }

  /** Sum of one counter over every routine row plus the supervisor's own count. */
  counterTotal(index: number, name: string): number {
    let total = this.own.get(name);
    for (let r = 0; r < this.capacities.routines; r++) total += this.routineCounter(r, index);
    return total;
  }

  routineCounter(routine: number, index: number): number {
    return this.views.counters[routine * COUNTER_COUNT + index]!;
  }

  /** Live (unexpired) conntrack entries. */
  conntrackCount(): number {
    return this.conntrack.count(conntrackNow());
  }

  /** Up to `limit` live conntrack entries (nebula-ctl conntrack). */
  conntrackEntries(limit: number): ConntrackEntry[] {
    return conntrackEntries(this.views.conntrack, this.capacities.conntrack, conntrackNow(), limit);
  }

  resetConntrack(): void {
    this.views.conntrack.fill(0);
  }

  /** Routine `i` died: free the tunnel-slot locks and the conntrack entries it may have held mid-write. */
  releaseRoutine(i: number): void {
    const owner = i + 1;
    this.slots.releaseLocksOf(owner);
    releaseConntrackOwner(this.views.conntrack, this.capacities.conntrack, owner);
  }
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
