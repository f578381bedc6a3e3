/**
 * Firewall rules with `local_cidr` (Nebula 1.9+, semantics of 1.10's firewall.go): the packet's LOCAL address
 * (destination inbound, source outbound) must lie in the rule's local CIDR (`any` = any), ANDed with the rest of the
 * rule (port, proto, CA, and host OR groups OR remote cidr). A rule without local_cidr covers every local address we
 * handle, unless our cert has unsafe networks and firewall.default_local_cidr_any is false: then only our VPN network.
 */
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/shared/config';
import { Firewall, newFirewallPacket, parseFirewallRule, type FirewallLocal, type FirewallPacket, type FirewallPeer } from '../../src/shared/firewall';
import { parseCidr, parseIPv4 } from '../../src/shared/util/ipv4';

const ip = (s: string): number => parseIPv4(s)!;

/** Us: 192.168.100.1/24, routing for the unsafe networks 10.200.0.0/24 and 10.201.0.0/24. */
const LOCAL: FirewallLocal = {
  ips: [ip('192.168.100.1')],
  subnets: [parseCidr('10.200.0.0/24')!, parseCidr('10.201.0.0/24')!],
  networks: [parseCidr('192.168.100.1/24')!],
};

function fw(rulesYaml: string, extra = ''): Firewall {
  const { config } = parseConfig(`pki: {ca: a, cert: b, key: c}\nfirewall:\n${extra}${rulesYaml}`);
  return new Firewall({ ...config.firewall, local: LOCAL, defaultLocalCidrAny: config.firewall.default_local_cidr_any });
}

function peer(name = 'laptop', groups: string[] = []): FirewallPeer {
  return { name, groups: new Set(groups), issuer: 'sha', caName: 'ca', ips: [ip('192.168.100.7')], subnets: [parseCidr('172.30.0.0/16')!], ips6: [], subnets6: [] };
}

/** A TCP packet between our `local` address:80 and the peer's `remote`:40000, seen in `dir`. */
function pkt(local: string, remote = '192.168.100.7', localPort = 80, remotePort = 40000): FirewallPacket {
  return { ...newFirewallPacket(), proto: 6, localIp: ip(local), remoteIp: ip(remote), localPort, remotePort };
}

type Dir = 'in' | 'out';
type Case = [name: string, rules: string, dir: Dir, packet: FirewallPacket, who: FirewallPeer, expect: string];

const inRule = (r: string): string => `  inbound:\n    - ${r}\n`;
const outRule = (r: string): string => `  outbound:\n    - ${r}\n`;

