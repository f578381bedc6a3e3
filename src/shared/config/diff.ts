/**
 * Reload support (DESIGN.md "Config and reload"): what a reload does with each changed key, and whether a subtree
 * changed. Nebula compares YAML serialisations of the raw subtrees; we compare the validated values, so a mere
 * reformatting (e.g. `port: "443"` → `port: 443`) does not count as a change.
 *
 * Every key of the config is classified in KEY_EFFECTS (a unit test walks the whole config and fails on a key left
 * out), so no change goes unreported: a reloadable key is applied and named in the reload summary, a restart key is
 * named in a warning and keeps its running value until the restart (`keepRestartKeys`), so that nothing reading the
 * live config picks it up half-way (a respawned routine with another cipher or MTU than its siblings).
 */
import type { NebulaConfig } from './types';

/** `reload`: applied by a reload; `restart`: only read at start. */
export type KeyEffect = 'reload' | 'restart';

/**
 * Go nebula 1.6.1 decides (its RegisterReloadCallback users: interface.go reloadCA / reloadCertKey / reloadFirewall /
 * reloadSendRecvError, udp ReloadConfig, lighthouse.go, punchy.go, relay_manager.go, dns_server.go, ssh.go and the
 * logger in main.go); every other key is read once at start. Our extensions that size shared memory or name the
 * control socket are restart keys too. In config order; a key's own entry or its nearest classified ancestor applies.
 */
export const KEY_EFFECTS: Readonly<Record<string, KeyEffect>> = {
  'pki.ca': 'reload',
  'pki.cert': 'reload',
  'pki.key': 'reload',
  'pki.blocklist': 'reload',
  'pki.disconnect_invalid': 'restart',
  'pki.initiating_version': 'reload',
  static_host_map: 'reload',
  'lighthouse.am_lighthouse': 'restart',
  'lighthouse.serve_dns': 'restart',
  'lighthouse.dns': 'reload',
  'lighthouse.interval': 'reload',
  'lighthouse.hosts': 'reload',
  'lighthouse.remote_allow_list': 'reload',
  'lighthouse.remote_allow_ranges': 'reload',
  'lighthouse.local_allow_list': 'reload',
  'lighthouse.advertise_addrs': 'reload',
  'listen.host': 'restart',
  'listen.port': 'restart',
  'listen.batch': 'restart',
  'listen.read_buffer': 'reload',
  'listen.write_buffer': 'reload',
  'listen.send_recv_error': 'reload',
  routines: 'restart',
  'punchy.punch': 'restart',
  'punchy.respond': 'reload',
  'punchy.delay': 'reload',
  cipher: 'restart',
  preferred_ranges: 'restart',
  'relay.relays': 'reload',
  'relay.am_relay': 'reload',
  'relay.use_relays': 'restart',
  'tun.disabled': 'restart',
  'tun.dev': 'restart',
  'tun.drop_local_broadcast': 'restart',
  'tun.drop_multicast': 'restart',
  'tun.tx_queue': 'restart',
  'tun.mtu': 'restart',
  'tun.routes': 'restart',
  'tun.unsafe_routes': 'restart',
  'tun.userspace': 'restart',
  'tun.offloads': 'restart',
  'tun.keep_warm': 'restart',
  logging: 'reload',
  'firewall.conntrack.tcp_timeout': 'reload',
  'firewall.conntrack.udp_timeout': 'reload',
  'firewall.conntrack.default_timeout': 'reload',
  'firewall.conntrack.routine_cache_timeout': 'restart',
  'firewall.conntrack.max_entries': 'restart',
  'firewall.outbound': 'reload',
  'firewall.inbound': 'reload',
  'firewall.default_local_cidr_any': 'reload',
  'firewall.inbound_action': 'reload',
  'firewall.outbound_action': 'reload',
  // Go reloads the ssh server; nebula-ts has none (sshd.enabled is refused), so its sub-keys do nothing either way.
  sshd: 'reload',
  stats: 'restart',
  handshakes: 'restart',
  timers: 'restart',
  'control.socket': 'restart',
  'tunnels.max': 'restart',
};

/** Reloadable keys reported under one name (the parts reload.ts reports in detail). */
const REPORTED_AS: ReadonlyArray<[prefix: string, name: string]> = [
  ['pki.', 'pki'],
  ['firewall.', 'firewall'],
  ['lighthouse.remote_allow_ranges', 'lighthouse.remote_allow_list'],
];

/** Serialisation with sorted keys, so equal values compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val !== null && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

function get(cfg: NebulaConfig, dotted: string): unknown {
  let v: unknown = cfg;
  for (const part of dotted.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** True when the value at `dotted` (e.g. 'firewall', 'lighthouse.dns') differs between the two configs. */
export function sectionChanged(oldCfg: NebulaConfig, newCfg: NebulaConfig, dotted: string): boolean {
  return canonical(get(oldCfg, dotted)) !== canonical(get(newCfg, dotted));
}

function keysWith(effect: KeyEffect): string[] {
  return Object.entries(KEY_EFFECTS)
    .filter(([, e]) => e === effect)
    .map(([k]) => k);
}

const RESTART_KEYS = keysWith('restart');
const RELOAD_KEYS = keysWith('reload');

/**
 * Changed keys that only take effect after a restart (to be named in a reload warning). A socket buffer set back to
 * 0 is one too: Go leaves the running socket's size alone then, and only a restart gives the default (nebula-ts: 4 MiB).
 */
export function diffRequiresRestart(oldCfg: NebulaConfig, newCfg: NebulaConfig): string[] {
  const keys = RESTART_KEYS.filter((key) => sectionChanged(oldCfg, newCfg, key));
  if (newCfg.listen.read_buffer === 0 && oldCfg.listen.read_buffer !== 0) keys.push('listen.read_buffer');
  if (newCfg.listen.write_buffer === 0 && oldCfg.listen.write_buffer !== 0) keys.push('listen.write_buffer');
  return keys;
}

/** Changed reloadable keys, under the names the reload summary uses (`pki`, `firewall`, or the key path). */
export function reloadedKeys(oldCfg: NebulaConfig, newCfg: NebulaConfig): string[] {
  const names: string[] = [];
  for (const key of RELOAD_KEYS) {
    if (!sectionChanged(oldCfg, newCfg, key)) continue;
    const name = REPORTED_AS.find(([prefix]) => key.startsWith(prefix))?.[1] ?? key;
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/**
 * `next` with every restart key's value taken from `running`: the config a reload puts in force. The file's new
 * values for those keys wait for the restart (and every later reload names them again until then). A socket buffer
 * set back to 0 keeps its running size too, as the socket does.
 */
export function keepRestartKeys(running: NebulaConfig, next: NebulaConfig): NebulaConfig {
  const changed = diffRequiresRestart(running, next);
  if (changed.length === 0) return next;
  const out = structuredClone(next) as Record<string, unknown>;
  for (const key of changed) {
    const parts = key.split('.');
    let parent = out;
    for (const part of parts.slice(0, -1)) parent = parent[part] as Record<string, unknown>;
    parent[parts[parts.length - 1]!] = structuredClone(get(running, key));
  }
  return deepFreeze(out) as unknown as NebulaConfig;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const child of Object.values(v as Record<string, unknown>)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}
