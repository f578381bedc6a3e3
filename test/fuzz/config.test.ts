/**
 * Fuzz: config YAML parsing and validation (src/shared/config/load.ts, validate.ts, schema.ts). A config file may
 * be anything; a bad one must end in ConfigError (the supervisor keeps the running config on reload and prints the
 * issues), and an accepted one must be plain, frozen, cloneable data (it travels to routines over IPC).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, loadConfig, parseConfig, validateConfig, type LoadedConfig } from '../../src/shared/config';
import { fuzzRun, mapLines, mutateLines, nextInput, Rng, Tally, throwsTyped } from './fuzz-helpers';

const BASE_COUNT = 2500;

const PKI = 'pki:\n  ca: /etc/nebula/ca.crt\n  cert: /etc/nebula/host.crt\n  key: /etc/nebula/host.key\n';

/** Every key, set to a value nebula-ts accepts (keys it refuses unless at their default: src/shared/config/unsupported.ts). */
const KITCHEN_SINK = `${PKI}  blocklist: [c99d4e650533b92061b09918e838a5a0a6aaee21eed1d12fd937682865936c72]
  disconnect_invalid: true
static_host_map:
  "192.168.100.1": ["100.64.22.11:4242", "[fd00::1]:4242"]
  "192.168.100.2": lh2.example.com:4242
lighthouse:
  am_lighthouse: false
  interval: 10
  hosts: []
  remote_allow_list: {"172.16.0.0/12": false, "0.0.0.0/0": true, "10.0.0.0/8": false}
  remote_allow_ranges:
    "10.42.42.0/24": {"192.168.0.0/16": true}
  local_allow_list: {}
  advertise_addrs: []
listen: {host: "[::]", port: 4242, batch: 64, read_buffer: 10485760, send_recv_error: private}
routines: 2
punchy: false
punch_back: false
cipher: chachapoly
preferred_ranges: []
relay: {relays: [], am_relay: false, use_relays: true}
tun:
  dev: nebula1
  mtu: "1300"
  routes: [{mtu: 8800, route: 10.0.0.0/16}]
  unsafe_routes:
    - route: 172.16.1.0/24
      via: 192.168.100.99
      mtu: 1300
      metric: 100
logging: {level: debug, format: json, disable_timestamp: yes}
firewall:
  conntrack: {tcp_timeout: 12m, udp_timeout: 3m, default_timeout: 10m, routine_cache_timeout: 0, max_entries: 1000}
  default_local_cidr_any: false
  outbound: [{port: any, proto: any, host: any}]
  inbound:
    - {port: any, proto: icmp, host: any}
    - {port: 443, proto: tcp, groups: [laptop, home]}
    - {port: 200-901, proto: udp, cidr: 10.0.0.0/8, ca_name: "my ca"}
    - {code: any, proto: icmp, group: [ops]}
    - {port: fragment, proto: any, ca_sha: abc}
    - {port: 8080, proto: tcp, group: web, local_cidr: 10.200.0.0/24}
    - {port: 8081, proto: tcp, local_cidr: any}
sshd:
  enabled: false
  authorized_users: []
stats: {type: prometheus, listen: 127.0.0.1:8080, path: /metrics, namespace: prom, subsystem: nebula, interval: 10s, message_metrics: true}
handshakes: {try_interval: 100ms, retries: 20, trigger_buffer: 64}
timers: {connection_alive_interval: 5, pending_deletion_interval: 10s}
control: {socket: /run/nebula-ts/x.sock}
tunnels: {max: 100}
`;

const YAML_FEATURES = `${PKI}defaults: &defaults
  mtu: 1400
  tx_queue: 1000
tun:
  <<: *defaults
  dev: "nebula0"
firewall:
  outbound:
    - &rule {port: any, proto: any, host: any}
  inbound:
    - *rule
    - port: >-
        443
      proto: 'tcp'
      host: |-
        any
listen: {port: 0x10E2}
`;

