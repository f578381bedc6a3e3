import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ConfigError,
  diffRequiresRestart,
  loadConfig,
  logConfigWarnings,
  parseConfig,
  parseGoDuration,
  sectionChanged,
  validateConfig,
} from '../../src/shared/config';
import { Logger } from '../../src/shared/log';

const PKI = 'pki:\n  ca: /etc/nebula/ca.crt\n  cert: /etc/nebula/host.crt\n  key: /etc/nebula/host.key\n';

const DEPRECATED = 'Setting tun.routines and listen.routines is deprecated. Use `routines` instead';

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-ts-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('an empty config apart from pki gets Nebula 1.6.1 code defaults', async (t) => {
  const { config: c } = parseConfig(PKI);
  t.equal(c.tun.mtu, 1300);
  t.equal(c.tun.tx_queue, 500);
  t.equal(c.tun.dev, '');
  t.equal(c.tun.disabled, false);
  t.same(c.tun.routes, []);
  t.same(c.tun.unsafe_routes, []);
  t.equal(c.handshakes.try_interval, 100);
  t.equal(c.handshakes.retries, 10);
  t.equal(c.handshakes.trigger_buffer, 64);
  t.equal(c.cipher, 'aes');
  t.equal(c.listen.host, '0.0.0.0');
  t.equal(c.listen.port, 0);
  t.equal(c.listen.batch, 64);
  t.equal(c.listen.read_buffer, 0);
  t.equal(c.listen.send_recv_error, 'always');
  t.equal(c.firewall.conntrack.tcp_timeout, 12 * 60_000);
  t.equal(c.firewall.conntrack.udp_timeout, 3 * 60_000);
  t.equal(c.firewall.conntrack.default_timeout, 10 * 60_000);
  t.equal(c.firewall.conntrack.routine_cache_timeout, 0);
  t.same(c.firewall.inbound, []);
  t.same(c.firewall.outbound, []);
  t.equal(c.logging.level, 'info');
  t.equal(c.logging.format, 'text');
  t.equal(c.logging.disable_timestamp, false);
  t.equal(c.routines, 1);
  t.equal(c.lighthouse.am_lighthouse, false);
  t.equal(c.lighthouse.interval, 10_000);
  t.equal(c.lighthouse.dns.port, 53);
  t.same(c.lighthouse.hosts, []);
  t.equal(c.punchy.punch, false);
  t.equal(c.punchy.respond, false);
  t.equal(c.punchy.delay, 1000);
  t.equal(c.relay.use_relays, true);
  t.equal(c.relay.am_relay, false);
  t.equal(c.pki.disconnect_invalid, false);
  t.same(c.pki.blocklist, []);
  t.equal(c.stats.type, 'none');
  t.equal(c.stats.interval, 10_000);
  t.equal(c.stats.prefix, 'nebula');
  t.equal(c.stats.message_metrics, false);
  t.equal(c.timers.connection_alive_interval, 5000);
  t.equal(c.timers.pending_deletion_interval, 10_000);
  t.equal(c.sshd.enabled, false);
  // nebula-ts extensions
  // Per network namespace (src/shared/control-path.ts): this process's namespace, tun.dev "" → "nebula".
  t.equal(c.control.socket, `/run/nebula-ts/netns-${statSync('/proc/self/ns/net').ino}.nebula.sock`);
  t.equal(c.firewall.conntrack.max_entries, 65536);
  t.equal(c.tunnels.max, 4096);
});

t.test('the result is deeply frozen', async (t) => {
  const { config } = parseConfig(PKI + 'firewall:\n  inbound:\n    - {port: 22, proto: tcp, groups: [a, b]}\n');
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.firewall.inbound[0].groups));
  t.throws(() => {
    (config.tun as { mtu: number }).mtu = 9000;
  });
});

