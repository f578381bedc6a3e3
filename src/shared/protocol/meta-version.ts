/**
 * Which VPN-address fields of NebulaMetaDetails a lighthouse message uses, by the certificate version of the tunnel
 * it travels (Go 1.10+'s lighthouse.go):
 * - v1 tunnels: the 1.6.1 fields, VpnIp/OldVpnAddr (1) and RelayVpnIp/OldRelayVpnAddrs (5), so 1.6.1 peers keep
 *   understanding every message;
 * - v2 tunnels: VpnAddr (6) and RelayVpnAddrs (7), Addr messages. A v2 HostUpdateNotification names no VpnAddr at all
 *   (the lighthouse knows the sender from its tunnel), and a v2 HostUpdateNotificationAck has empty details.
 * V4AddrPorts / V6AddrPorts (2, 4), the underlay addresses, are the same in both.
 *
 * Reading, as Go does: the subject of a message is OldVpnAddr when it is non-zero (a v1 message), else VpnAddr (v2),
 * else the message is malformed (GetVpnAddrAndVersion); relays are the old list followed by the new one (GetRelays).
 * nebula-ts keys hosts by their IPv4 VPN IP: an IPv6 VPN address is reported as such (`ipv4` undefined) for the
 * caller to map to its host (supervisor/vpn-addr-book.ts) or refuse; relays are mapped by the resolver given, and
 * those it cannot map are left out and counted.
 *
 * Writing: a message names its host by the host's IPv4 VPN IP, or, in v2, by the address given as `vpnAddr` (Go
 * answers a query in the address it was asked about, which may be an IPv6 one).
 */
import type { CertVersion } from '../pki/certificate';
import type { Ip4AndPort, Ip6AndPort, NebulaMetaDetails } from './lighthouse';
import { addrOfIPv4, ipv4OfAddr, type VpnAddr } from './vpn-addr';

export interface MetaSubject {
  /** The message generation its VPN-address field says (Go answers a query in the version it was asked in). */
  version: CertVersion;
  addr: VpnAddr;
  /** The IPv4 VPN address, or undefined for an IPv6 one. */
  ipv4: number | undefined;
}

/** Go's GetVpnAddrAndVersion: the host a message is about, or undefined when it names none (malformed). */
export function metaSubject(d: NebulaMetaDetails): MetaSubject | undefined {
  if (d.vpnIp >>> 0 !== 0) return { version: 1, addr: addrOfIPv4(d.vpnIp), ipv4: d.vpnIp >>> 0 };
  if (d.vpnAddr) return { version: 2, addr: d.vpnAddr, ipv4: ipv4OfAddr(d.vpnAddr) };
  return undefined;
}

/**
 * Go's GetRelays (old list, then new), each as the VPN IP `vpnIpOf` maps it to (by default only IPv4 addresses map);
 * `ignored` counts those it could not map, left out.
 */
export function metaRelays(d: NebulaMetaDetails, vpnIpOf: (a: VpnAddr) => number | undefined = ipv4OfAddr): { relays: number[]; ignored: number } {
  const relays = d.relayVpnIps.map((r) => r >>> 0);
  let ignored = 0;
  for (const a of d.relayVpnAddrs ?? []) {
    const ip = vpnIpOf(a);
    if (ip === undefined) ignored++;
    else relays.push(ip);
  }
  return { relays, ignored };
}

export interface MetaFields {
  /** The host the message is about; left out (as Go's v2 update does) when undefined. */
  vpnIp?: number;
  /**
   * How a v2 message names that host, when not by `vpnIp` (an IPv6 VPN address a query asked about); a v1 message
   * writes it only if it is an IPv4 address, else `vpnIp`.
   */
  vpnAddr?: VpnAddr;
  ip4AndPorts?: readonly Ip4AndPort[];
  ip6AndPorts?: readonly Ip6AndPort[];
  relays?: readonly number[];
}

/** Details for a tunnel of `version`, with the VPN addresses in that version's fields. */
export function metaDetailsFor(version: CertVersion, f: MetaFields): NebulaMetaDetails {
  const d: NebulaMetaDetails = {
    vpnIp: 0,
    ip4AndPorts: (f.ip4AndPorts ?? []).map((a) => ({ ip: a.ip >>> 0, port: a.port >>> 0 })),
    counter: 0,
    ip6AndPorts: (f.ip6AndPorts ?? []).map((a) => ({ hi: a.hi, lo: a.lo, port: a.port >>> 0 })),
    relayVpnIps: [],
  };
  const relays = f.relays ?? [];
  if (version === 1) {
    d.vpnIp = ((f.vpnAddr && ipv4OfAddr(f.vpnAddr)) ?? f.vpnIp ?? 0) >>> 0;
    d.relayVpnIps = relays.map((r) => r >>> 0);
  } else {
    if (f.vpnAddr) d.vpnAddr = { hi: f.vpnAddr.hi, lo: f.vpnAddr.lo };
    else if (f.vpnIp !== undefined) d.vpnAddr = addrOfIPv4(f.vpnIp);
    if (relays.length > 0) d.relayVpnAddrs = relays.map(addrOfIPv4);
  }
  return d;
}