const SCHEMA_KEYS = (
  'pki ca cert key blocklist blacklist disconnect_invalid static_host_map lighthouse am_lighthouse serve_dns dns host ' +
  'port interval hosts remote_allow_list remote_allow_ranges local_allow_list interfaces advertise_addrs listen batch ' +
  'read_buffer write_buffer send_recv_error routines punchy punch respond delay punch_back cipher preferred_ranges ' +
  'local_range relay relays am_relay use_relays tun disabled dev drop_local_broadcast drop_multicast tx_queue mtu ' +
  'routes route unsafe_routes via metric userspace logging level format disable_timestamp timestamp_format firewall ' +
  'conntrack tcp_timeout udp_timeout default_timeout routine_cache_timeout max_entries outbound inbound code proto ' +
  'default_local_cidr_any local_cidr group groups cidr ca_name ca_sha sshd enabled host_key authorized_users user keys stats type prefix protocol ' +
  'namespace subsystem path message_metrics lighthouse_metrics handshakes try_interval retries trigger_buffer timers ' +
  'connection_alive_interval pending_deletion_interval control socket tunnels max'
).split(' ');
const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '<<', '"a.b"', '"1.2.3.4"', '? [a]\n', "''"];

const VALUES = [
  '~', 'null', "''", '""', '[]', '{}', '[a, b]', '{a: 1}', '0', '-1', '1', '65535', '65536', '1e400', '-.inf', '.nan',
  '0x1F', '0o17', '9007199254740993', '1.5', 'yes', 'no', 'on', 'off', 'true', 'any', 'constructor', '__proto__',
  'toString', 'hasOwnProperty', '"1.2.3.4:4242"', '"[::1]:1"', '"[1.2.3.4]:1"', '10.0.0.0/8', '::/0', '0.0.0.0/0',
  '1h30m', '-5s', '1.5.5s', '5', '99999999999999999999h', '"1µs"', '*a', '&a x', '!!binary aGVsbG8=', '!!str 5',
  '!!int "5"', '!!float 1', '!foo bar', '"\\u0000"', "'a''b'", '|\n  block', '"' + 'x'.repeat(300) + '"', 'fragment',
  '1-65535', '65535-1', '0-0', 'icmp', 'tcp', 'udp', 'chachapoly', 'aes', 'prometheus', 'graphite', 'json', 'debug',
  'private', '[1.2.3.4]', '["1.2.3.4:1", 5]', '{"10.0.0.0/8": true, "10.1.0.0/16": false}', '"a\\nb"', '[[[[[1]]]]]',
];

const INJECT = [
  '%YAML 1.1\n---\n',
  '---\n',
  '...\n',
  'x: !!set {a, b}\n',
  'tun: !!omap [mtu: 1400]\n',
  'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
  'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
  'a: *later\nb: &later 1\n',
  'loop: &l [*l]\n',
  'm: &m {k: 1}\ntun:\n  <<: [*m, *m]\n',
  'tun:\n  <<: 5\n',
  'tun:\n  <<: *undefined_anchor\n',
  'x: ' + '['.repeat(200) + ']'.repeat(200) + '\n',
  'firewall:\n  inbound:\n    - {port: any, proto: constructor, host: any}\n',
  '\t\n',
  '\ufeff',
  'pki: {ca: "-----BEGIN NEBULA CERTIFICATE-----\\nAA==\\n-----END NEBULA CERTIFICATE-----\\n"}\n',
];

