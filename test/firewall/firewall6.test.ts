/**
 * The Firewall object with IPv6: config parsing of IPv6 / `any` cidr and local_cidr, the rule description (hash
 * input), re-verification through matchesRules, and what a firewall without IPv6 addresses of its own does.
 * The verdict table is table-cases6.test.ts.
 */
import t from 'tap';
import { parseConfig } from '../../src/shared/config';
import { Firewall, newFirewallPacket, parseFirewallRule, parseIPPacket, type FirewallLocal, type FirewallPacket, type FirewallPeer } from '../../src/shared/firewall';
import { parseCidr6, parseIPv6 } from '../../src/shared/util/ipv6';
import { ip, icmp6Packet, tcp6Packet, TCP_SYN } from './fixtures/packets';

const LOCAL: FirewallLocal = { ips: [ip('10.0.0.1')], subnets: [], ips6: [parseIPv6('fd00::1')!], subnets6: [], networks6: [parseCidr6('fd00::1/64')!] };
const PEER: FirewallPeer = { name: 'peer', groups: new Set(['g']), issuer: 'sha', caName: 'ca', ips: [ip('10.0.0.2')], subnets: [], ips6: [parseIPv6('fd00::2')!], subnets6: [] };

function fw(yaml: string, local = LOCAL): Firewall {
  const { config } = parseConfig('pki: {ca: a, cert: b, key: c}\nfirewall:\n' + yaml);
  return new Firewall({ ...config.firewall, local, defaultLocalCidrAny: config.firewall.default_local_cidr_any });
}

function parsed(p: Buffer, incoming = true): FirewallPacket {
  const out = newFirewallPacket();
  if (!parseIPPacket(p, p.length, incoming, out)) throw new Error('unparsable test packet');
  return out;
}

const synTo = (dport: number, from = 'fd00::2', to = 'fd00::1'): FirewallPacket => parsed(tcp6Packet(from, to, { sport: 40000, dport, flags: TCP_SYN }));

t.test('config: IPv6 and `any` cidr / local_cidr are accepted (Go 1.11 netip.ParsePrefix), bad ones refused', async (t) => {
  for (const [field, value] of [['cidr', 'fd00::/64'], ['cidr', '2001:db8::1/128'], ['cidr', '::/0'], ['cidr', 'any'], ['local_cidr', 'fd00:0:0:1::/64'], ['local_cidr', '::ffff:10.0.0.0/104']]) {
    const r = parseFirewallRule({ port: 80, proto: 'tcp', [field]: value });
    t.same(r.errors, [], `${field}: ${value}`);
  }
  t.equal(parseFirewallRule({ port: 80, proto: 'tcp', cidr: ' fd00::/64 ' }).rule?.cidr, 'fd00::/64', 'trimmed');
  for (const bad of ['fd00::/129', 'fd00::', 'fd00::/064', 'fd00:::/64', 'fe80::1%eth0/64', '[fd00::]/64', 'anything']) {
    const r = parseFirewallRule({ port: 80, proto: 'tcp', cidr: bad });
    t.same(r.errors.map((e) => e.path), [['cidr']], `cidr ${bad} refused`);
    t.match(r.errors[0]?.message, /is not an IPv4 or IPv6 CIDR, or any/);
  }
});

t.test('rules text: an IPv6 cidr as its network (like IPv4 ones), `any` as written', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, cidr: "fd00::5/64"}\n    - {port: 81, proto: tcp, cidr: any}\n    - {port: 82, proto: tcp, host: any, local_cidr: "fd00::/64"}\n');
  t.equal(
    f.rulesText,
    'incoming: true, proto: 6, startPort: 80, endPort: 80, groups: [], host: , ip: fd00::/64, caName: , caSha: \n' +
      'incoming: true, proto: 6, startPort: 81, endPort: 81, groups: [], host: , ip: any, caName: , caSha: \n' +
      'incoming: true, proto: 6, startPort: 82, endPort: 82, groups: [], host: any, ip: , localIp: fd00::/64, caName: , caSha: \n',
  );
  t.not(fw('  inbound:\n    - {port: 80, proto: tcp, cidr: "fd00::/64"}\n').rulesHash, fw('  inbound:\n    - {port: 80, proto: tcp, cidr: "fd01::/64"}\n').rulesHash);
});

t.test('matchesRules (conntrack re-verification) judges IPv6 packets by the same rules, no address checks', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, cidr: "fd00::/64"}\n    - {port: any, proto: icmp, group: g}\n');
  t.equal(f.matchesRules('in', synTo(80), PEER), true);
  t.equal(f.matchesRules('in', synTo(81), PEER), false);
  t.equal(f.matchesRules('in', synTo(80, 'fd01::2'), PEER), false, 'cidr');
  t.equal(f.matchesRules('in', synTo(80, 'fd00::2', 'fd00::9'), PEER), true, 'not our address: matchesRules does not look');
  t.equal(f.matchesRules('in', parsed(icmp6Packet('fd00::2', 'fd00::1', 129, 0, Buffer.alloc(4), 80)), PEER), true, 'ICMPv6 by group');
  t.equal(f.timeoutFor(58), f.timeouts.default_timeout, 'ICMPv6 gets the default conntrack timeout');
});

t.test('without IPv6 addresses of our own, IPv6 is refused by the address checks', async (t) => {
  const v4Only = fw('  inbound:\n    - {port: any, proto: any, host: any}\n', { ips: [ip('10.0.0.1')], subnets: [] });
  t.equal(v4Only.allows('in', synTo(80), PEER), 'drop_remote_ip', 'the peer address is outside all of our (no) IPv6 networks (VPNPeer)');
  const noPeer6: FirewallPeer = { ...PEER, ips6: [] };
  t.equal(fw('  inbound:\n    - {port: any, proto: any, host: any}\n').allows('in', synTo(80), noPeer6), 'drop_remote_ip', 'a peer cert without IPv6');
});

t.test('networks6 absent: our addresses count as /128 (pass networks6 to accept peers of our network)', async (t) => {
  const noNetworks: FirewallLocal = { ...LOCAL, networks6: undefined };
  const f = fw('  inbound:\n    - {port: any, proto: any, host: any}\n', noNetworks);
  t.equal(f.allows('in', synTo(80), PEER), 'drop_remote_ip');
  t.equal(fw('  inbound:\n    - {port: any, proto: any, host: any}\n').allows('in', synTo(80), PEER), 'allow', 'with networks6');
});

t.test('IPv4 keeps working when the firewall knows IPv6 too (one FirewallPacket for both)', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, host: any}\n');
  const p = synTo(80);
  t.equal(f.allows('in', p, PEER), 'allow');
  Object.assign(p, { version: 4, localIp: ip('10.0.0.1'), remoteIp: ip('10.0.0.2') });
  t.equal(f.allows('in', p, PEER), 'allow', 'IPv4 addresses checked as IPv4');
  p.remoteIp = ip('10.0.0.3');
  t.equal(f.allows('in', p, PEER), 'drop_remote_ip');
});
