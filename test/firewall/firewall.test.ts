import t from 'tap';
import { createHash } from 'node:crypto';
import { parseConfig } from '../../src/shared/config';
import {
  Firewall,
  bumpRulesVersion,
  newFirewallPacket,
  parseFirewallRule,
  type FirewallLocal,
  type FirewallPacket,
  type FirewallPeer,
  type FirewallRule,
} from '../../src/shared/firewall';
import { parseCidr, parseIPv4 } from '../../src/shared/util/ipv4';

const ip = (s: string): number => parseIPv4(s)!;
const LOCAL: FirewallLocal = { ips: [ip('10.0.0.1')], subnets: [] };

/** Rules written as YAML, parsed through the config (the same path a real config takes). */
function rules(yaml: string): { inbound: readonly FirewallRule[]; outbound: readonly FirewallRule[] } {
  const { config } = parseConfig('pki: {ca: a, cert: b, key: c}\nfirewall:\n' + yaml);
  return config.firewall;
}

function fw(yaml: string, local = LOCAL): Firewall {
  return new Firewall({ ...rules(yaml), local });
}

function peer(over: Partial<Omit<FirewallPeer, 'groups'>> & { groups?: string[] } = {}): FirewallPeer {
  return {
    name: over.name ?? 'peer',
    groups: new Set(over.groups ?? []),
    issuer: over.issuer ?? 'ca-sha-1',
    caName: over.caName ?? 'ca-one',
    ips: over.ips ?? [ip('10.0.0.2')],
    subnets: over.subnets ?? [],
    ips6: over.ips6 ?? [],
    subnets6: over.subnets6 ?? [],
  };
}

function pkt(over: Partial<FirewallPacket> = {}): FirewallPacket {
  return {
    ...newFirewallPacket(),
    proto: 6,
    localIp: ip('10.0.0.1'),
    remoteIp: ip('10.0.0.2'),
    localPort: 80,
    remotePort: 40000,
    ...over,
  };
}

t.test('host rules match the cert name; host any matches everyone', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, host: web}\n');
  t.equal(f.allows('in', pkt(), peer({ name: 'web' })), 'allow');
  t.equal(f.allows('in', pkt(), peer({ name: 'db' })), 'drop_no_rule');
  const any = fw('  inbound:\n    - {port: 80, proto: tcp, host: any}\n');
  t.equal(any.allows('in', pkt(), peer({ name: 'whoever' })), 'allow');
});

t.test('group, groups (all required) and group any', async (t) => {
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, group: web}\n    - {port: 443, proto: tcp, groups: [laptop, home]}\n');
  t.equal(f.allows('in', pkt(), peer({ groups: ['web', 'x'] })), 'allow');
  t.equal(f.allows('in', pkt(), peer({ groups: ['x'] })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 443 }), peer({ groups: ['laptop', 'home', 'x'] })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 443 }), peer({ groups: ['laptop'] })), 'drop_no_rule', 'one of two groups is not enough');
  t.equal(f.allows('in', pkt({ localPort: 443 }), peer({ groups: ['web'] })), 'drop_no_rule');
  const any = fw('  inbound:\n    - {port: 80, proto: tcp, group: any}\n');
  t.equal(any.allows('in', pkt(), peer()), 'allow');
  const single = fw('  inbound:\n    - {port: 80, proto: tcp, groups: web}\n');
  t.equal(single.allows('in', pkt(), peer({ groups: ['web'] })), 'allow', 'groups as a single string');
});

t.test('group given as a one-element list is accepted with a warning', async (t) => {
  const r = parseFirewallRule({ port: 80, proto: 'tcp', group: ['web'] });
  t.same(r.rule?.groups, ['web']);
  t.equal(r.warnings.length, 1);
  const { warnings } = parseConfig('pki: {ca: a, cert: b, key: c}\nfirewall:\n  inbound:\n    - {port: 80, proto: tcp, group: [web]}\n');
  t.ok(warnings.some((w) => w.fields.key === 'firewall.inbound[0].group' && /single value/.test(w.msg)));
});

t.test('cidr rules match the packet remote IP; any CIDR containing 0.0.0.0 means any', async (t) => {
  const sub = { subnets: [parseCidr('192.168.50.0/24')!] };
  const f = fw('  inbound:\n    - {port: 80, proto: tcp, cidr: 192.168.50.0/25}\n');
  t.equal(f.allows('in', pkt({ remoteIp: ip('192.168.50.7') }), peer(sub)), 'allow');
  t.equal(f.allows('in', pkt({ remoteIp: ip('192.168.50.200') }), peer(sub)), 'drop_no_rule');
  const quirk = fw('  inbound:\n    - {port: 80, proto: tcp, cidr: 0.0.0.0/8}\n');
  t.equal(quirk.allows('in', pkt({ remoteIp: ip('10.0.0.2') }), peer()), 'allow', '0.0.0.0/8 acts as any');
});