const CASES: Case[] = [
  // inbound: local = destination
  ['in: local_cidr alone, destination inside', inRule('{port: 80, proto: tcp, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.5'), peer(), 'allow'],
  ['in: local_cidr alone, destination outside', inRule('{port: 80, proto: tcp, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.201.0.5'), peer(), 'drop_no_rule'],
  ['in: local_cidr alone, our VPN IP is outside it', inRule('{port: 80, proto: tcp, local_cidr: 10.200.0.0/24}'), 'in', pkt('192.168.100.1'), peer(), 'drop_no_rule'],
  ['in: local_cidr any covers the unsafe networks', inRule('{port: 80, proto: tcp, host: any, local_cidr: any}'), 'in', pkt('10.201.0.9'), peer(), 'allow'],
  ['in: local_cidr 0.0.0.0/0 covers everything', inRule('{port: 80, proto: tcp, host: any, local_cidr: 0.0.0.0/0}'), 'in', pkt('10.201.0.9'), peer(), 'allow'],
  ['in: a /32 local_cidr', inRule('{port: 80, proto: tcp, host: any, local_cidr: 192.168.100.1/32}'), 'in', pkt('192.168.100.1'), peer(), 'allow'],
  // combined with host / groups / cidr: both halves must match
  ['in: host matches, local matches', inRule('{port: 80, proto: tcp, host: laptop, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1'), peer('laptop'), 'allow'],
  ['in: host matches, local does not', inRule('{port: 80, proto: tcp, host: laptop, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.201.0.1'), peer('laptop'), 'drop_no_rule'],
  ['in: local matches, host does not', inRule('{port: 80, proto: tcp, host: laptop, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1'), peer('phone'), 'drop_no_rule'],
  ['in: groups match, local matches', inRule('{port: 80, proto: tcp, groups: [ops, web], local_cidr: 10.201.0.0/24}'), 'in', pkt('10.201.0.1'), peer('x', ['ops', 'web']), 'allow'],
  ['in: groups match, local does not', inRule('{port: 80, proto: tcp, groups: [ops, web], local_cidr: 10.201.0.0/24}'), 'in', pkt('10.200.0.1'), peer('x', ['ops', 'web']), 'drop_no_rule'],
  ['in: one group missing, local matches', inRule('{port: 80, proto: tcp, groups: [ops, web], local_cidr: 10.201.0.0/24}'), 'in', pkt('10.201.0.1'), peer('x', ['ops']), 'drop_no_rule'],
  ['in: remote cidr matches, local matches', inRule('{port: 80, proto: tcp, cidr: 172.30.1.0/24, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1', '172.30.1.4'), peer(), 'allow'],
  ['in: remote cidr matches, local does not', inRule('{port: 80, proto: tcp, cidr: 172.30.1.0/24, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.201.0.1', '172.30.1.4'), peer(), 'drop_no_rule'],
  ['in: local matches, remote cidr does not', inRule('{port: 80, proto: tcp, cidr: 172.30.1.0/24, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1', '172.30.2.4'), peer(), 'drop_no_rule'],
  ['in: port must still match', inRule('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1', '192.168.100.7', 81), peer(), 'drop_no_rule'],
  ['in: ca_name with local_cidr', inRule('{port: 80, proto: tcp, ca_name: ca, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.200.0.1'), peer(), 'allow'],
  ['in: ca_name with local_cidr, local outside', inRule('{port: 80, proto: tcp, ca_name: ca, local_cidr: 10.200.0.0/24}'), 'in', pkt('10.201.0.1'), peer(), 'drop_no_rule'],
  // outbound: local = source; the rule port is the remote port
  ['out: source inside local_cidr', outRule('{port: 443, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), 'out', pkt('10.200.0.3', '192.168.100.7', 50000, 443), peer(), 'allow'],
  ['out: source outside local_cidr', outRule('{port: 443, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), 'out', pkt('192.168.100.1', '192.168.100.7', 50000, 443), peer(), 'drop_no_rule'],
  ['out: groups and local_cidr', outRule('{port: 443, proto: tcp, group: web, local_cidr: 192.168.100.0/24}'), 'out', pkt('192.168.100.1', '192.168.100.7', 50000, 443), peer('x', ['web']), 'allow'],
  ['out: groups match, source outside', outRule('{port: 443, proto: tcp, group: web, local_cidr: 192.168.100.0/24}'), 'out', pkt('10.200.0.3', '192.168.100.7', 50000, 443), peer('x', ['web']), 'drop_no_rule'],
  // several rules: each keeps its own local CIDRs (an unrestricted rule is not narrowed by a restricted one, and v.v.)
  [
    'two rules for the same host, different local CIDRs: either',
    '  inbound:\n    - {port: 80, proto: tcp, host: laptop, local_cidr: 10.200.0.0/24}\n    - {port: 80, proto: tcp, host: laptop, local_cidr: 10.201.0.0/24}\n',
    'in',
    pkt('10.201.0.1'),
    peer('laptop'),
    'allow',
  ],
  [
    'host any restricted + group rule unrestricted: the group rule still applies everywhere',
    '  inbound:\n    - {port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}\n    - {port: 80, proto: tcp, group: ops}\n',
    'in',
    pkt('10.201.0.1'),
    peer('x', ['ops']),
    'allow',
  ],
  [
    'host any restricted: others are restricted to it',
    '  inbound:\n    - {port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}\n    - {port: 80, proto: tcp, group: ops}\n',
    'in',
    pkt('10.201.0.1'),
    peer('x', ['dev']),
    'drop_no_rule',
  ],
  // the address checks still come first
  ['local_cidr cannot open an address that is not ours', inRule('{port: 80, proto: tcp, host: any, local_cidr: 0.0.0.0/0}'), 'in', pkt('10.9.9.9'), peer(), 'drop_local_ip'],
  // no local_cidr: default_local_cidr_any true (the default) covers the unsafe networks
  ['no local_cidr, default: our VPN IP', inRule('{port: 80, proto: tcp, host: any}'), 'in', pkt('192.168.100.1'), peer(), 'allow'],
  ['no local_cidr, default: an unsafe network', inRule('{port: 80, proto: tcp, host: any}'), 'in', pkt('10.200.0.1'), peer(), 'allow'],
];

for (const [name, rules, dir, packet, who, expect] of CASES) {
  t.test(name, async (t) => {
    t.equal(fw(rules).allows(dir, packet, who), expect);
  });
}

t.test('default_local_cidr_any: false (Nebula 1.10 default): no local_cidr means our VPN network only', async (t) => {
  const extra = '  default_local_cidr_any: false\n';
  const f = fw(inRule('{port: 80, proto: tcp, host: any}'), extra);
  t.equal(f.allows('in', pkt('192.168.100.1'), peer()), 'allow', 'our VPN IP');
  t.equal(f.allows('in', pkt('10.200.0.1'), peer()), 'drop_no_rule', 'an unsafe network is not covered');
  const explicit = fw(inRule('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'), extra);
  t.equal(explicit.allows('in', pkt('10.200.0.1'), peer()), 'allow', 'an explicit local_cidr opens it');
  const anyLocal = fw(inRule('{port: 80, proto: tcp, host: any, local_cidr: any}'), extra);
  t.equal(anyLocal.allows('in', pkt('10.201.0.1'), peer()), 'allow', 'local_cidr: any opens everything we handle');
  // Without unsafe networks in our cert the flag changes nothing (Go: !hasUnsafeNetworks -> any).
  const { config } = parseConfig(`pki: {ca: a, cert: b, key: c}\nfirewall:\n${extra}${inRule('{port: 80, proto: tcp, host: any}')}`);
  const plain = new Firewall({ ...config.firewall, local: { ips: [ip('192.168.100.1')], subnets: [] }, defaultLocalCidrAny: false });
  t.equal(plain.allows('in', pkt('192.168.100.1'), peer()), 'allow');
});

t.test('conntrack re-verification uses the same local address (matchesRules)', async (t) => {
  const f = fw(inRule('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}'));
  t.equal(f.matchesRules('in', pkt('10.200.0.1'), peer()), true);
  t.equal(f.matchesRules('in', pkt('10.201.0.1'), peer()), false);
});

t.test('parsing: local_cidr is a rule field (no unknown-key warning), validated, and counts as a selector', async (t) => {
  const r = parseFirewallRule({ port: 80, proto: 'tcp', local_cidr: ' 10.0.0.0/8 ' });
  t.same(r.errors, []);
  t.same(r.warnings, []);
  t.equal(r.rule?.localCidr, '10.0.0.0/8');
  t.equal(parseFirewallRule({ port: 80, proto: 'tcp', host: 'any' }).rule?.localCidr, undefined, 'absent when not written');
  t.equal(parseFirewallRule({ port: 80, proto: 'tcp', local_cidr: 'any' }).rule?.localCidr, 'any');
  t.equal(parseFirewallRule({ port: 80, proto: 'tcp', local_cidr: 'fd00::/8' }).rule?.localCidr, 'fd00::/8', 'IPv6 (Go 1.11)');
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'fd00::', 'fd00::/08', 'nope']) {
    const p = parseFirewallRule({ port: 80, proto: 'tcp', host: 'any', local_cidr: bad });
    t.same(p.errors.map((e) => e.path), [['local_cidr']], `${bad} refused`);
  }
  try {
    parseConfig('pki: {ca: a, cert: b, key: c}\nfirewall:\n  inbound:\n    - {port: 80, proto: tcp, host: any, local_cidr: 10.0.0.0/40}\n');
    t.fail('accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as Error).message, /^firewall\.inbound\[0\]\.local_cidr: "10\.0\.0\.0\/40" is not an IPv4 or IPv6 CIDR, or any/);
  }
});

t.test('rules text: localIp only for rules that have a local_cidr (1.6.1 hashes unchanged otherwise)', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}\n    - {port: 81, proto: tcp, host: any}\n');
  t.equal(
    f.rulesText,
    'incoming: true, proto: 6, startPort: 80, endPort: 80, groups: [], host: any, ip: , localIp: 10.200.0.0/24, caName: , caSha: \n' +
      'incoming: true, proto: 6, startPort: 81, endPort: 81, groups: [], host: any, ip: , caName: , caSha: \n',
  );
  t.not(fw(inRule('{port: 80, proto: tcp, host: any, local_cidr: 10.201.0.0/24}')).rulesHash, fw(inRule('{port: 80, proto: tcp, host: any, local_cidr: 10.200.0.0/24}')).rulesHash);
});
