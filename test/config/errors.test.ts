import t from 'tap';
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/shared/config';

const PKI = 'pki:\n  ca: /etc/nebula/ca.crt\n  cert: /etc/nebula/host.crt\n  key: /etc/nebula/host.key\n';

function issuesOf(yaml: string, source?: string): ConfigIssue[] {
  try {
    parseConfig(yaml, source);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('config was accepted');
}

/** Each case: the YAML (pki is prepended), the one key path expected, and a fragment of the message. */
const CASES: Array<[name: string, yaml: string, path: string, message: RegExp]> = [
  ['bad port in a firewall rule', 'firewall:\n  inbound:\n    - {port: any, proto: any, host: any}\n    - {port: 1, proto: tcp, host: a}\n    - {port: 8o, proto: tcp, host: any}\n', 'firewall.inbound[2].port', /^"8o" is not a port or range$/],
  ['bad port range in a firewall rule', 'firewall:\n  outbound:\n    - {port: 90-80, proto: tcp, host: any}\n', 'firewall.outbound[0].port', /range start is greater/],
  ['bad proto', 'firewall:\n  inbound:\n    - {port: 80, proto: sctp, host: any}\n', 'firewall.inbound[0].proto', /"sctp" is not one of any, tcp, udp, icmp/],
  ['rule without host/group/cidr/local_cidr/ca', 'firewall:\n  inbound:\n    - {port: 80, proto: tcp}\n', 'firewall.inbound[0]', /at least one of host, group, groups, cidr, local_cidr, ca_name, or ca_sha/],
  ['bad local_cidr', 'firewall:\n  inbound:\n    - {port: 80, proto: tcp, host: any, local_cidr: 10.0.0.0/33}\n', 'firewall.inbound[0].local_cidr', /is not an IPv4 or IPv6 CIDR, or any/],
  ['rule with both port and code', 'firewall:\n  inbound:\n    - {port: 80, code: any, proto: icmp, host: any}\n', 'firewall.inbound[0]', /only one of port or code/],
  ['rule with neither port nor code', 'firewall:\n  inbound:\n    - {proto: icmp, host: any}\n', 'firewall.inbound[0]', /one of port or code is required/],
  ['rule with group and groups', 'firewall:\n  inbound:\n    - {port: 1, proto: tcp, group: a, groups: [b]}\n', 'firewall.inbound[0]', /only one of group or groups/],
  ['bad cidr', 'firewall:\n  inbound:\n    - {port: 80, proto: tcp, cidr: 10.0.0.0/33}\n', 'firewall.inbound[0].cidr', /is not an IPv4 or IPv6 CIDR, or any/],
  ['bad cipher', 'cipher: des\n', 'cipher', /^must be one of aes, chachapoly/],
  ['negative listen.port', 'listen:\n  port: -1\n', 'listen.port', /^must be an integer between 0 and 65535/],
  ['oversized listen.port', 'listen:\n  port: 65536\n', 'listen.port', /^must be an integer between 0 and 65535/],
  ['bad duration', 'handshakes:\n  try_interval: 100 ms\n', 'handshakes.try_interval', /is not a duration/],
  ['duration without unit', 'firewall:\n  conntrack:\n    tcp_timeout: 12\n', 'firewall.conntrack.tcp_timeout', /must be a duration/],
  ['bad static_host_map IP key', 'static_host_map:\n  "192.168.100": ["1.2.3.4:4242"]\n', 'static_host_map["192.168.100"]', /is not an IP address/],
  ['bad static_host_map address', 'static_host_map:\n  "192.168.100.1": ["1.2.3.4:4242", "1.2.3.4"]\n', 'static_host_map["192.168.100.1"][1]', /is not a host:port address/],
  ['bad log level', 'logging:\n  level: chatty\n', 'logging.level', /must be one of panic, fatal, error, warning, info, debug, trace/],
  ['bad log format', 'logging:\n  format: xml\n', 'logging.format', /must be one of text, json/],
  ['tun.mtu not a number', 'tun:\n  mtu: big\n', 'tun.mtu', /must be an integer/],
  ['tun.routes entry without mtu', 'tun:\n  routes:\n    - route: 10.0.0.0/16\n', 'tun.routes[0].mtu', /^required$/],
  ['tun.routes entry with small mtu', 'tun:\n  routes:\n    - {route: 10.0.0.0/16, mtu: 400}\n', 'tun.routes[0].mtu', /between 500 and 65535/],
  ['unsafe route without via', 'tun:\n  unsafe_routes:\n    - route: 172.16.0.0/24\n', 'tun.unsafe_routes[0].via', /^required$/],
  ['unsafe route via an IPv6 VPN address', 'tun:\n  unsafe_routes:\n    - {route: "2001:db8::/48", via: "fd42::2"}\n', 'tun.unsafe_routes[0].via', /is an IPv6 VPN address: nebula-ts names a gateway by its IPv4 VPN address/],
  ['unsafe route that is no CIDR', 'tun:\n  unsafe_routes:\n    - {route: "2001:db8::/129", via: 192.168.100.2}\n', 'tun.unsafe_routes[0].route', /is not a CIDR/],
  ['lighthouse.hosts not an IPv4', 'lighthouse:\n  hosts: ["lh.example.com"]\n', 'lighthouse.hosts[0]', /is not an IPv4 address/],
  ['section that is not a map', 'tun: 5\n', 'tun', /must be a map/],
  ['boolean that is not a boolean', 'punchy:\n  punch: maybe\n', 'punchy.punch', /must be true or false/],
  ['send_recv_error value', 'listen:\n  send_recv_error: sometimes\n', 'listen.send_recv_error', /must be one of always, never, private/],
  ['stats without interval', 'stats:\n  type: prometheus\n  listen: 127.0.0.1:8080\n  path: /metrics\n', 'stats.interval', /required when stats.type is prometheus/],
  ['stats type', 'stats:\n  type: statsd\n', 'stats.type', /must be one of graphite, prometheus, none/],
  ['allow list with mixed rules and no default', 'lighthouse:\n  remote_allow_list:\n    "10.0.0.0/8": false\n    "10.1.0.0/16": true\n', 'lighthouse.remote_allow_list', /no default set for 0.0.0.0\/0/],
  ['tun.dev too long', 'tun:\n  dev: averyveryverylongname\n', 'tun.dev', /not a valid interface name/],
];

for (const [name, yaml, path, message] of CASES) {
  t.test(name, async (t) => {
    const issues = issuesOf(PKI + yaml);
    t.equal(issues.length, 1, `one issue: ${JSON.stringify(issues)}`);
    t.equal(issues[0].path, path);
    t.match(issues[0].message, message);
  });
}

t.test('a lighthouse without a static_host_map entry is named; keys that are also refused report both problems', async (t) => {
  const lh = issuesOf(PKI + 'lighthouse:\n  hosts: ["192.168.100.1"]\n');
  t.same(
    lh.map((i) => i.path),
    ['lighthouse.hosts[0]'],
  );
  t.match(lh[0].message, /has no static_host_map entry/);
  const ssh = issuesOf(PKI + 'sshd:\n  enabled: true\n  listen: 0.0.0.0:22\n  host_key: /k\n');
  t.match(ssh.find((i) => i.path === 'sshd.listen')?.message, /port 22/);
  t.ok(ssh.some((i) => i.path === 'sshd.enabled' && /^not supported yet/.test(i.message)));
});

t.test('missing pki keys name each key', async (t) => {
  const issues = issuesOf('tun:\n  mtu: 1300\n');
  t.same(issues.map((i) => i.path), ['pki.ca', 'pki.cert', 'pki.key']);
  t.ok(issues.every((i) => i.message === 'required'));
});

t.test('YAML syntax error names the file and the line', async (t) => {
  // Line 7 is `  dev: x: y` (pki takes lines 1-4).
  const issues = issuesOf(PKI + 'tun:\n  mtu: 1300\n  dev: x: y\n', 'node.yml');
  t.equal(issues.length, 1);
  t.equal(issues[0].path, 'node.yml');
  t.match(issues[0].message, /^YAML syntax error at line 7, column 8: /);
  // A bad indentation at line 7.
  t.match(issuesOf(PKI + 'tun:\n  mtu: 1300\n dev: x\n')[0].message, /^YAML syntax error at line 7, column 1: /);
});

t.test('duplicate keys are a YAML error', async (t) => {
  const issues = issuesOf(PKI + 'cipher: aes\ncipher: chachapoly\n', 'dup.yml');
  t.equal(issues[0].path, 'dup.yml');
  t.match(issues[0].message, /line 6/);
});

t.test('all problems are reported together, one per line of the message', async (t) => {
  try {
    parseConfig(PKI + 'listen: {port: 99999}\ncipher: rot13\ntun: {mtu: x}\n');
    t.fail('accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    const lines = (err as Error).message.split('\n');
    t.equal(lines.length, 3);
    t.match(lines[0], /^listen\.port: must be an integer between 0 and 65535/);
    t.match(lines[1], /^cipher: must be one of aes, chachapoly/);
    t.match(lines[2], /^tun\.mtu: /);
  }
});

t.test('a config that is not a map', async (t) => {
  const issues = issuesOf('- a\n- b\n', 'list.yml');
  t.same(issues, [{ path: 'list.yml', message: 'the config must be a map of keys' }]);
});
