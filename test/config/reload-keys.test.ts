/**
 * Every config key is either applied by a reload or named as needing a restart, never silently ignored (issue 10).
 * The whole validated config is walked: each leaf must fall under a KEY_EFFECTS entry, and changing it alone must
 * show up in exactly the list its effect says (reloadedKeys or diffRequiresRestart), while keepRestartKeys keeps
 * the running value of restart keys only. The classification itself is checked against Go 1.6.1's reload callbacks.
 */
import t from 'tap';
import { diffRequiresRestart, keepRestartKeys, KEY_EFFECTS, parseConfig, reloadedKeys, sectionChanged, type NebulaConfig } from '../../src/shared/config';

const BASE = parseConfig('pki: {ca: /x/ca.crt, cert: /x/host.crt, key: /x/host.key, initiating_version: 1}\nlighthouse: {local_allow_list: {interfaces: {eth0: true}}}\n').config;

/** Leaf paths of a config: objects are walked (an empty one is a leaf, e.g. static_host_map), arrays are leaves. */
function leaves(v: unknown, prefix: string[] = []): string[][] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [prefix];
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return [prefix];
  return entries.flatMap(([k, child]) => leaves(child, [...prefix, k]));
}

/** The KEY_EFFECTS entry covering `path`: its own or its nearest ancestor's. */
function classified(path: string[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const key = path.slice(0, n).join('.');
    if (key in KEY_EFFECTS) return key;
  }
  return undefined;
}

/** A different value of the same kind (validity does not matter to the diff). */
function other(v: unknown): unknown {
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return `${v}-changed`;
  if (Array.isArray(v)) return [...(v as unknown[]), 'added'];
  return { ...(v as Record<string, unknown>), added: ['1.2.3.4:4242'] };
}

/** A copy of `cfg` with the value at `path` replaced by `value`. */
function withValue(cfg: NebulaConfig, path: string[], value: unknown): NebulaConfig {
  const out = structuredClone(cfg) as Record<string, unknown>;
  let parent = out;
  for (const p of path.slice(0, -1)) parent = parent[p] as Record<string, unknown>;
  parent[path[path.length - 1]!] = value;
  return out as unknown as NebulaConfig;
}

function at(cfg: NebulaConfig, path: string[]): unknown {
  return path.reduce<unknown>((v, p) => (v as Record<string, unknown>)[p], cfg);
}

const REPORTED_AS: Record<string, string> = { 'lighthouse.remote_allow_ranges': 'lighthouse.remote_allow_list' };
const reportedName = (key: string): string => (key.startsWith('pki.') ? 'pki' : key.startsWith('firewall.') ? 'firewall' : (REPORTED_AS[key] ?? key));

t.test('every key of the config is classified, and every classified key exists', async (t) => {
  const paths = leaves(BASE);
  t.ok(paths.length > 60, `${paths.length} leaf keys walked`);
  const unclassified = paths.filter((p) => classified(p) === undefined).map((p) => p.join('.'));
  t.same(unclassified, [], 'no key without a reload effect');
  const names = new Set(paths.map((p) => p.join('.')));
  const dangling = Object.keys(KEY_EFFECTS).filter((k) => ![...names].some((n) => n === k || n.startsWith(`${k}.`)));
  t.same(dangling, [], 'no classified key that the config does not have');
});

t.test('changing one key shows up as reloaded or as needing a restart, as classified', async (t) => {
  let reloadable = 0;
  let restart = 0;
  for (const path of leaves(BASE)) {
    const dotted = path.join('.');
    const key = classified(path)!;
    const next = withValue(BASE, path, other(at(BASE, path)));
    const effective = keepRestartKeys(BASE, next);
    if (KEY_EFFECTS[key] === 'restart') {
      restart++;
      t.same(diffRequiresRestart(BASE, next), [key], `${dotted}: restart needed for ${key}`);
      t.same(reloadedKeys(BASE, next), [], `${dotted}: nothing applied`);
      t.notOk(sectionChanged(BASE, effective, key), `${dotted}: the running value is kept until the restart`);
      t.ok(Object.isFrozen(effective) && Object.isFrozen(at(effective, path.slice(0, 1))), `${dotted}: the config in force stays frozen`);
    } else {
      reloadable++;
      t.same(reloadedKeys(BASE, next), [reportedName(key)], `${dotted}: reloaded as ${reportedName(key)}`);
      t.same(diffRequiresRestart(BASE, next), [], `${dotted}: no restart`);
      t.equal(effective, next, `${dotted}: the new value is put in force`);
    }
  }
  t.ok(reloadable >= 20 && restart >= 30, `${reloadable} reloadable and ${restart} restart leaves`);
});