t.test('ca_name and ca_sha constrain by issuing CA', async (t) => {
  const f = fw(
    '  inbound:\n    - {port: 80, proto: tcp, ca_name: ca-one}\n' +
      '    - {port: 81, proto: tcp, ca_sha: ca-sha-2}\n' +
      '    - {port: 82, proto: tcp, ca_name: ca-one, group: ops}\n',
  );
  t.equal(f.allows('in', pkt(), peer({ caName: 'ca-one' })), 'allow', 'ca_name alone allows everything signed by it');
  t.equal(f.allows('in', pkt(), peer({ caName: 'ca-two' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 81 }), peer({ issuer: 'ca-sha-2' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 81 }), peer({ issuer: 'ca-sha-1' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 82 }), peer({ caName: 'ca-one', groups: ['ops'] })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 82 }), peer({ caName: 'ca-one', groups: ['dev'] })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 82 }), peer({ caName: 'ca-two', groups: ['ops'] })), 'drop_no_rule');
});

t.test('port ranges, any port, and overlapping ranges', async (t) => {
  const f = fw(
    '  inbound:\n    - {port: 8000-8100, proto: tcp, host: a}\n    - {port: 8050-9000, proto: tcp, host: b}\n' +
      '    - {port: 0-10, proto: udp, host: c}\n    - {port: 0, proto: icmp, host: d}\n',
  );
  t.equal(f.allows('in', pkt({ localPort: 8000 }), peer({ name: 'a' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 8100 }), peer({ name: 'a' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 8101 }), peer({ name: 'a' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 7999 }), peer({ name: 'a' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 8075 }), peer({ name: 'b' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 8075 }), peer({ name: 'a' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 9000 }), peer({ name: 'b' })), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 9001 }), peer({ name: 'b' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ localPort: 65535 }), peer({ name: 'b' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ proto: 17, localPort: 5353 }), peer({ name: 'c' })), 'allow', 'a range starting at 0 is any');
  t.equal(f.allows('in', pkt({ proto: 6, localPort: 5 }), peer({ name: 'c' })), 'drop_no_rule', 'udp rule, tcp packet');
  t.same(parseFirewallRule({ port: '0-10', proto: 'udp', host: 'c' }).rule?.endPort, 0);
});

t.test('fragments match fragment rules and any-port rules only', async (t) => {
  const f = fw('  inbound:\n    - {port: fragment, proto: udp, host: frag}\n    - {port: any, proto: udp, host: anyp}\n    - {port: 53, proto: udp, host: dns}\n');
  const frag = pkt({ proto: 17, fragment: true, localPort: 0, remotePort: 0 });
  t.equal(f.allows('in', frag, peer({ name: 'frag' })), 'allow');
  t.equal(f.allows('in', frag, peer({ name: 'anyp' })), 'allow');
  t.equal(f.allows('in', frag, peer({ name: 'dns' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ proto: 17, localPort: 53 }), peer({ name: 'frag' })), 'drop_no_rule', 'fragment rule is not a port rule');
  t.equal(f.allows('in', pkt({ proto: 17, localPort: 53 }), peer({ name: 'dns' })), 'allow');
});

t.test('icmp: only any-port icmp rules or any-proto rules apply', async (t) => {
  const f = fw('  inbound:\n    - {port: any, proto: icmp, host: pinger}\n    - {code: any, proto: icmp, host: coder}\n    - {port: 80, proto: icmp, host: odd}\n');
  const icmp = pkt({ proto: 1, localPort: 0, remotePort: 0 });
  t.equal(f.allows('in', icmp, peer({ name: 'pinger' })), 'allow');
  t.equal(f.allows('in', icmp, peer({ name: 'coder' })), 'allow');
  t.equal(f.allows('in', icmp, peer({ name: 'odd' })), 'drop_no_rule');
  t.equal(f.allows('in', pkt({ proto: 6 }), peer({ name: 'pinger' })), 'drop_no_rule', 'icmp rule does not allow tcp');
  const anyProto = fw('  inbound:\n    - {port: any, proto: any, host: any}\n');
  t.equal(anyProto.allows('in', icmp, peer()), 'allow');
  t.equal(anyProto.allows('in', pkt({ proto: 47, localPort: 0 }), peer()), 'allow', 'any proto covers e.g. GRE');
  t.equal(f.allows('in', pkt({ proto: 47, localPort: 0 }), peer({ name: 'pinger' })), 'drop_no_rule');
});