t.test('routines: the deprecation rule of nebula-spec §8.1', async (t) => {
  t.test('routines set wins and the old keys are not warned about', async (t) => {
    const { config, warnings } = parseConfig(PKI + 'routines: 4\ntun: {routines: 2}\nlisten: {routines: 8}\n');
    t.equal(config.routines, 4);
    t.equal(warnings.filter((w) => w.msg === DEPRECATED).length, 0);
    t.same(
      warnings.filter((w) => w.msg === 'Using multiple routines'),
      [{ level: 'info', msg: 'Using multiple routines', fields: { routines: 4 }, startupOnly: true }],
    );
    t.equal(config.firewall.conntrack.routine_cache_timeout, 1000, 'routine cache defaults to 1s when routines > 1');
  });
  t.test('routines: 1 logs nothing about routines', async (t) => {
    const { config, warnings } = parseConfig(PKI + 'routines: 1\n');
    t.equal(config.routines, 1);
    t.equal(warnings.filter((w) => /routines/.test(w.msg)).length, 0);
  });
  t.test('only the old keys: the max wins, with exactly one WARN', async (t) => {
    const { config, warnings } = parseConfig(PKI + 'tun:\n  routines: 2\nlisten:\n  routines: 3\n');
    t.equal(config.routines, 3);
    const dep = warnings.filter((w) => w.msg === DEPRECATED);
    t.equal(dep.length, 1);
    t.equal(dep[0].level, 'warning');
    t.same(dep[0].fields, { routines: 3 });
  });
  t.test('max of both, whichever is bigger', async (t) => {
    t.equal(parseConfig(PKI + 'tun: {routines: 5}\nlisten: {routines: 2}\n').config.routines, 5);
    t.equal(parseConfig(PKI + 'tun: {routines: 1}\n').config.routines, 1);
    t.equal(parseConfig(PKI + 'tun: {routines: 1}\n').warnings.filter((w) => w.msg === DEPRECATED).length, 0);
  });
  t.test('values below 1 become 1', async (t) => {
    const zero = parseConfig(PKI + 'routines: 0\n');
    t.equal(zero.config.routines, 1);
    t.equal(zero.warnings.filter((w) => /routines/.test(w.msg)).length, 0);
    t.equal(parseConfig(PKI + 'routines: -3\n').config.routines, 1);
  });
  t.test('warnings are logged once through the caller logger', async (t) => {
    const lines: string[] = [];
    const logger = new Logger({ format: 'json', write: (l) => lines.push(l), disableTimestamp: true });
    const { warnings } = parseConfig(PKI + 'tun: {routines: 2}\nlisten: {routines: 3}\n');
    logConfigWarnings(logger, warnings.filter((w) => w.msg === DEPRECATED));
    t.same(lines.map((l) => JSON.parse(l)), [{ level: 'warning', msg: DEPRECATED, routines: 3 }]);
    // routines is only read at start: a reload of the same file must not repeat the WARN.
    logConfigWarnings(logger, warnings, 'reload');
    t.same(lines.slice(1).filter((l) => /routines/i.test(l)), [], 'nothing about routines logged again on reload');
  });
});

t.test('durations: Go syntax to milliseconds, plain integers as seconds where Nebula takes seconds', async (t) => {
  t.equal(parseGoDuration('100ms'), 100);
  t.equal(parseGoDuration('12m'), 720_000);
  t.equal(parseGoDuration('1h30m'), 5_400_000);
  t.equal(parseGoDuration('1.5s'), 1500);
  t.equal(parseGoDuration('0'), 0);
  t.type(parseGoDuration('10'), 'string');
  t.type(parseGoDuration('10x'), 'string');
  const { config } = parseConfig(
    // (lighthouse.interval and punchy.delay only at their defaults: other values are refused, see unsupported.test.ts)
    PKI + 'lighthouse: {interval: 10}\ntimers: {connection_alive_interval: 7, pending_deletion_interval: 2m}\n' +
      'handshakes: {try_interval: 250ms}\npunchy: {delay: 1s}\nfirewall: {conntrack: {tcp_timeout: 1h}}\n',
  );
  t.equal(config.lighthouse.interval, 10_000);
  t.equal(config.timers.connection_alive_interval, 7000);
  t.equal(config.timers.pending_deletion_interval, 120_000);
  t.equal(config.handshakes.try_interval, 250);
  t.equal(config.punchy.delay, 1000);
  t.equal(config.firewall.conntrack.tcp_timeout, 3_600_000);
});

t.test('legacy spellings are folded in', async (t) => {
  // punchy, punch_back, local_range and preferred_ranges are refused unless at their defaults (unsupported.test.ts).
  const { config, warnings } = parseConfig(PKI.replace('  key:', '  blacklist: [abc]\n  key:') + 'punchy: false\npunch_back: false\nlisten: {send_recv_error: false}\n');
  t.equal(config.punchy.punch, false, 'punchy: false is punchy.punch: false');
  t.equal(config.punchy.respond, false);
  t.same(config.preferred_ranges, []);
  t.same(config.pki.blocklist, ['abc']);
  t.equal(config.listen.send_recv_error, 'never');
  t.ok(warnings.some((w) => /pki.blacklist is deprecated/.test(w.msg)));
  t.equal(parseConfig(PKI + 'listen: {send_recv_error: true}\n').config.listen.send_recv_error, 'always');
  t.equal(parseConfig(PKI + 'listen: {send_recv_error: private}\n').config.listen.send_recv_error, 'private');
});