t.test("the classification follows Go 1.6.1's reload callbacks", async (t) => {
  // interface.go (reloadCA, reloadCertKey, reloadFirewall, reloadSendRecvError), udp ReloadConfig, lighthouse.go
  // reload, punchy.go reload, relay_manager.go reload, dns_server.go reloadDns, main.go's logger callback.
  const reloadable = [
    'pki.ca',
    'pki.cert',
    'pki.key',
    'pki.blocklist',
    'static_host_map',
    'lighthouse.hosts',
    'lighthouse.interval',
    'lighthouse.advertise_addrs',
    'lighthouse.remote_allow_list',
    'lighthouse.remote_allow_ranges',
    'lighthouse.local_allow_list',
    'lighthouse.dns',
    'listen.send_recv_error',
    'listen.read_buffer',
    'listen.write_buffer',
    'punchy.respond',
    'punchy.delay',
    'relay.am_relay',
    'relay.relays',
    'logging',
    'firewall.inbound',
    'firewall.outbound',
    'firewall.conntrack.tcp_timeout',
  ];
  for (const k of reloadable) t.equal(KEY_EFFECTS[k], 'reload', `${k} is reloaded`);
  // Read once at start in Go 1.6.1 (main.go, overlay, udp.NewListener), or sizing our shared memory.
  const startOnly = [
    'pki.disconnect_invalid',
    'lighthouse.am_lighthouse',
    'lighthouse.serve_dns',
    'listen.host',
    'listen.port',
    'listen.batch',
    'routines',
    'punchy.punch',
    'cipher',
    'preferred_ranges',
    'relay.use_relays',
    'tun.dev',
    'tun.mtu',
    'tun.routes',
    'tun.unsafe_routes',
    'tun.drop_local_broadcast',
    'firewall.conntrack.routine_cache_timeout',
    'firewall.conntrack.max_entries',
    'control.socket',
    'tunnels.max',
  ];
  for (const k of startOnly) t.equal(KEY_EFFECTS[k], 'restart', `${k} needs a restart`);
  t.same(
    ['stats.type', 'stats.listen', 'handshakes.try_interval', 'handshakes.retries', 'timers.connection_alive_interval'].map((k) => classified(k.split('.'))),
    ['stats', 'stats', 'handshakes', 'handshakes', 'timers'],
    'stats, handshakes and timers as a whole',
  );
});

t.test('a socket buffer set back to 0 keeps the running size until a restart (Go leaves the socket alone)', async (t) => {
  const sized = withValue(withValue(BASE, ['listen', 'read_buffer'], 1 << 20), ['listen', 'write_buffer'], 1 << 19);
  t.same(reloadedKeys(BASE, sized), ['listen.read_buffer', 'listen.write_buffer'], 'a size is applied');
  t.same(diffRequiresRestart(BASE, sized), []);
  t.same(diffRequiresRestart(sized, BASE), ['listen.read_buffer', 'listen.write_buffer'], 'back to 0: restart needed');
  const effective = keepRestartKeys(sized, BASE);
  t.equal(effective.listen.read_buffer, 1 << 20, 'the running read_buffer stays in force');
  t.equal(effective.listen.write_buffer, 1 << 19);
  t.same(diffRequiresRestart(effective, BASE), ['listen.read_buffer', 'listen.write_buffer'], 'and the next reload says so again');
});

t.test('several changes at once: each one named once, in config order', async (t) => {
  let next = withValue(BASE, ['tun', 'mtu'], 1400);
  next = withValue(next, ['listen', 'send_recv_error'], 'never');
  next = withValue(next, ['cipher'], 'chachapoly');
  next = withValue(next, ['firewall', 'inbound_action'], 'reject');
  next = withValue(next, ['firewall', 'outbound_action'], 'reject');
  next = withValue(next, ['relay', 'am_relay'], true);
  t.same(reloadedKeys(BASE, next), ['listen.send_recv_error', 'relay.am_relay', 'firewall']);
  t.same(diffRequiresRestart(BASE, next), ['cipher', 'tun.mtu']);
  const effective = keepRestartKeys(BASE, next);
  t.equal(effective.tun.mtu, 1300);
  t.equal(effective.cipher, 'aes');
  t.equal(effective.listen.send_recv_error, 'never');
  t.equal(effective.relay.am_relay, true);
  t.equal(effective.firewall.inbound_action, 'reject');
});
