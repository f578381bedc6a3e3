/**
 * The firewall as a table of raw packets and rule sets: each case is config YAML (parsed as a real config is), an
 * IPv4 packet as the data path sees it (inbound: decrypted from the peer; outbound: read from our tun), the peer's
 * certificate, and the verdict Go gives. Expectations come from Go's code, not ours: v1.6.1 firewall.go (Drop,
 * FirewallTable/firewallPort/FirewallCA/FirewallRule match, parsePort) and outside.go newPacket, plus the 1.7+
 * additions (local_cidr and default_local_cidr_any from v1.11.1's firewallLocalCIDR). Notable 1.6.1 semantics pinned
 * here: within one rule host / groups / cidr are OR'd (each is added to the same FirewallRule), the groups of one
 * `groups` list are AND'd, a rule's CA selector (ca_name, ca_sha: either) is AND'd with them, ICMP has no ports (a
 * `code:` rule never matches), a non-first fragment only matches `fragment` and `any` ports, a range starting at 0 is
 * `any`, and the address checks (remote IP in the peer cert, local IP ours) come before the rules.
 */
import t from 'tap';
import { parseConfig } from '../../src/shared/config';
import { Firewall, newFirewallPacket, parseIPv4Packet, type FirewallLocal, type FirewallPeer } from '../../src/shared/firewall';
import { parseCidr } from '../../src/shared/util/ipv4';
import { icmp4Packet, ip, ipv4Packet, tcp4Packet, udp4Packet, TCP_ACK, TCP_SYN } from './fixtures/packets';

/** Us: 10.1.0.1/16, our cert also carries the unsafe network 10.200.0.0/24. */
const US = '10.1.0.1';
const LOCAL: FirewallLocal = { ips: [ip(US)], subnets: [parseCidr('10.200.0.0/24')!], networks: [parseCidr('10.1.0.0/16')!] };
/** The peer: web1, groups web + prod, 10.1.0.2 with the unsafe network 172.16.5.0/24, signed by ca-A (sha-A). */
const PEER_IP = '10.1.0.2';
const PEER: FirewallPeer = {
  name: 'web1',
  groups: new Set(['web', 'prod']),
  issuer: 'sha-A',
  caName: 'ca-A',
  ips: [ip(PEER_IP)],
  subnets: [parseCidr('172.16.5.0/24')!],
  ips6: [],
  subnets6: [],
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
}

const inRules = (...rules: string[]): string => `  inbound:\n${rules.map((r) => `    - ${r}\n`).join('')}`;
const outRules = (...rules: string[]): string => `  outbound:\n${rules.map((r) => `    - ${r}\n`).join('')}`;

/** Peer -> us TCP/UDP to `dport` (from port 40000), as decrypted from the tunnel. */
const tcpIn = (dport: number, from = PEER_IP, to = US): Buffer => tcp4Packet(from, to, { sport: 40000, dport, flags: TCP_SYN });
const udpIn = (dport: number, from = PEER_IP, to = US): Buffer => udp4Packet(from, to, 40000, dport, Buffer.from('x'));
/** Us -> peer, as read from our tun. */
const tcpOut = (sport: number, dport: number, from = US): Buffer => tcp4Packet(from, PEER_IP, { sport, dport, flags: TCP_ACK });
const echoIn = (): Buffer => icmp4Packet(PEER_IP, US, 8, 0, Buffer.alloc(8));
/** A UDP fragment: flags+offset as in bytes 6..7 (0x2000 = MF, low 13 bits = offset). */
const udpFragment = (flagsFragment: number, dport = 53): Buffer => udp4Packet(PEER_IP, US, 40000, dport, Buffer.alloc(16), { flagsFragment });

