/**
 * lighthouse.remote_allow_list / remote_allow_ranges (src/shared/allow-list.ts) against Nebula 1.6.1's
 * allow_list.go: most specific CIDR wins, the per-family default is the opposite of uniform rules (allow when the
 * family has no rule), and a range's list applies to peers whose VPN IP is in the range, on top of the global list.
 */
import t from 'tap';
import { AllowList, RemoteAllowList, remoteAllowListOf } from '../src/shared/allow-list';
import { parseConfig } from '../src/shared/config';
import { parseIPv4 } from '../src/shared/util/ipv4';

const ip = (s: string): number => parseIPv4(s)!;

type Case = [name: string, list: Record<string, boolean>, expect: Record<string, boolean>];

const CASES: Case[] = [
  ['no rules: everything allowed', {}, { '10.0.0.1': true, '0.0.0.0': true, '255.255.255.255': true }],
  ['only denies: default allow', { '10.0.0.0/8': false, '192.168.1.7/32': false }, { '10.1.2.3': false, '192.168.1.7': false, '192.168.1.8': true, '8.8.8.8': true }],
  ['only allows: default deny', { '10.0.0.0/8': true, '172.16.0.0/12': true }, { '10.9.9.9': true, '172.31.255.255': true, '172.32.0.0': false, '1.1.1.1': false }],
  [
    'mixed with a default: the most specific rule wins',
    { '0.0.0.0/0': true, '10.0.0.0/8': false, '10.42.42.0/24': true, '10.42.42.42/32': false },
    { '1.2.3.4': true, '10.0.0.1': false, '10.42.42.1': true, '10.42.42.42': false, '10.42.43.1': false },
  ],
  ['an explicit deny-all default with allows', { '0.0.0.0/0': false, '10.99.0.0/24': true }, { '10.99.0.5': true, '10.99.1.5': false }],
  ['host bits are ignored, as net.ParseCIDR does', { '10.1.2.3/8': false }, { '10.200.0.1': false, '11.0.0.1': true }],
  ['only IPv6 rules: IPv4 defaults to allow', { 'fd00::/8': false }, { '10.0.0.1': true }],
  ['IPv6 rules do not set the IPv4 default', { 'fd00::/8': true, '10.0.0.0/8': false }, { '10.0.0.1': false, '11.0.0.1': true }],
];

for (const [name, list, expect] of CASES) {
  t.test(name, async (t) => {
    const al = new AllowList(list);
    for (const [addr, want] of Object.entries(expect)) t.equal(al.allowIPv4(ip(addr)), want, `${addr} -> ${want}`);
  });
}

t.test('mixed values without a default are refused, per family', async (t) => {
  t.throws(() => new AllowList({ '10.0.0.0/8': false, '10.1.0.0/16': true }), /no default set for 0\.0\.0\.0\/0/);
  t.throws(() => new AllowList({ 'fd00::/8': false, 'fd00:1::/32': true }), /no default set for ::\/0/);
  t.doesNotThrow(() => new AllowList({ '10.0.0.0/8': false, '10.1.0.0/16': true, '0.0.0.0/0': true }));
});

t.test('remote allow list: absent allows everything', async (t) => {
  const r = new RemoteAllowList(undefined);
  t.ok(r.allowUnknownVpnIp(ip('10.0.0.1')));
  t.ok(r.allow(ip('192.168.100.1'), ip('10.0.0.1')));
});

t.test('remote_allow_ranges: the peer range list and the global list must both allow', async (t) => {
  const r = new RemoteAllowList(
    { '172.16.0.0/12': false },
    {
      '192.168.100.0/24': { '10.0.0.0/8': true }, // peers in .100/24: only private 10/8 remotes
      '192.168.100.128/25': { '10.99.0.0/16': false }, // more specific range: 10.99/16 denied, the rest allowed
    },
  );
  const table: Array<[vpn: string, remote: string, unknown: boolean, allow: boolean]> = [
    ['192.168.100.1', '10.1.1.1', true, true],
    ['192.168.100.1', '8.8.8.8', true, false], // not in the range list's allows
    ['192.168.100.1', '172.16.0.1', false, false], // denied globally
    ['192.168.100.200', '10.99.0.1', true, false], // most specific range denies
    ['192.168.100.200', '8.8.8.8', true, true], // most specific range's default is allow (its rules all deny)
    ['192.168.200.1', '8.8.8.8', true, true], // no range: only the global list
    ['192.168.200.1', '172.20.0.1', false, false],
  ];
  for (const [vpn, remote, unknown, allow] of table) {
    t.equal(r.allowUnknownVpnIp(ip(remote)), unknown, `unknown vpn, ${remote} -> ${unknown}`);
    t.equal(r.allow(ip(vpn), ip(remote)), allow, `${vpn} at ${remote} -> ${allow}`);
  }
});

t.test('from the config, compiled once per config object', async (t) => {
  const { config } = parseConfig(
    'pki: {ca: a, cert: b, key: c}\nlighthouse:\n  remote_allow_list: {"10.99.0.1/32": false}\n' +
      '  remote_allow_ranges: {"192.168.100.0/24": {"10.99.0.0/24": true}}\n',
  );
  const r = remoteAllowListOf(config.lighthouse);
  t.equal(remoteAllowListOf(config.lighthouse), r, 'cached');
  t.notOk(r.allowUnknownVpnIp(ip('10.99.0.1')));
  t.ok(r.allowUnknownVpnIp(ip('10.99.0.2')));
  t.ok(r.allow(ip('192.168.100.2'), ip('10.99.0.2')));
  t.notOk(r.allow(ip('192.168.100.2'), ip('10.98.0.2')), 'range list allows only 10.99.0.0/24');
  t.ok(r.allow(ip('192.168.101.2'), ip('10.98.0.2')), 'outside the range only the global list applies');
  const empty = parseConfig('pki: {ca: a, cert: b, key: c}\n').config;
  t.ok(remoteAllowListOf(empty.lighthouse).allow(ip('192.168.100.2'), ip('1.2.3.4')), 'no lists: allow');
});
