/**
 * Keys nebula-ts parses but cannot honour yet are refused with their key path (src/shared/config/unsupported.ts):
 * by validation (so `nebula-ts -config F -test` exits non-zero naming the key) and by reload (which keeps the running
 * config). Their defaults are accepted, and so is every key listed as honoured.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig, REFUSED_KEYS, type ConfigIssue } from '../../src/shared/config';
import { Logger } from '../../src/shared/log';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { LiveConfig } from '../../src/supervisor/live-config';
import { reloadConfig } from '../../src/supervisor/reload';

const PKI = 'pki:\n  ca: /etc/nebula/ca.crt\n  cert: /etc/nebula/host.crt\n  key: /etc/nebula/host.key\n';

function issuesOf(yaml: string): ConfigIssue[] {
  try {
    parseConfig(PKI + yaml);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

/** [key path, YAML that sets it to a value we cannot honour, the reason in the message]. */
const REFUSED: Array<[path: string, yaml: string, why: RegExp]> = [
  ['listen.batch', 'listen: {batch: 128}\n', /64 packets per batch/],
  ['logging.timestamp_format', 'logging: {timestamp_format: "2006-01-02T15:04:05.000Z07:00"}\n', /RFC 3339/],
  ['firewall.conntrack.routine_cache_timeout', 'firewall: {conntrack: {routine_cache_timeout: 1s}}\n', /share one conntrack table/],
  ['sshd.enabled', 'sshd: {enabled: true}\n', /no ssh server/],
  ['stats.protocol', 'stats: {type: graphite, interval: 10s, host: "127.0.0.1:2003", protocol: udp}\n', /unknown network udp/],
];

for (const [key, yaml, why] of REFUSED) {
  t.test(`${key} is refused: ${yaml.trim().split('\n').pop()}`, async (t) => {
    const refusals = issuesOf(yaml).filter((i) => /^not supported yet/.test(i.message));
    t.same(
      refusals.map((i) => i.path),
      [key],
      'exactly this key is refused',
    );
    t.match(refusals[0]?.message, why);
    t.match(refusals[0]?.message, /; remove it$/);
  });
}

t.test('every refused key has a case above', async (t) => {
  t.same([...new Set(REFUSED.map(([k]) => k))].sort(), [...REFUSED_KEYS].sort());
});

t.test('tun device keys are refused without a device (tun.disabled, tun.userspace), honoured with one', async (t) => {
  const deviceYaml = (mode: string): string =>
    `tun:\n  ${mode}\n  tx_queue: 1000\n  routes: [{mtu: 1200, route: 192.168.100.0/25}]\n` +
    '  unsafe_routes:\n    - {route: 10.200.0.0/24, via: 192.168.100.2, mtu: 1200, metric: 5}\n    - {route: 10.201.0.0/24, via: 192.168.100.3}\n';
  for (const mode of ['disabled: true', 'userspace: /run/x.sock']) {
    const issues = issuesOf(deviceYaml(mode));
    t.same(
      issues.map((i) => i.path),
      ['tun.routes', 'tun.tx_queue', 'tun.unsafe_routes[0].mtu', 'tun.unsafe_routes[0].metric'],
      `${mode}: each device key named`,
    );
    t.ok(issues.every((i) => new RegExp(`^has no effect with tun\\.${mode.split(':')[0]} \\(there is no tun device\\); remove it$`).test(i.message)), mode);
  }
  t.same(issuesOf(deviceYaml('dev: nebula1')), [], 'with a tun device they are honoured');
  t.same(issuesOf('tun:\n  disabled: true\n  unsafe_routes: [{route: 10.200.0.0/24, via: 192.168.100.2}]\n'), [], 'an unsafe route itself is fine');
});

t.test('the lighthouse, punchy and preferred_ranges keys are honoured, not refused', async (t) => {
  const yaml =
    'static_host_map: {"192.168.100.1": ["10.0.0.1:4242"]}\nlighthouse: {hosts: ["192.168.100.1"], interval: 5, advertise_addrs: ["1.2.3.4:0"],\n' +
    '  local_allow_list: {"10.0.0.0/8": true, interfaces: {"docker.*": false}}}\npunchy: {punch: true, respond: true, delay: 2s}\n' +
    'preferred_ranges: ["172.16.0.0/24"]\nstats: {type: prometheus, listen: "127.0.0.1:8080", path: /metrics, interval: 10s, lighthouse_metrics: true}\n';
  t.same(issuesOf(yaml), []);
  t.same(issuesOf('lighthouse: {am_lighthouse: true}\nlisten: {port: 4242}\n'), []);
  t.same(issuesOf('lighthouse: {am_lighthouse: true}\n'), [{ path: 'listen.port', message: 'lighthouse.am_lighthouse enabled on node but no port number is set in config' }], 'a lighthouse needs a fixed port (Go refuses it too)');
  t.same(issuesOf('lighthouse: {advertise_addrs: ["[fd00::1]:4242"]}\n').map((i) => i.path), ['lighthouse.advertise_addrs[0]'], 'an IPv6 address to advertise is refused: nebula-ts listens on IPv4');
});

