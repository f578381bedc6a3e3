/**
 * The `setup` message a routine gets at every (re)spawn: everything it needs to run its data path, taken from the
 * running config at that moment, with every tunnel that exists, so a respawned routine carries on at once.
 */
import type { RelayRoute, RoutineSetup, TunnelInstall } from '../shared/ipc/messages';
import { parseCidr, parseIPv4 } from '../shared/util/ipv4';
import { formatPrefix, isV6 } from '../shared/pki/v2/prefix';
import type { InsideKind } from './inside/inside';
import type { LiveConfig } from './live-config';

export interface RoutineSetupSource {
  live: LiveConfig;
  insideKind: InsideKind;
  /** Every installed tunnel, in IPC form. */
  tunnels(): TunnelInstall[];
  /** The established relay indexes (relay-manager.ts). */
  relays(): RelayRoute[];
}

export function routineSetup(i: number, src: RoutineSetupSource): RoutineSetup {
  const { live } = src;
  const cfg = live.config;
  const unsafeRoutes = [];
  const unsafeRoutes6 = [];
  for (const r of cfg.tun.unsafe_routes) {
    const net = parseCidr(r.route);
    const via = parseIPv4(r.via);
    if (via === undefined) continue;
    if (net) unsafeRoutes.push({ ip: net.ip, mask: net.mask, via });
    else unsafeRoutes6.push({ route: r.route, via });
  }
  // Our IPv6 networks and unsafe networks are in our v2 certificate (a v1 certificate has none).
  const v2 = live.pki.cert.v2;
  return {
    routine: i,
    routines: cfg.routines,
    cipher: cfg.cipher,
    vpnIp: live.vpnIp,
    vpnMask: live.vpnMask,
    localSubnets: live.pki.cert.details.subnets.map((s) => ({ ip: s.ip, mask: s.mask })),
    unsafeRoutes,
    vpnNetworks6: [...live.vpnNetworks6],
    localSubnets6: (v2?.unsafeNetworks ?? []).filter(isV6).map(formatPrefix),
    unsafeRoutes6,
    insideKind: src.insideKind,
    // No inside, no flows to keep warm: a lighthouse's datagrams are meta packets for the supervisor.
    keepWarm: cfg.tun.keep_warm && src.insideKind !== 'disabled',
    mtu: cfg.tun.mtu,
    sendRecvError: cfg.listen.send_recv_error,
    dropLocalBroadcast: cfg.tun.drop_local_broadcast,
    dropMulticast: cfg.tun.drop_multicast,
    firewall: live.firewall,
    tunnels: src.tunnels(),
    relays: src.relays(),
    logLevel: cfg.logging.level,
    logFormat: cfg.logging.format,
  };
}