const CASES: Case[] = [
  // ports (firewallPort: exact entries per port, PortAny = 0, inclusive ranges)
  { name: 'tcp port 80 rule, packet to 80', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'tcp port 80 rule, packet to 81', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(81), expect: 'drop_no_rule' },
  { name: 'range 1000-2000, lower bound', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(1000), expect: 'allow' },
  { name: 'range 1000-2000, upper bound', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(2000), expect: 'allow' },
  { name: 'range 1000-2000, one past the end', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(2001), expect: 'drop_no_rule' },
  { name: 'range 1000-2000, one before the start', rules: inRules('{port: 1000-2000, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(999), expect: 'drop_no_rule' },
  { name: 'range starting at 0 is any (parsePort)', rules: inRules('{port: 0-100, proto: udp, host: any}'), dir: 'in', packet: udpIn(5000), expect: 'allow' },
  { name: 'port any reaches 65535', rules: inRules('{port: any, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(65535), expect: 'allow' },
  { name: 'a packet to port 0 matches only any-port rules', rules: inRules('{port: 1-100, proto: udp, host: any}'), dir: 'in', packet: udpIn(0), expect: 'drop_no_rule' },
  {
    name: 'overlapping rules: the one covering the port with a matching identity wins',
    rules: inRules('{port: 1-100, proto: tcp, host: web2}', '{port: 50-60, proto: tcp, group: prod}'),
    dir: 'in',
    packet: tcpIn(55),
    expect: 'allow',
  },
  {
    name: 'overlapping rules: outside the matching rule\'s range',
    rules: inRules('{port: 1-100, proto: tcp, host: web2}', '{port: 50-60, proto: tcp, group: prod}'),
    dir: 'in',
    packet: tcpIn(70),
    expect: 'drop_no_rule',
  },
  // direction: inbound judges the local (destination) port, outbound the remote (destination) port
  { name: 'inbound: the source port does not count', rules: inRules('{port: 22, proto: tcp, host: any}'), dir: 'in', packet: tcp4Packet(PEER_IP, US, { sport: 22, dport: 5000, flags: TCP_ACK }), expect: 'drop_no_rule' },
  { name: 'outbound: rule port is the destination port', rules: outRules('{port: 443, proto: tcp, host: any}'), dir: 'out', packet: tcpOut(50000, 443), expect: 'allow' },
  { name: 'outbound: our own source port does not count', rules: outRules('{port: 443, proto: tcp, host: any}'), dir: 'out', packet: tcpOut(443, 50000), expect: 'drop_no_rule' },
  { name: 'inbound rules do not open outbound traffic', rules: inRules('{port: any, proto: any, host: any}'), dir: 'out', packet: tcpOut(50000, 80), expect: 'drop_no_rule' },
  // protocols (FirewallTable: AnyProto first, then the packet's own; ICMP has no ports in newPacket)
  { name: 'tcp rule does not cover udp', rules: inRules('{port: 53, proto: tcp, host: any}'), dir: 'in', packet: udpIn(53), expect: 'drop_no_rule' },
  { name: 'proto any covers udp', rules: inRules('{port: 53, proto: any, host: any}'), dir: 'in', packet: udpIn(53), expect: 'allow' },
  { name: 'proto any covers tcp', rules: inRules('{port: 53, proto: any, host: any}'), dir: 'in', packet: tcpIn(53), expect: 'allow' },
  { name: 'proto any with a port does not cover icmp (no ports)', rules: inRules('{port: 53, proto: any, host: any}'), dir: 'in', packet: echoIn(), expect: 'drop_no_rule' },
  { name: 'icmp `code: 8` never matches in 1.6.1 (icmp ignores the port)', rules: inRules('{code: 8, proto: icmp, host: any}'), dir: 'in', packet: echoIn(), expect: 'drop_no_rule' },
  { name: 'icmp port any matches an echo request', rules: inRules('{port: any, proto: icmp, host: any}'), dir: 'in', packet: echoIn(), expect: 'allow' },
  {
    name: 'icmp needs no bytes past the IP header',
    rules: inRules('{port: any, proto: icmp, host: any}'),
    dir: 'in',
    packet: ipv4Packet({ src: PEER_IP, dst: US, proto: 1, body: Buffer.alloc(0) }),
    expect: 'allow',
  },
  { name: 'proto any port any covers GRE', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: ipv4Packet({ src: PEER_IP, dst: US, proto: 47, body: Buffer.alloc(8) }), expect: 'allow' },
  { name: 'a tcp any-port rule does not cover GRE', rules: inRules('{port: any, proto: tcp, host: any}'), dir: 'in', packet: ipv4Packet({ src: PEER_IP, dst: US, proto: 47, body: Buffer.alloc(8) }), expect: 'drop_no_rule' },
  // fragments (newPacket: offset != 0 is a fragment, ports 0; firewallPort.match uses PortFragment)
  { name: 'non-first fragment matches a fragment rule', rules: inRules('{port: fragment, proto: udp, host: any}'), dir: 'in', packet: udpFragment(0x0010), expect: 'allow' },
  { name: 'non-first fragment matches an any-port rule', rules: inRules('{port: any, proto: udp, host: any}'), dir: 'in', packet: udpFragment(0x0010), expect: 'allow' },
  { name: 'non-first fragment does not match a port rule', rules: inRules('{port: 53, proto: udp, host: any}'), dir: 'in', packet: udpFragment(0x0010), expect: 'drop_no_rule' },
  { name: 'first fragment (MF, offset 0) is judged by its port, not as a fragment', rules: inRules('{port: fragment, proto: udp, host: any}'), dir: 'in', packet: udpFragment(0x2000), expect: 'drop_no_rule' },
  { name: 'first fragment to an allowed port', rules: inRules('{port: 53, proto: udp, host: any}'), dir: 'in', packet: udpFragment(0x2000), expect: 'allow' },
  // identities (FirewallRule: groups sets AND'd inside, OR'd with hosts and cidrs)
  { name: 'groups: all present', rules: inRules('{port: 80, proto: tcp, groups: [web, prod]}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'groups: one missing', rules: inRules('{port: 80, proto: tcp, groups: [web, db]}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'group: single value', rules: inRules('{port: 80, proto: tcp, group: prod}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'groups containing any means any (isAny)', rules: inRules('{port: 80, proto: tcp, groups: [db, any]}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'host: the cert name', rules: inRules('{port: 80, proto: tcp, host: web1}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'host: another name', rules: inRules('{port: 80, proto: tcp, host: web2}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'host and group in one rule are OR\'d: the group matches', rules: inRules('{port: 80, proto: tcp, host: web2, group: prod}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'host and cidr in one rule are OR\'d: neither matches', rules: inRules('{port: 80, proto: tcp, host: web2, cidr: 10.9.0.0/16}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'cidr contains the peer VPN IP', rules: inRules('{port: 80, proto: tcp, cidr: 10.1.0.0/16}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'cidr elsewhere', rules: inRules('{port: 80, proto: tcp, cidr: 10.2.0.0/16}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'cidr matches a source in the peer\'s unsafe network', rules: inRules('{port: 80, proto: tcp, cidr: 172.16.5.0/24}'), dir: 'in', packet: tcpIn(80, '172.16.5.9'), expect: 'allow' },
  { name: 'a /32 cidr of another address', rules: inRules('{port: 80, proto: tcp, cidr: 10.1.0.3/32}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  // CA selectors (FirewallCA: Any, then CAShas[issuer], then CANames[name of the signing CA])
  { name: 'ca_name of the signing CA', rules: inRules('{port: 80, proto: tcp, ca_name: ca-A}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'ca_name of another CA', rules: inRules('{port: 80, proto: tcp, ca_name: ca-B}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'ca_sha of the issuer, AND a group the peer lacks', rules: inRules('{port: 80, proto: tcp, ca_sha: sha-A, group: db}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'ca_sha of the issuer AND a group the peer has', rules: inRules('{port: 80, proto: tcp, ca_sha: sha-A, group: web}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  { name: 'ca_sha and ca_name in one rule: either selects (added to both maps)', rules: inRules('{port: 80, proto: tcp, ca_sha: sha-B, ca_name: ca-A, host: any}'), dir: 'in', packet: tcpIn(80), expect: 'allow' },
  // address checks before the rules (Drop: remote IP in the peer cert, then local IP ours)
  { name: 'source not in the peer cert (spoofed)', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, '10.1.0.3'), expect: 'drop_remote_ip' },
  { name: 'source outside the peer\'s unsafe network', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, '172.16.6.1'), expect: 'drop_remote_ip' },
  { name: 'destination not ours', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '10.1.0.9'), expect: 'drop_local_ip' },
  { name: 'outbound from an address that is not ours', rules: outRules('{port: any, proto: any, host: any}'), dir: 'out', packet: tcpOut(50000, 80, '10.1.0.9'), expect: 'drop_local_ip' },
  { name: 'no rules at all: default deny', rules: '  inbound: []\n', dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  // packet parsing (newPacket)
  {
    name: 'ports are read after IP options',
    rules: inRules('{port: 80, proto: tcp, host: any}'),
    dir: 'in',
    packet: tcp4Packet(PEER_IP, US, { sport: 40000, dport: 80, flags: TCP_SYN }, { options: Buffer.from('01010100', 'hex') }),
    expect: 'allow',
  },
  { name: 'TCP too short for its ports', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: ipv4Packet({ src: PEER_IP, dst: US, proto: 6, body: Buffer.alloc(3) }), expect: 'malformed' },
  { name: 'parseIPv4Packet does not parse IPv6 (parseIPPacket does: table-cases6)', rules: inRules('{port: any, proto: any, host: any}'), dir: 'in', packet: Buffer.concat([Buffer.from([0x60]), Buffer.alloc(59)]), expect: 'malformed' },
  // 1.7+: local_cidr (the LOCAL address: destination inbound, source outbound) and default_local_cidr_any
  { name: 'local_cidr: to our unsafe network inside it', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), dir: 'in', packet: tcpIn(80, PEER_IP, '10.200.0.5'), expect: 'allow' },
  { name: 'local_cidr: to our VPN IP outside it', rules: inRules('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), dir: 'in', packet: tcpIn(80), expect: 'drop_no_rule' },
  { name: 'local_cidr outbound is the source', rules: outRules('{port: 443, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), dir: 'out', packet: tcpOut(50000, 443, '10.200.0.5'), expect: 'allow' },
  { name: 'default_local_cidr_any true (default): a plain rule covers our unsafe network', rules: inRules('{port: 80, proto: tcp, host: any}'), dir: 'in', packet: tcpIn(80, PEER_IP, '10.200.0.5'), expect: 'allow' },
  {
    name: 'default_local_cidr_any false: a plain rule covers our VPN network only',
    rules: '  default_local_cidr_any: false\n' + inRules('{port: 80, proto: tcp, host: any}'),
    dir: 'in',
    packet: tcpIn(80, PEER_IP, '10.200.0.5'),
    expect: 'drop_no_rule',
  },
  {
    name: 'default_local_cidr_any false: our VPN IP still allowed',
    rules: '  default_local_cidr_any: false\n' + inRules('{port: 80, proto: tcp, host: any}'),
    dir: 'in',
    packet: tcpIn(80),
    expect: 'allow',
  },
];

function judge(c: Case): Verdict {
  const { config } = parseConfig(`pki: {ca: a, cert: b, key: c}\nfirewall:\n${c.rules}`);
  const fw = new Firewall({ ...config.firewall, local: LOCAL, defaultLocalCidrAny: config.firewall.default_local_cidr_any });
  const pkt = newFirewallPacket();
  if (!parseIPv4Packet(c.packet, c.packet.length, c.dir === 'in', pkt)) return 'malformed';
  return fw.allows(c.dir, pkt, PEER);
}

t.ok(CASES.length >= 30, `${CASES.length} cases`);
t.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names are unique');
for (const c of CASES) {
  t.test(c.name, async (t) => {
    t.equal(judge(c), c.expect);
  });
}

t.test('both verdicts occur for each dimension (the table is not one-sided)', async (t) => {
  const verdicts = new Set(CASES.map((c) => c.expect));
  for (const v of ['allow', 'drop_no_rule', 'drop_remote_ip', 'drop_local_ip', 'malformed'] as const) t.ok(verdicts.has(v), v);
  t.ok(CASES.some((c) => c.dir === 'out' && c.expect === 'allow') && CASES.some((c) => c.dir === 'out' && c.expect !== 'allow'), 'outbound both ways');
});
