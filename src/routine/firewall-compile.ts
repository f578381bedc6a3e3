/** Builds the routine's matcher from a rule set sent by the supervisor. */
import { Firewall } from '../shared/firewall';
import type { FirewallUpdate, RoutineSetup } from '../shared/ipc/messages';

export function compileFirewall(update: FirewallUpdate, setup: RoutineSetup): Firewall {
  return new Firewall({
    inbound: update.inbound,
    outbound: update.outbound,
    local: { ips: [setup.vpnIp >>> 0], subnets: setup.localSubnets, networks: [{ ip: setup.vpnIp >>> 0, mask: setup.vpnMask >>> 0 }] },
    conntrack: { tcp_timeout: update.tcpTimeout, udp_timeout: update.udpTimeout, default_timeout: update.defaultTimeout },
    rulesVersion: update.version,
    defaultLocalCidrAny: update.defaultLocalCidrAny,
    inboundAction: update.inboundAction,
    outboundAction: update.outboundAction,
  });
}