t.test('inbound checks the local port, outbound the remote port', async (t) => {
  const f = fw('  inbound:\n    - {port: 22, proto: tcp, host: any}\n  outbound:\n    - {port: 443, proto: tcp, host: any}\n');
  t.equal(f.allows('in', pkt({ localPort: 22, remotePort: 50000 }), peer()), 'allow');
  t.equal(f.allows('in', pkt({ localPort: 50000, remotePort: 22 }), peer()), 'drop_no_rule');
  t.equal(f.allows('out', pkt({ localPort: 50000, remotePort: 443 }), peer()), 'allow');
  t.equal(f.allows('out', pkt({ localPort: 443, remotePort: 50000 }), peer()), 'drop_no_rule');
  t.equal(f.allows('out', pkt({ localPort: 50000, remotePort: 22 }), peer()), 'drop_no_rule', 'tables are separate');
});

t.test('remote IP must belong to the peer cert (IPs or subnets), local IP to our cert', async (t) => {
  const f = fw('  inbound:\n    - {port: any, proto: any, host: any}\n  outbound:\n    - {port: any, proto: any, host: any}\n', {
    ips: [ip('10.0.0.1')],
    subnets: [parseCidr('172.16.0.0/24')!],
  });
  const p = peer({ ips: [ip('10.0.0.2')], subnets: [parseCidr('192.168.1.0/24')!] });
  t.equal(f.allows('in', pkt({ remoteIp: ip('10.0.0.2') }), p), 'allow');
  t.equal(f.allows('in', pkt({ remoteIp: ip('192.168.1.77') }), p), 'allow', 'peer subnet');
  t.equal(f.allows('in', pkt({ remoteIp: ip('10.0.0.3') }), p), 'drop_remote_ip');
  t.equal(f.allows('out', pkt({ remoteIp: ip('192.168.2.1') }), p), 'drop_remote_ip');
  t.equal(f.allows('in', pkt({ localIp: ip('10.0.0.9') }), p), 'drop_local_ip');
  t.equal(f.allows('in', pkt({ localIp: ip('172.16.0.5') }), p), 'allow', 'own subnet');
  t.equal(f.allows('in', pkt({ remoteIp: ip('10.0.0.3'), localIp: ip('10.0.0.9') }), p), 'drop_remote_ip', 'remote checked first');
  t.equal(f.matchesRules('in', pkt({ remoteIp: ip('10.0.0.3'), localIp: ip('10.0.0.9') }), p), true, 'matchesRules skips address checks');
  const none = fw('  inbound: []\n');
  t.equal(none.allows('in', pkt(), peer()), 'drop_no_rule', 'default deny');
  t.equal(none.matchesRules('in', pkt(), peer()), false);
});

t.test('rules hash, description and version', async (t) => {
  const a = fw('  outbound:\n    - {port: any, proto: any, host: any}\n  inbound:\n    - {port: 443, proto: tcp, groups: [laptop, home], cidr: 10.1.2.3/16}\n');
  t.equal(
    a.rulesText,
    'incoming: false, proto: 0, startPort: 0, endPort: 0, groups: [], host: any, ip: , caName: , caSha: \n' +
      'incoming: true, proto: 6, startPort: 443, endPort: 443, groups: [laptop home], host: , ip: 10.1.0.0/16, caName: , caSha: \n',
  );
  t.equal(a.rulesHash, createHash('sha256').update(a.rulesText).digest('hex'));
  t.match(a.rulesHash, /^[0-9a-f]{64}$/);
  const same = fw('  outbound:\n    - {port: "any", proto: any, host: any}\n  inbound:\n    - {port: "443", proto: tcp, groups: [laptop, home], cidr: 10.1.2.3/16}\n');
  t.equal(same.rulesHash, a.rulesHash);
  const other = fw('  inbound:\n    - {port: 444, proto: tcp, host: any}\n');
  t.not(other.rulesHash, a.rulesHash);
  t.equal(a.rulesVersion, 0);
  const next = new Firewall({ ...rules('  inbound: []\n'), local: LOCAL, rulesVersion: bumpRulesVersion(a.rulesVersion) });
  t.equal(next.rulesVersion, 1);
  t.equal(bumpRulesVersion(0xffff), 0, '16-bit wrap');
});

t.test('conntrack timeouts come from the config', async (t) => {
  const cfg = parseConfig('pki: {ca: a, cert: b, key: c}\nfirewall:\n  conntrack: {tcp_timeout: 1m, udp_timeout: 2m, default_timeout: 3m}\n').config;
  const f = new Firewall({ ...cfg.firewall, local: LOCAL });
  t.equal(f.timeoutFor(6), 60_000);
  t.equal(f.timeoutFor(17), 120_000);
  t.equal(f.timeoutFor(1), 180_000);
  t.equal(f.timeoutFor(47), 180_000);
});