t.test('defaults (written out) and honoured keys are accepted', async (t) => {
  const yaml =
    'lighthouse:\n  am_lighthouse: false\n  serve_dns: false\n  dns: {host: "", port: 53}\n  interval: 10\n  hosts: []\n' +
    '  local_allow_list: {}\n  advertise_addrs: []\n  remote_allow_list: {"10.99.0.1/32": false}\n' +
    '  remote_allow_ranges: {"192.168.100.0/24": {"10.99.0.0/24": true}}\n' +
    'listen: {batch: 64}\npunchy: {punch: false, respond: false, delay: 1s}\npunch_back: false\npreferred_ranges: []\n' +
    'relay: {relays: [], am_relay: false, use_relays: false}\nlogging: {timestamp_format: ""}\n' +
    'firewall: {conntrack: {routine_cache_timeout: 0}, default_local_cidr_any: false}\n' +
    'sshd: {enabled: false}\nstats: {type: prometheus, listen: "127.0.0.1:8080", path: /metrics, interval: 10s, prefix: nebula, protocol: tcp, lighthouse_metrics: false}\n' +
    'handshakes: {trigger_buffer: 64}\n';
  const { config, warnings } = parseConfig(PKI + yaml);
  // Sub-keys of a switched-off subsystem do nothing in Go either (Nebula's example config sets interval: 60).
  t.doesNotThrow(() => parseConfig(PKI + 'lighthouse: {interval: 60, dns: {host: 0.0.0.0, port: 5353}}\npunchy: {delay: 2s}\nsshd: {listen: "127.0.0.1:2222"}\nstats: {prefix: x, protocol: udp}\nhandshakes: {trigger_buffer: 128}\n'));
  t.same(warnings.filter((w) => w.msg === 'Unknown config key, ignored'), [], 'every key known');
  t.equal(config.relay.use_relays, false, 'relay.use_relays: false is honoured');
  t.equal(config.firewall.default_local_cidr_any, false);
  t.equal(parseConfig(PKI.replace('  key:', '  disconnect_invalid: true\n  key:')).config.pki.disconnect_invalid, true, 'pki.disconnect_invalid is honoured');
});

t.test('all refusals of a file are reported together', async (t) => {
  const issues = issuesOf('lighthouse: {interval: 60}\nlogging: {timestamp_format: "2006"}\nsshd: {enabled: true, listen: "127.0.0.1:2222", host_key: /k}\n');
  t.same(
    issues.filter((i) => /^not supported yet/.test(i.message)).map((i) => i.path),
    ['logging.timestamp_format', 'sshd.enabled'],
  );
});

t.test('nebula-ts -config F -test exits non-zero naming the refused key (compiled CLI)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-unsup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yml');
  writeFileSync(file, PKI + 'sshd:\n  enabled: true\n');
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'nebula-ts');
  const r = spawnSync(process.execPath, [bin, '-config', file, '-test'], { encoding: 'utf8' });
  t.not(r.status, 0);
  t.match(r.stderr, /^sshd\.enabled: not supported yet \(nebula-ts has no ssh server\); remove it$/m);
  t.equal(r.stdout, '', 'no effective config printed');
});

t.test('a reload that sets a refused key keeps the running config', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-unsup-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCA(dir);
  const files = makeHostCert(dir, ca, { name: 'n', ip: '192.168.100.1/24' });
  const base = `pki: {ca: ${files.ca}, cert: ${files.cert}, key: ${files.key}}\ntun: {disabled: true}\n`;
  const file = path.join(dir, 'config.yml');
  writeFileSync(file, base + 'firewall: {inbound: [{port: 22, proto: tcp, host: any}]}\n');
  const lines: string[] = [];
  const log = new Logger({ format: 'json', disableTimestamp: true, write: (l) => void lines.push(l) });
  const live = new LiveConfig(file, log);
  const before = live.config;
  const broadcasts: unknown[] = [];
  writeFileSync(file, base + 'firewall: {inbound: [{port: 23, proto: tcp, host: any}]}\nsshd: {enabled: true}\n');
  const r = reloadConfig({ live, log, resetConntrack: () => undefined, broadcastFirewall: (f) => void broadcasts.push(f) });
  t.equal(r.ok, false);
  t.match(r.error ?? '', /sshd\.enabled: not supported yet/);
  t.equal(live.config, before, 'the running config is kept');
  t.same(broadcasts, [], 'the firewall change in the same file was not applied either');
  t.ok(lines.some((l) => /Failed to reload config, keeping the running config/.test(l) && /sshd.enabled: not supported yet/.test(l)));

  // Removing the refused key: the reload goes through, and a changed remote allow list is announced as in Go.
  writeFileSync(file, base + 'firewall: {inbound: [{port: 23, proto: tcp, host: any}]}\nlighthouse: {remote_allow_list: {"10.99.0.1/32": false}}\n');
  const ok = reloadConfig({ live, log, resetConntrack: () => undefined, broadcastFirewall: (f) => void broadcasts.push(f) });
  t.equal(ok.ok, true, ok.error ?? 'reloaded');
  t.same(ok.changed, ['lighthouse.remote_allow_list', 'firewall']);
  t.same(live.config.lighthouse.remote_allow_list, { '10.99.0.1/32': false });
  t.ok(lines.some((l) => l.includes('lighthouse.remote_allow_list and/or lighthouse.remote_allow_ranges has changed')));
});
