/**
 * What the node reports about itself: the `nebula-ctl status` answer and the source the Prometheus endpoint reads.
 * Both read the running parts at the moment they are asked, so nothing here is cached or kept up to date.
 */
import { C, COUNTER_NAMES } from '../shared/state/counters';
import { socketMemInfo } from '../shared/native/libc';
import { formatIPv4 } from '../shared/util/ipv4';
import { formatEndpoint } from '../shared/util/endpoint';
import type { SupervisorCounters } from './counters';
import type { HandshakeManager } from './handshake-manager';
import type { HostMap } from './hostmap';
import type { LiveConfig } from './live-config';
import type { Logger } from '../shared/log';
import type { MetricsSource } from './metrics';
import type { RoutinePool } from './routines';
import type { SharedRegion } from './shared-region';
import type { Lighthouse } from './lighthouse';
import type { RelayManager } from './relay-manager';
import type { Tunnels } from './tunnels';
import type { RoutineRow } from './console-views';

/** The running parts that status, /metrics and the console commands (console.ts) read or act on. */
export interface ReportedParts {
  live: LiveConfig;
  log: Logger;
  region: SharedRegion;
  counters: SupervisorCounters;
  hostmap: HostMap;
  handshakes: HandshakeManager;
  tunnels: Tunnels;
  routines: RoutinePool;
  /** The lighthouse address map (list-lighthouse-addrmap, query-lighthouse). */
  lighthouse: Lighthouse;
  /** The relay table (print-relays). */
  relays: RelayManager;
  insideName: string;
  listenPort: number;
  /** Routine i's UDP socket (the supervisor keeps its copy); undefined once the sockets are closed. */
  udpFd(i: number): number | undefined;
}

export interface NodeStatus {
  ok: true;
  vpnIp: string;
  interface: string;
  listenPort: number;
  /** `remote` is "relay <relay VPN IP>" for a relayed tunnel. */
  tunnels: Array<{ vpnIp: string; name: string; localIndex: number; remoteIndex: number; remote: string }>;
  routines: Array<{
    routine: number;
    pid: number | undefined;
    restarts: number;
    insideRx: number;
    outsideTx: number;
    outsideRx: number;
    insideTx: number;
  }>;
  /** Every shared counter (routines + supervisor), then the counters only the supervisor keeps. */
  counters: Record<string, number>;
}

export function nodeStatus(p: ReportedParts): NodeStatus {
  const { region } = p;
  const tunnels = [...p.hostmap.hosts()].map((h) => ({
    vpnIp: formatIPv4(h.vpnIp),
    name: h.cert.details.name,
    localIndex: h.localIndex,
    remoteIndex: h.remoteIndex,
    remote: h.relay ? `relay ${formatIPv4(h.relay.relayVpnIp)}` : formatEndpoint({ ip: h.remoteIp, port: h.remotePort }),
  }));
  const routines = routineRows(p).map(({ routine, pid, restarts, insideRx, outsideTx, outsideRx, insideTx }) => ({
    routine,
    pid: pid ?? undefined,
    restarts,
    insideRx,
    outsideTx,
    outsideRx,
    insideTx,
  }));
  const counters: Record<string, number> = {};
  for (const name of COUNTER_NAMES) counters[name] = region.counterTotal(C[name], name);
  for (const [name, value] of p.counters.entries()) if (!(name in counters)) counters[name] = value;
  return { ok: true, vpnIp: formatIPv4(p.live.vpnIp), interface: p.insideName, listenPort: p.listenPort, tunnels, routines, counters };
}

/** Each routine process: pid and uptime (null while it is being respawned), restarts, its packet counters. */
export function routineRows(
  p: { routines: Pick<RoutinePool, 'pids' | 'restarts' | 'startedAt'>; region: Pick<SharedRegion, 'routineCounter'> },
  now = Date.now(),
): RoutineRow[] {
  const { region } = p;
  return p.routines.pids().map((pid, i) => {
    const startedAt = p.routines.startedAt(i);
    return {
      routine: i,
      pid: pid ?? null,
      uptimeSeconds: pid === undefined || startedAt === undefined ? null : Math.floor((now - startedAt) / 1000),
      restarts: p.routines.restarts(i),
      insideRx: region.routineCounter(i, C['routine.inside.rx_packets']),
      insideTx: region.routineCounter(i, C['routine.inside.tx_packets']),
      outsideRx: region.routineCounter(i, C['routine.outside.rx_packets']),
      outsideTx: region.routineCounter(i, C['routine.outside.tx_packets']),
    };
  });
}

export function metricsSource(p: ReportedParts): MetricsSource {
  const { region } = p;
  return {
    routines: region.capacities.routines,
    counterTotal: (index, name) => region.counterTotal(index, name),
    routineCounter: (routine, index) => region.routineCounter(routine, index),
    supervisorCounters: () => p.counters.entries(),
    handshakes: () => p.handshakes.durations.snapshot(),
    udpSockets: region.capacities.routines,
    udpMemInfo: (i) => {
      const fd = p.udpFd(i);
      return fd === undefined ? undefined : socketMemInfo(fd);
    },
    // Go's HostMap.EmitStats for "main" and "pending" (relay indexes live in the main host map, as in Go).
    gauges: () => ({
      'hostmap.main.hosts': p.hostmap.size,
      'hostmap.main.indexes': p.hostmap.indexCount,
      'hostmap.main.remoteIndexes': p.hostmap.remoteIndexCount,
      'hostmap.main.relayIndexes': p.relays.size,
      'hostmap.pending.hosts': p.handshakes.pendingCount,
      'hostmap.pending.indexes': p.handshakes.pendingIndexCount,
      'hostmap.pending.remoteIndexes': 0,
      'hostmap.pending.relayIndexes': 0,
      'firewall.conntrack.count': region.conntrackCount(),
      'firewall.rules.version': p.live.firewall.version,
      routines: region.capacities.routines,
    }),
  };
}
