/**
 * The IPv6 firewall as a table of raw packets and rule sets, in the style of table-cases.test.ts: config YAML parsed
 * as a real config is, an IPv6 packet as the data path sees it (parseIPPacket), the peer's certificate, and the
 * verdict Go nebula 1.11.1 gives. Expectations come from Go's code (v1.11.1), cited per group:
 *
 * - firewall.go Firewall.Drop: the remote address is looked up in HostInfo.networks (hostmap.go buildNetworks: the
 *   peer's VPN addresses as /128, NetworkTypeVPN when inside one of our VPN networks, NetworkTypeVPNPeer (refused,
 *   ErrPeerRejected) otherwise; its unsafe networks NetworkTypeUnsafe), then the local address in routableNetworks
 *   (our VPN addresses as /128 and our unsafe networks), then the rules.
 * - FirewallTable.match: `case firewall.ProtoICMP, firewall.ProtoICMPv6` -> the ICMP table; firewallPort.match: for
 *   ICMP / ICMPv6 only fp[PortAny] is consulted (even for fragments); AddFirewallRulesFromConfig / AddRule coerce an
 *   icmp rule's port / code to any.
 * - FirewallRule.addRule / isAny: only `any` (groups, host, cidr) is "any"; a cidr goes into a bart table, which
 *   keeps IPv4 and IPv6 prefixes apart, so `0.0.0.0/0` matches every IPv4 remote and no IPv6 one, `::/0` the
 *   reverse, and an IPv4-mapped prefix no IPv4 packet; FirewallRule.match: CIDR.Supernets(remote).
 * - firewallLocalCIDR.addRule: `any`, or '' with (no unsafe networks of either family || default_local_cidr_any),
 *   is any; '' otherwise inserts every assigned network (both families); a prefix is family-specific too.
 * - outside.go parseV6: the tuple (see packet6.test.ts), a non-first fragment uses PortFragment.
 *
 * A few IPv4 packets run against the same rules where the two families differ (nebula-ts keeps Nebula 1.6.1's
 * IPv4 quirk: an IPv4 cidr containing 0.0.0.0 makes the rule any, for IPv4 packets only).
 */
import t from 'tap';
import { parseConfig } from '../../src/shared/config';
import { Firewall, newFirewallPacket, parseIPPacket, type FirewallLocal, type FirewallPeer } from '../../src/shared/firewall';
import { parseCidr } from '../../src/shared/util/ipv4';
import { parseCidr6, parseIPv6 } from '../../src/shared/util/ipv6';
import {
  extHeader,
  fragmentHeader,
  icmp6Packet,
  ip,
  ipv6Packet,
  tcp4Packet,
  tcp6Packet,
  udp6Packet,
  TCP_ACK,
  TCP_SYN,
} from './fixtures/packets';

/** Us: 10.1.0.1/16 and fd00:1::1/64; unsafe networks 10.200.0.0/24 and 2001:db8:200::/64. */
const US = 'fd00:1::1';
const US4 = '10.1.0.1';
const LOCAL: FirewallLocal = {
  ips: [ip(US4)],
  subnets: [parseCidr('10.200.0.0/24')!],
  networks: [parseCidr('10.1.0.0/16')!],
  ips6: [parseIPv6(US)!],
  subnets6: [parseCidr6('2001:db8:200::/64')!],
  networks6: [parseCidr6('fd00:1::1/64')!],
};
/** Us with an IPv6 unsafe network only (no IPv4 one). */
const LOCAL_V6_UNSAFE_ONLY: FirewallLocal = { ...LOCAL, subnets: [] };
/**
 * The peer: web1, groups web + prod, signed by ca-A (sha-A); 10.1.0.2 + unsafe 172.16.5.0/24; fd00:1::2 and
 * fd00:9::2 (a network we are not in) + unsafe 2001:db8:5::/64.
 */
