/**
 * `nebula-ctl print-relays [-pretty]` (Go's sshPrintRelays): the relay table as JSON, one entry per host whose tunnel
 * carries relays (Go prints one entry per relay index, so a host appears once per relay; here once), each relay with
 * its type (terminal: we are an end; forwarding: we relay), state, peer, both indexes, and the relays the peer's own
 * tunnel goes through.
 *
 * Go's slices are nil until appended to, and encoding/json writes a nil slice as `null`: `Relays` is null when there
 * are no relays and `RelayedThrough` when the peer's tunnel goes through none (append of nothing keeps nil).
 * `RelayForIps` always holds the host's relays here, so it is never empty.
 */
import type { ParsedArgs } from '../shared/console-commands';
import { formatIPv4 } from '../shared/util/ipv4';
import type { ConsoleHandler } from './console';
import { goJson } from './console-views';
import type { HostMap } from './hostmap';
import type { RelayManager } from './relay-manager';

interface RelayFor {
  Error: null;
  Type: 'terminal' | 'forwarding';
  State: 'requested' | 'established';
  PeerIp: string;
  LocalIndex: number;
  RemoteIndex: number;
  RelayedThrough: string[] | null;
}

export function relaysJson(relays: Pick<RelayManager, 'all'>, hostmap: Pick<HostMap, 'get'>): { Relays: Array<{ NebulaIp: string; RelayForIps: RelayFor[] }> | null } {
  const byHost = new Map<number, RelayFor[]>();
  for (const r of relays.all()) {
    const list = byHost.get(r.hostVpnIp) ?? [];
    const peer = hostmap.get(r.peerVpnIp);
    list.push({
      Error: null,
      Type: r.kind,
      State: r.state,
      PeerIp: formatIPv4(r.peerVpnIp),
      LocalIndex: r.localIndex,
      RemoteIndex: r.remoteIndex,
      RelayedThrough: peer?.relay ? [formatIPv4(peer.relay.relayVpnIp)] : null,
    });
    byHost.set(r.hostVpnIp, list);
  }
  const rows = [...byHost].sort(([a], [b]) => a - b).map(([ip, list]) => ({ NebulaIp: formatIPv4(ip), RelayForIps: list }));
  return { Relays: rows.length > 0 ? rows : null };
}

export function relayCommands(parts: () => { relays: Pick<RelayManager, 'all'>; hostmap: Pick<HostMap, 'get'> }): Record<string, ConsoleHandler> {
  return {
    'print-relays': (a: ParsedArgs) => {
      const p = parts();
      return goJson(relaysJson(p.relays, p.hostmap), a.bool('pretty'));
    },
  };
}
