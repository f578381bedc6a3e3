/** Builds the routine's matcher from a rule set sent by the supervisor. */
import { Firewall } from '../shared/firewall';
import type { FirewallUpdate, RoutineSetup } from '../shared/ipc/messages';
import { parseCidr6, type IPv6Net } from '../shared/util/ipv6';

function nets6(texts: readonly string[]): IPv6Net[] {
  return texts.map((t) => parseCidr6(t)).filter((n): n is IPv6Net => n !== undefined);
}

export function compileFirewall(update: FirewallUpdate, setup: RoutineSetup): Firewall {
  // Our IPv6 VPN networks carry our addresses as host bits, as the IPv4 VPN IP does.
  const networks6 = nets6(setup.vpnNetworks6);
  return new Firewall({
    inbound: update.inbound,
    outbound: update.outbound,
    local: {
      ips: [setup.vpnIp >>> 0],
      subnets: setup.localSubnets,
      networks: [{ ip: setup.vpnIp >>> 0, mask: setup.vpnMask >>> 0 }],
      ips6: networks6.map((n) => n.words),
      subnets6: nets6(setup.localSubnets6),
      networks6,
    },
    conntrack: { tcp_timeout: update.tcpTimeout, udp_timeout: update.udpTimeout, default_timeout: update.defaultTimeout },
    rulesVersion: update.version,
    defaultLocalCidrAny: update.defaultLocalCidrAny,
    inboundAction: update.inboundAction,
    outboundAction: update.outboundAction,
  });
}