const PEER_IP = 'fd00:1::2';
const PEER_IP4 = '10.1.0.2';
const PEER: FirewallPeer = {
  name: 'web1',
  groups: new Set(['web', 'prod']),
  issuer: 'sha-A',
  caName: 'ca-A',
  ips: [ip(PEER_IP4)],
  subnets: [parseCidr('172.16.5.0/24')!],
  ips6: [parseIPv6(PEER_IP)!, parseIPv6('fd00:9::2')!],
  subnets6: [parseCidr6('2001:db8:5::/64')!],
};

type Verdict = 'allow' | 'drop_no_rule' | 'drop_remote_ip' | 'drop_local_ip' | 'malformed';
type Dir = 'in' | 'out';

interface Case {
  name: string;
  /** YAML lines under `firewall:` (two-space indented). */
  rules: string;
  dir: Dir;
  packet: Buffer;
  expect: Verdict;
  local?: FirewallLocal;
}

const inRules = (...rules: string[]): string => `  inbound:\n${rules.map((r) => `    - ${r}\n`).join('')}`;
const outRules = (...rules: string[]): string => `  outbound:\n${rules.map((r) => `    - ${r}\n`).join('')}`;
const NO_LOCAL_DEFAULT = '  default_local_cidr_any: false\n';

/** Peer -> us, as decrypted from the tunnel. */
const tcpIn = (dport: number, from = PEER_IP, to = US): Buffer => tcp6Packet(from, to, { sport: 40000, dport, flags: TCP_SYN });
const udpIn = (dport: number, from = PEER_IP, to = US): Buffer => udp6Packet(from, to, 40000, dport, Buffer.from('x'));
const tcp4In = (dport: number): Buffer => tcp4Packet(PEER_IP4, US4, { sport: 40000, dport, flags: TCP_SYN });
/** Us -> peer, as read from our tun. */
const tcpOut = (sport: number, dport: number, from = US): Buffer => tcp6Packet(from, PEER_IP, { sport, dport, flags: TCP_ACK });
const echoIn = (id = 1): Buffer => icmp6Packet(PEER_IP, US, 128, 0, Buffer.alloc(8), id);
const echoOut = (id: number): Buffer => icmp6Packet(US, PEER_IP, 128, 0, Buffer.alloc(8), id);
/** A non-first fragment of `proto` (offset 185 * 8 bytes). */
const fragmentIn = (proto: number): Buffer => ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 44, body: Buffer.concat([fragmentHeader(proto, 185, true), Buffer.alloc(16)]) });
/** The first fragment of a UDP datagram to `dport`. */
const firstFragmentIn = (dport: number): Buffer => udp6Packet(PEER_IP, US, 40000, dport, Buffer.alloc(16), fragmentHeader(17, 0, true), 44);