t.test('static_host_map, lighthouse, routes and other typed sections', async (t) => {
  const { config } = parseConfig(
    PKI +
      'static_host_map:\n  "192.168.100.1": ["100.64.22.11:4242", "lh.example.com:4242"]\n  "192.168.100.2": "[2001:db8::1]:4242"\n' +
      'lighthouse:\n  remote_allow_list: {"0.0.0.0/0": true, "10.0.0.0/8": false}\n' +
      '  remote_allow_ranges: {"192.168.100.0/24": {"10.0.0.0/8": true}}\n' +
      'tun:\n  dev: nebula9\n  routes: [{mtu: 8800, route: 10.0.0.0/16}]\n  unsafe_routes: [{route: 172.16.1.0/24, via: 192.168.100.99}]\n' +
      'listen: {host: "[::]", port: "4242"}\n',
  );
  t.same(config.static_host_map, {
    '192.168.100.1': ['100.64.22.11:4242', 'lh.example.com:4242'],
    '192.168.100.2': ['[2001:db8::1]:4242'],
  });
  t.same(config.lighthouse.remote_allow_list, { '0.0.0.0/0': true, '10.0.0.0/8': false });
  t.same(config.lighthouse.remote_allow_ranges, { '192.168.100.0/24': { '10.0.0.0/8': true } });
  t.same(config.tun.routes, [{ mtu: 8800, route: '10.0.0.0/16' }]);
  t.same(config.tun.unsafe_routes, [{ route: '172.16.1.0/24', via: '192.168.100.99', mtu: 1300, metric: 0 }]);
  t.equal(config.listen.host, '::');
  t.equal(config.listen.port, 4242);
  t.equal(config.control.socket, `/run/nebula-ts/netns-${statSync('/proc/self/ns/net').ino}.nebula9.sock`);
});

t.test('unknown keys are warnings with their key path, not failures', async (t) => {
  const { config, warnings } = parseConfig(
    PKI + 'lighthous:\n  hosts: []\ntun:\n  mtuu: 1400\nfirewall:\n  max_connections: 10\n  inbound:\n    - {port: 1, proto: tcp, host: a, hots: b}\n',
  );
  t.equal(config.tun.mtu, 1300);
  const keys = warnings.filter((w) => w.msg === 'Unknown config key, ignored').map((w) => w.fields.key);
  t.same(keys.sort(), ['firewall.inbound[0].hots', 'firewall.max_connections', 'lighthous', 'tun.mtuu']);
});

t.test('directory: files merged in Nebula walk order, maps overridden, lists appended', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '00-base.yml'), PKI + 'tun:\n  mtu: 1400\n  dev: a\nfirewall:\n  inbound:\n    - {port: 22, proto: tcp, host: admin}\n');
  mkdirSync(join(dir, '10-more'));
  writeFileSync(join(dir, '10-more', 'fw.yaml'), 'firewall:\n  inbound:\n    - {port: 443, proto: tcp, group: web}\n');
  writeFileSync(join(dir, '20-override.yml'), 'tun:\n  mtu: 1500\n');
  writeFileSync(join(dir, 'README.txt'), 'not: [yaml');
  const loaded = loadConfig(dir);
  t.same(
    loaded.files.map((f) => f.slice(dir.length + 1)),
    ['00-base.yml', join('10-more', 'fw.yaml'), '20-override.yml'],
  );
  t.equal(loaded.config.tun.mtu, 1500, 'later file overrides');
  t.equal(loaded.config.tun.dev, 'a', 'sibling keys of an overridden map survive');
  t.same(
    loaded.config.firewall.inbound.map((r) => r.startPort),
    [22, 443],
    'lists are appended across files',
  );
});

t.test('loadConfig reads a single file, and the example config loads', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.yml');
  writeFileSync(file, PKI + 'cipher: chachapoly\n');
  t.equal(loadConfig(file).config.cipher, 'chachapoly');
  const example = loadConfig(resolve(__dirname, '../../config/example.yml'));
  t.equal(example.config.listen.port, 4242);
  t.equal(example.config.tun.dev, 'nebula1');
  t.equal(example.config.firewall.inbound.length, 2);
  t.same(example.warnings.filter((w) => w.msg === 'Unknown config key, ignored'), []);
  t.throws(() => loadConfig(join(dir, 'missing.yml')), ConfigError);
});

t.test('validateConfig accepts an object directly', async (t) => {
  const { config } = validateConfig({ pki: { ca: 'x', cert: 'y', key: 'z' }, tun: { mtu: 1400 } });
  t.equal(config.tun.mtu, 1400);
});

t.test('reload helpers', async (t) => {
  const a = parseConfig(PKI + 'tun: {mtu: 1300}\nfirewall: {inbound: [{port: 22, proto: tcp, host: a}]}\nlogging: {level: info}\n').config;
  const b = parseConfig(PKI + 'tun: {mtu: 1400}\nfirewall: {inbound: [{port: "22", proto: tcp, host: a}]}\nlogging: {level: debug}\n').config;
  const c = parseConfig(PKI + 'tun: {mtu: 1300}\nfirewall: {inbound: [{port: 23, proto: tcp, host: a}]}\nroutines: 2\n').config;
  t.same(diffRequiresRestart(a, b), ['tun.mtu']);
  t.same(diffRequiresRestart(a, c), ['routines', 'firewall.conntrack.routine_cache_timeout']);
  t.notOk(sectionChanged(a, b, 'firewall'), 'same rules written differently are not a change');
  t.ok(sectionChanged(a, c, 'firewall'));
  t.ok(sectionChanged(a, b, 'logging'));
  t.notOk(sectionChanged(a, b, 'lighthouse.dns'));
});
