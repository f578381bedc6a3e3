/**
 * Reload support (DESIGN.md "Config and reload"): which changed keys need a restart, and whether a subsystem's
 * subtree changed. Nebula compares YAML serialisations of the raw subtrees; we compare the validated values, so a
 * mere reformatting (e.g. `port: "443"` → `port: 443`) does not count as a change.
 */
import type { NebulaConfig } from './types';

/** Keys Nebula 1.6.1 does not reload (nebula-spec §10.2), plus our own extensions that size shared memory. */
const RESTART_KEYS: readonly string[] = [
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
  'tun.disabled',
  'tun.dev',
  'tun.drop_local_broadcast',
  'tun.drop_multicast',
  'tun.tx_queue',
  'tun.mtu',
  'tun.routes',
  'tun.unsafe_routes',
  'tun.userspace',
  'stats.type',
  'stats.interval',
  'stats.prefix',
  'stats.protocol',
  'stats.host',
  'stats.listen',
  'stats.path',
  'stats.namespace',
  'stats.subsystem',
  'stats.message_metrics',
  'stats.lighthouse_metrics',
  'handshakes.try_interval',
  'handshakes.retries',
  'handshakes.trigger_buffer',
  'timers.connection_alive_interval',
  'timers.pending_deletion_interval',
  'firewall.conntrack.routine_cache_timeout',
  'firewall.conntrack.max_entries',
  'control.socket',
  'tunnels.max',
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

/** Changed keys that only take effect after a restart (to be named in a reload warning). */
export function diffRequiresRestart(oldCfg: NebulaConfig, newCfg: NebulaConfig): string[] {
  return RESTART_KEYS.filter((key) => sectionChanged(oldCfg, newCfg, key));
}
