/**
 * In-process data paths for the unit tests and the benchmarks (no supervisor, no routine process): a routine's setup
 * (one routine, a /24 VPN network, MTU 1300, no IPv6, a firewall that passes everything, nothing installed yet;
 * callers override what their case is about), and a Datapath over a private shared region.
 */
import { Datapath } from '../routine/datapath';
import type { InsideQueue, UnderlaySocket } from '../routine/edges';
import type { FirewallUpdate, RoutineSetup } from '../shared/ipc/messages';
import { computeLayout, viewsOver } from '../shared/state/layout';
import { TunnelSlots } from '../shared/state/tunnel-slots';

/** A rule matching every packet (firewall.ts's wire shape). */
export const PASS_ALL_RULE: FirewallUpdate['inbound'][number] = { proto: 0, startPort: 0, endPort: 0, host: 'any', groups: [], cidr: '', caName: '', caSha: '' };

export function testRoutineSetup(vpnIp: number, overrides: Partial<RoutineSetup> = {}): RoutineSetup {
  return {
    routine: 0,
    routines: 1,
    cipher: 'aes',
    vpnIp,
    vpnMask: 0xffffff00,
    localSubnets: [],
    unsafeRoutes: [],
    vpnNetworks6: [],
    localSubnets6: [],
    unsafeRoutes6: [],
    insideKind: 'userspace',
    keepWarm: false,
    mtu: 1300,
    sendRecvError: 'always',
    dropLocalBroadcast: false,
    dropMulticast: false,
    firewall: { version: 1, inbound: [PASS_ALL_RULE], outbound: [PASS_ALL_RULE], tcpTimeout: 720_000, udpTimeout: 180_000, defaultTimeout: 600_000 },
    tunnels: [],
    relays: [],
    logLevel: 'info',
    logFormat: 'text',
    ...overrides,
  };
}

/**
 * A Datapath for `setup` over its own small region (8 tunnel slots, 256 conntrack entries), the slots of
 * `setup.tunnels` reset as the supervisor resets them before an install; what it hands up is dropped.
 */
export function privateDatapath(setup: RoutineSetup, edges: { underlay: UnderlaySocket; inside: InsideQueue | null }): Datapath {
  const layout = computeLayout({ tunnels: 8, routines: 1, conntrack: 256 });
  const views = viewsOver(new SharedArrayBuffer(layout.totalBytes), layout);
  const slots = new TunnelSlots(views.tunnels, -1);
  for (const t of setup.tunnels) slots.reset(t.slot);
  return new Datapath({
    setup,
    tunnelWords: views.tunnels,
    conntrackWords: views.conntrack,
    conntrackCapacity: layout.conntrack,
    counterView: views.counters,
    ...edges,
    supervisor: { post: () => undefined },
    clock: Date.now,
  });
}