const CASES: Case[] = [
  // ports and protocols (FirewallTable.match, firewallPort.match)
  { name: 'tcp port 80 rule, packet to 80', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'tcp port 80 rule, packet to 81', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(81), expect: 'drop_no_rule' },
  { name: 'range 1000-2000, upper bound', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(2000), expect: 'allow' },
  { name: 'range 1000-2000, one past the end', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(2001), expect: 'drop_no_rule' },
  { name: 'udp any port', rules: inRules('{port: any, proto: udp, host: any}'), dir: 'in', packet: udpIn(5353), expect: 'allow' },
  { name: 'tcp rule does not cover udp', rules: inRules('{port: 53, proto: tcp, host: any}'), dir: 'in', packet: udpIn(53), expect: 'drop_no_rule' },
  { name: 'proto any covers udp', rules: inRules('{port: 53, proto: any, host: any}'), dir: 'in', packet: udpIn(53), expect: 'allow' },
  { name: 'ports read after extension headers', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcp6Packet(PEER_IP, US, { sport: 1, dport: 80, flags: TCP_SYN }, Buffer.concat([extHeader(60, 0), extHeader(6, 1)]), 0), expect: 'allow' },
  { name: 'inbound: the source port does not count', rules: inRules('{port: 22, proto: tcp, host: any}'), dir: 'in', packet: tcp6Packet(PEER_IP, US, { sport: 22, dport: 5000, flags: TCP_ACK }), expect: 'drop_no_rule' },
  { name: 'outbound: rule port is the destination port', rules: outRules('{port: 443, proto: tcp, host: any}'), dir: 'out', packet: tcpOut(50000, 443), expect: 'allow' },
  { name: 'outbound: our own source port does not count', rules: outRules('{port: 443, proto: tcp, host: any}'), dir: 'out', packet: tcpOut(443, 50000), expect: 'drop_no_rule' },
  { name: 'inbound rules do not open outbound traffic', rules: inRules('{port: any, proto: any, host: any}'), dir: 'out', packet: tcpOut(50000, 80), expect: 'drop_no_rule' },
  { name: 'proto any port any covers SCTP', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 132, body: Buffer.alloc(12) }), expect: 'allow' },
  { name: 'a tcp any-port rule does not cover SCTP', rules: inRules('{port: any, proto: tcp, host: any}'), dir: 'in', packet: ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 132, body: Buffer.alloc(12) }), expect: 'drop_no_rule' },
  // ICMPv6 (FirewallTable.match: ProtoICMP, ProtoICMPv6 -> ICMP table; firewallPort.match: PortAny only)
  { name: 'icmp rule covers an ICMPv6 echo request', rules: inRules('{port: any, proto: icmp, host: any}'), dir: 'in', packet: echoIn(), expect: 'allow' },
  { name: 'icmp rule covers ICMPv6 neighbour solicitation', rules: inRules('{port: any, proto: icmp, host: any}'), dir: 'in', packet: icmp6Packet(PEER_IP, US, 135, 0, Buffer.alloc(16)), expect: 'allow' },
  { name: 'icmp `code: 8` is coerced to any (AddRule) and covers ICMPv6', rules: inRules('{code: 8, proto: icmp, host: any}'), dir: 'in', packet: echoIn(), expect: 'allow' },
  { name: 'icmp `code: 8` covers protocol 1 in an IPv6 packet too (ProtoICMP)', rules: inRules('{code: 8, proto: icmp, host: any}'), dir: 'in', packet: ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 1, body: Buffer.from([8, 0, 0, 0, 0, 1, 0, 1]) }), expect: 'allow' },
  { name: 'a tcp rule does not cover ICMPv6', rules: inRules('{port: any, proto: tcp, host: any}'), dir: 'in', packet: echoIn(), expect: 'drop_no_rule' },
  { name: 'proto any port 53 does not cover an outbound echo with identifier 53', rules: outRules('{port: 53, proto: any, host: any}'), dir: 'out', packet: echoOut(53), expect: 'drop_no_rule' },
  { name: 'proto any port any covers outbound echo', rules: outRules('{port: any, proto: any, host: any}'), dir: 'out', packet: echoOut(53), expect: 'allow' },
  { name: 'icmp rule covers a non-first ICMPv6 fragment (PortAny, not PortFragment)', rules: inRules('{port: any, proto: icmp, host: any}'), dir: 'in', packet: fragmentIn(58), expect: 'allow' },
  { name: 'proto any `port: fragment` does not cover an ICMPv6 fragment', rules: inRules('{port: fragment, proto: any, host: any}'), dir: 'in', packet: fragmentIn(58), expect: 'drop_no_rule' },
  // fragments (parseV6: non-first -> Fragment, ports 0; firewallPort.match: PortFragment)
  { name: 'non-first fragment matches a fragment rule', rules: inRules('{port: fragment, proto: udp, host: any}'), dir: 'in', packet: fragmentIn(17), expect: 'allow' },
  { name: 'non-first fragment matches an any-port rule', rules: inRules('{port: any, proto: udp, host: any}'), dir: 'in', packet: fragmentIn(17), expect: 'allow' },
  { name: 'non-first fragment does not match a port rule', rules: inRules('{port: 53, proto: udp, host: any}'), dir: 'in', packet: fragmentIn(17), expect: 'drop_no_rule' },
  { name: 'first fragment is judged by its port, not as a fragment', rules: inRules('{port: fragment, proto: udp, host: any}'), dir: 'in', packet: firstFragmentIn(53), expect: 'drop_no_rule' },
  { name: 'first fragment to an allowed port', rules: inRules('{port: 53, proto: udp, host: any}'), dir: 'in', packet: firstFragmentIn(53), expect: 'allow' },
  // identities (groups AND'd, OR'd with host and cidr) and CA selectors: family-independent
  { name: 'groups: all present', rules: inRules('{port: 80, proto: tcp, groups: [web, prod]}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'groups: one missing', rules: inRules('{port: 80, proto: tcp, groups: [web, db]}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'host: the cert name', rules: inRules('{port: 80, proto: tcp, host: web1}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'ca_name of another CA', rules: inRules('{port: 80, proto: tcp, ca_name: ca-B}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'ca_sha of the issuer AND a group the peer has', rules: inRules('{port: 80, proto: tcp, ca_sha: sha-A, group: web}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  // cidr (bart tables are per family; isAny only for the text `any`)
  { name: 'IPv6 cidr contains the peer address', rules: inRules('{port: 80, proto: tcp, cidr: "fd00:1::/64"}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'IPv6 cidr elsewhere', rules: inRules('{port: 80, proto: tcp, cidr: "fd00:2::/64"}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'IPv6 cidr with host bits matches its network', rules: inRules('{port: 80, proto: tcp, cidr: "fd00:1::77/64"}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'IPv6 /128 cidr of the peer', rules: inRules('{port: 80, proto: tcp, cidr: "fd00:1::2/128"}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'IPv6 cidr matches a source in the peer\'s IPv6 unsafe network', rules: inRules('{port: 80, proto: tcp, cidr: "2001:db8:5::/64"}'), dir: 'in', packet: tcpIn(80, '2001:db8:5::9'), expect: 'allow' },
  { name: '::/0 covers every IPv6 remote', rules: inRules('{port: 80, proto: tcp, cidr: "::/0"}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: '::/0 covers no IPv4 remote', rules: inRules('{port: 80, proto: tcp, cidr: "::/0"}'), dir: 'in', packet: tcp4In(80), expect: 'drop_no_rule' },
  { name: '0.0.0.0/0 covers no IPv6 remote', rules: inRules('{port: 80, proto: tcp, cidr: 0.0.0.0/0}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: '0.0.0.0/0 covers IPv4 remotes', rules: inRules('{port: 80, proto: tcp, cidr: 0.0.0.0/0}'), dir: 'in', packet: tcp4In(80), expect: 'allow' },
  { name: '0.0.0.0/8 with a group: IPv6 matches by the group', rules: inRules('{port: 80, proto: tcp, cidr: 0.0.0.0/8, group: prod}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: '0.0.0.0/8 with a group the peer lacks: no IPv6 match', rules: inRules('{port: 80, proto: tcp, cidr: 0.0.0.0/8, group: db}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'IPv4 1.6.1 quirk kept: 0.0.0.0/8 with a group the peer lacks is any for IPv4', rules: inRules('{port: 80, proto: tcp, cidr: 0.0.0.0/8, group: db}'), dir: 'in', packet: tcp4In(80), expect: 'allow' },
  { name: 'an IPv4 cidr of the peer\'s network does not cover IPv6', rules: inRules('{port: 80, proto: tcp, cidr: 10.1.0.0/16}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'an IPv4-mapped cidr does not cover the IPv4 packet', rules: inRules('{port: 80, proto: tcp, cidr: "::ffff:10.1.0.0/112"}'), dir: 'in', packet: tcp4In(80), expect: 'drop_no_rule' },
  { name: 'cidr: any covers IPv6', rules: inRules('{port: 80, proto: tcp, cidr: any}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'cidr: any covers IPv4', rules: inRules('{port: 80, proto: tcp, cidr: any}'), dir: 'in', packet: tcp4In(80), expect: 'allow' },
  // address checks before the rules (Drop: HostInfo.networks, then routableNetworks)
  { name: 'source not in the peer cert (spoofed)', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, 'fd00:1::3'), expect: 'drop_remote_ip' },
  { name: 'source is the peer\'s address outside our VPN networks (NetworkTypeVPNPeer)', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, 'fd00:9::2'), expect: 'drop_remote_ip' },
  { name: 'source in the peer\'s IPv6 unsafe network', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, '2001:db8:5::9'), expect: 'allow' },
  { name: 'source outside the peer\'s IPv6 unsafe network', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, '2001:db8:6::9'), expect: 'drop_remote_ip' },
  { name: 'source is the peer\'s IPv4 address, IPv4-mapped', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, '::ffff:a01:2'), expect: 'drop_remote_ip' },
  { name: 'destination not ours', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, 'fd00:1::9'), expect: 'drop_local_ip' },
  { name: 'destination is our IPv4 address, IPv4-mapped', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '::ffff:a01:1'), expect: 'drop_local_ip' },
  { name: 'destination in our IPv6 unsafe network', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '2001:db8:200::5'), expect: 'allow' },
  { name: 'outbound from an address that is not ours', rules: outRules('{port: any, proto: any, host: any}'), dir: 'out', packet: tcpOut(50000, 80, 'fd00:1::9'), expect: 'drop_local_ip' },
  { name: 'no rules at all: default deny', rules: '  inbound: []\n', dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  // local_cidr and default_local_cidr_any (firewallLocalCIDR)
  { name: 'local_cidr IPv6: to our unsafe network inside it', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: "2001:db8:200::/64"}'), dir: 'in', packet: tcpIn(80, PEER_IP, '2001:db8:200::5'), expect: 'allow' },
  { name: 'local_cidr IPv6: to our VPN address outside it', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: "2001:db8:200::/64"}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'local_cidr IPv4 never covers an IPv6 local address', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: 0.0.0.0/0}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'local_cidr any', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '2001:db8:200::5'), expect: 'allow' },
  { name: 'local_cidr outbound is the source', rules: outRules('{port: 443, proto: tcp, host: any, local_cidr: "2001:db8:200::/64"}'), dir: 'out', packet: tcpOut(50000, 443, '2001:db8:200::5'), expect: 'allow' },
  { name: 'default_local_cidr_any false: a plain rule covers our IPv6 VPN network', rules: NO_LOCAL_DEFAULT + inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'default_local_cidr_any false: not our IPv6 unsafe network', rules: NO_LOCAL_DEFAULT + inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '2001:db8:200::5'), expect: 'drop_no_rule' },
  {
    name: 'default_local_cidr_any false with IPv6 unsafe networks only: still restricted',
    rules: NO_LOCAL_DEFAULT + inRules('{port: 80, proto: tcp, host: any}'),
    dir: 'in',
    packet: tcpIn(80, PEER_IP, '2001:db8:200::5'),
    expect: 'drop_no_rule',
    local: LOCAL_V6_UNSAFE_ONLY,
  },
  // malformed (parseV6)
  { name: 'truncated extension header chain', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 0, body: Buffer.alloc(1) }), expect: 'malformed' },
  { name: 'TCP too short for its ports', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: ipv6Packet({ src: PEER_IP, dst: US, nextHeader: 6, body: Buffer.alloc(3) }), expect: 'malformed' },
];

function judge(c: Case): Verdict {
  const { config } = parseConfig(`pki: {ca: a, cert: b, key: c}\nfirewall:\n${c.rules}`);
  const fw = new Firewall({ ...config.firewall, local: c.local ?? LOCAL, defaultLocalCidrAny: config.firewall.default_local_cidr_any });
  const pkt = newFirewallPacket();
  if (!parseIPPacket(c.packet, c.packet.length, c.dir === 'in', pkt)) return 'malformed';
  return fw.allows(c.dir, pkt, PEER);
}

t.ok(CASES.length >= 60, `${CASES.length} cases`);
t.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names are unique');
for (const c of CASES) {
  t.test(c.name, async (t) => {
    t.equal(judge(c), c.expect);
  });
}

t.test('both verdicts occur (the table is not one-sided)', async (t) => {
  const verdicts = new Set(CASES.map((c) => c.expect));
  for (const v of ['allow', 'drop_no_rule', 'drop_remote_ip', 'drop_local_ip', 'malformed'] as const) t.ok(verdicts.has(v), v);
});