function yamlMutators(corpus: readonly string[]): Array<(rng: Rng, b: Buffer) => Buffer> {
  const s = (b: Buffer): string => b.toString('utf8');
  const lineRe = /^(\s*(?:-\s+)?)([^\s:#][^:#]*?)(:\s*)(.*?)(\r?\n?)$/;
  const onLine = (rng: Rng, text: string, fn: (m: RegExpExecArray) => string): string =>
    mapLines(text, (lines) => {
      const candidates = lines.map((l, i) => [i, lineRe.exec(l)] as const).filter((x): x is readonly [number, RegExpExecArray] => x[1] !== null);
      if (candidates.length === 0) return lines;
      const [i, m] = rng.pick(candidates);
      const out = [...lines];
      out[i] = fn(m);
      return out;
    });
  return [
    (rng, b) => Buffer.from(mutateLines(rng, s(b), corpus)),
    // A value replaced by an interesting YAML scalar or collection.
    (rng, b) => Buffer.from(onLine(rng, s(b), (m) => `${m[1]}${m[2]}: ${rng.pick(VALUES)}${m[5]}`)),
    (rng, b) => Buffer.from(onLine(rng, s(b), (m) => `${m[1]}${m[2]}: ${rng.pick(VALUES)}${m[5]}`)),
    // A key replaced by another schema key (lands known keys in the wrong place) or a JS-special name.
    (rng, b) =>
      Buffer.from(onLine(rng, s(b), (m) => `${m[1]}${rng.chance(0.7) ? rng.pick(SCHEMA_KEYS) : rng.pick(ODD_KEYS)}${m[3]}${m[4]}${m[5]}`)),
    // Indentation shifted by one level either way.
    (rng, b) => Buffer.from(onLine(rng, s(b), (m) => `${rng.chance(0.5) ? '  ' : ''}${m[1].slice(rng.chance(0.5) ? 2 : 0)}${m[2]}${m[3]}${m[4]}${m[5]}`)),
    // YAML constructs: directives, anchors/aliases/merges, tags, alias bombs, deep nesting.
    (rng, b) => {
      const text = s(b);
      const inject = rng.pick(INJECT);
      if (rng.chance(0.5)) return Buffer.from(inject + text);
      return Buffer.from(text + (text.endsWith('\n') ? '' : '\n') + inject);
    },
  ];
}

/** Plain data only: strings, numbers, booleans, arrays and plain objects, no cycles, frozen throughout. */
function plainFrozen(v: unknown, seen = new Set<object>()): string | undefined {
  if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) return undefined;
  if (typeof v !== 'object') return `a ${typeof v}`;
  if (seen.has(v)) return 'a cycle';
  seen.add(v);
  const proto: unknown = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return `a ${(v as object).constructor?.name ?? 'exotic'} object`;
  if (!Object.isFrozen(v)) return 'an unfrozen object';
  for (const child of Object.values(v as Record<string, unknown>)) {
    const bad = plainFrozen(child, seen);
    if (bad) return bad;
  }
  seen.delete(v);
  return undefined;
}

function checkAccepted(tally: Tally, r: LoadedConfig, input: string): void {
  const c = r.config;
  const bad = plainFrozen(c);
  tally.check(bad === undefined, `the config holds ${bad}`, input);
  tally.mustNotThrow(input, 'structuredClone (IPC serialization)', () => structuredClone(c));
  tally.check(Number.isInteger(c.routines) && c.routines >= 1, `routines ${c.routines}`, input);
  tally.check(Number.isInteger(c.tun.mtu) && c.tun.mtu >= 68 && c.tun.mtu <= 65535, `tun.mtu ${c.tun.mtu}`, input);
  tally.check(Number.isInteger(c.listen.port) && c.listen.port >= 0 && c.listen.port <= 65535, `listen.port ${c.listen.port}`, input);
  for (const rule of [...c.firewall.inbound, ...c.firewall.outbound]) {
    tally.check([0, 1, 6, 17].includes(rule.proto), `firewall rule proto ${String(rule.proto)}`, input);
    tally.check(Number.isInteger(rule.startPort) && Number.isInteger(rule.endPort) && rule.startPort >= -1 && rule.endPort <= 65535, 'rule ports', input);
  }
  for (const [k, v] of Object.entries(c.firewall.conntrack)) {
    tally.check(typeof v === 'number' && !Number.isNaN(v) && v >= 0, `firewall.conntrack.${k} ${v}`, input);
  }
  tally.check(c.handshakes.try_interval >= 0 && !Number.isNaN(c.handshakes.try_interval), 'try_interval', input);
  // Validation is a function of the parsed YAML: doing it again gives the same config.
  const again = tally.mustNotThrow(input, 're-validating the raw value', () => validateConfig(r.raw));
  if (again) tally.check(isDeepStrictEqual(again.config, c), 'validateConfig(raw) is deterministic', input);
}

t.test('parseConfig on mutated and random YAML', async (t) => {
  const run = fuzzRun(t, 'config', BASE_COUNT);
  const { rng } = run;
  const example = readFileSync(resolve(__dirname, '../../config/example.yml'), 'utf8');
  const seedText = [example, PKI, KITCHEN_SINK, YAML_FEATURES];
  for (const s of seedText) t.ok(parseConfig(s).config, 'seed config is valid');
  const seeds = seedText.map((s) => Buffer.from(s));
  const dir = mkdtempSync(join(tmpdir(), 'nebula-ts-fuzz-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const tally = new Tally('parseConfig', [ConfigError]);
  const fromFile = new Tally('loadConfig', [ConfigError]);
  const mutators = yamlMutators(seedText);
  for (let i = 0; i < run.count; i++) {
    const raw = nextInput(rng, seeds, { corpus: seeds, extra: [...mutators, ...mutators], randomMax: 120, maxLen: 16384 });
    const input = raw.toString('utf8');
    const r = tally.run(input, () => parseConfig(input));
    if (r.ok) checkAccepted(tally, r.value, input);

    // Every 20th input also goes through a file, bytes as they are (invalid UTF-8 included): same verdict.
    if (i % 20 === 0) {
      const file = join(dir, `c${i}.yml`);
      writeFileSync(file, raw);
      const f = fromFile.run(input, () => loadConfig(file));
      fromFile.check(f.ok === r.ok, `loadConfig ${f.ok ? 'accepted' : 'rejected'} what parseConfig ${r.ok ? 'accepted' : 'rejected'}`, input);
      if (f.ok && r.ok) fromFile.check(isDeepStrictEqual(f.value.config, r.value.config), 'same config from file and text', input);
      rmSync(file);
    }
  }
  tally.assert(t, 100);
  fromFile.assert(t, 3);
});

t.test('errors name a key path or the file', async (t) => {
  // A ConfigError is only useful if each issue says where; check that on a batch of rejected fuzz inputs.
  const run = fuzzRun(t, 'config-issues', BASE_COUNT / 5);
  const { rng } = run;
  const seeds = [Buffer.from(KITCHEN_SINK), Buffer.from(PKI)];
  const mutators = yamlMutators([KITCHEN_SINK, PKI]);
  const tally = new Tally('ConfigError issues', [ConfigError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, extra: mutators }).toString('utf8');
    try {
      parseConfig(input, 'fuzz.yml');
      tally.accepted++;
    } catch (err) {
      if (!(err instanceof ConfigError)) {
        tally.violation(`threw ${String(err)}`, input);
        continue;
      }
      tally.rejected++;
      tally.check(err.issues.length > 0, 'a ConfigError with no issues', input);
      for (const iss of err.issues) tally.check(iss.message.length > 0 && typeof iss.path === 'string', `issue ${JSON.stringify(iss)}`, input);
    }
  }
  tally.assert(t, 20);
});

t.test('regression: inputs the config fuzz found', async (t) => {
  // Each of these escaped validation as something other than ConfigError (or, for __proto__, was accepted with a
  // non-numeric protocol) before load.ts and firewall/rule.ts were fixed.
  const cases: Array<[string, string, RegExp]> = [
    ['merge key with a scalar value (yaml throws Error)', 'tun:\n  <<: 5\n', /YAML error: Merge sources must be maps/],
    ['merge key with a list of scalars', 'tun:\n  <<: [1]\n', /YAML error: Merge sources must be maps/],
    ['alias to an anchor defined later (yaml throws ReferenceError)', 'a: *x\nb: &x 1\n', /YAML error: Unresolved alias/],
    [
      'alias bomb (yaml throws ReferenceError)',
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n' +
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
      /YAML error: Excessive alias count/,
    ],
    ['firewall proto "constructor" (structuredClone threw DOMException)', 'firewall:\n  inbound:\n    - {port: any, proto: constructor, host: any}\n', /inbound\[0\]\.proto: "constructor" is not one of/],
    ['firewall proto "toString"', 'firewall:\n  outbound:\n    - {port: any, proto: toString, host: any}\n', /outbound\[0\]\.proto: "toString" is not one of/],
    ['firewall proto "__proto__" (was accepted, proto = {})', 'firewall:\n  inbound:\n    - {port: any, proto: __proto__, host: any}\n', /inbound\[0\]\.proto: "__proto__" is not one of/],
  ];
  for (const [name, yaml, message] of cases) {
    throwsTyped(t, () => parseConfig(PKI + yaml), ConfigError, message, name);
  }
});
