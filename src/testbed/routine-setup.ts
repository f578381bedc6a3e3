/**
 * A routine's setup for the in-process data paths of the unit tests and the benchmarks (no supervisor): one routine,
 * a /24 VPN network, MTU 1300, no IPv6, a firewall that passes everything, nothing installed yet. Callers override
 * what their case is about.
 */
import type { FirewallUpdate, RoutineSetup } from '../shared/ipc/messages';

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
