/**
 * The lighthouse commands of Nebula's ssh console (ssh.go sshListLighthouseMap, sshQueryLighthouse), in Go's shapes:
 * - `list-lighthouse-addrmap [-json|-pretty]`: every host of the address map, sorted by VPN IP (as text, so
 *   10.0.0.10 sorts before 10.0.0.2, as Go's strings.Compare does); per owner (who told us) the learned and
 *   reported addresses and the relays: `{"vpnIp": ..., "addrs": {"<owner>": {"learned": [{ip, port}], "reported":
 *   [...], "relay": [...]}}}`; as text, one line per host: `<vpnIp>: <addrs as JSON>`. As Go 1.10+ keys its map by
 *   every address of a host's certificate, a host we have a tunnel to is listed under each of them (its IPv6 VPN
 *   addresses too, in Go's text form), each row the same entry.
 * - `query-lighthouse <vpn-ip>`: asks the lighthouses (as a handshake would) and prints what we know now, as the
 *   same per-owner map, or null. An IPv6 VPN address names the host whose certificate holds it when we know that
 *   host, else it is asked about as it is (first contact) and the last answer about it is printed.
 */
import type { ParsedArgs } from '../shared/console-commands';
import { formatAddr } from '../shared/pki/v2/prefix';
import { formatIPv4, parseIPv4 } from '../shared/util/ipv4';
import { parseAddr6 } from '../shared/protocol/vpn-addr';
import type { Endpoint } from '../shared/util/endpoint';
import { ConsoleError, type ConsoleHandler } from './console';
import { goJson } from './console-views';
import type { Lighthouse } from './lighthouse';
import type { RemoteList } from './remote-list';

type LighthouseView = Pick<Lighthouse, 'entries' | 'queryServer' | 'networksOf' | 'vpnIpOf' | 'queryServer6' | 'answer6'>;

interface CacheJson {
  learned?: Array<{ ip: string; port: number }>;
  reported?: Array<{ ip: string; port: number }>;
  relay: string[];
}

const addr = (e: Endpoint): { ip: string; port: number } => ({ ip: formatIPv4(e.ip), port: e.port });

/** Go's RemoteList.CopyCache: owner VPN IP -> what it told us (IPv6 reports kept as Go prints them). */
export function cacheMapJson(list: RemoteList): Record<string, CacheJson> {
  const out: Record<string, CacheJson> = {};
  for (const [owner, c] of list.owners()) {
    const learned = c.learned ? [addr(c.learned)] : [];
    const reported = c.reported.map(addr);
    const entry: CacheJson = { relay: c.relays.map(formatIPv4) };
    if (learned.length > 0) entry.learned = learned;
    if (reported.length > 0) entry.reported = reported;
    out[formatIPv4(owner)] = entry;
  }
  return out;
}

export function addrMapJson(lh: LighthouseView): Array<{ vpnIp: string; addrs: Record<string, CacheJson> }> {
  const rows: Array<{ vpnIp: string; addrs: Record<string, CacheJson> }> = [];
  for (const [ip, list] of lh.entries()) {
    const addrs = cacheMapJson(list);
    const names = new Set([formatIPv4(ip), ...(lh.networksOf(ip) ?? []).map((n) => formatAddr(n.addr))]);
    for (const vpnIp of names) rows.push({ vpnIp, addrs });
  }
  return rows.sort((a, b) => (a.vpnIp < b.vpnIp ? -1 : a.vpnIp > b.vpnIp ? 1 : 0));
}

/** The handlers, given how to reach the running node's lighthouse. */
export function lighthouseCommands(lighthouse: () => LighthouseView): Record<string, ConsoleHandler> {
  return {
    'list-lighthouse-addrmap': (a: ParsedArgs) => {
      const rows = addrMapJson(lighthouse());
      if (a.bool('json') || a.bool('pretty')) return goJson(rows, a.bool('pretty'));
      return rows.map((r) => `${r.vpnIp}: ${JSON.stringify(r.addrs)}\n`).join('');
    },
    'query-lighthouse': (a: ParsedArgs) => {
      const text = a.args[0];
      if (text === undefined) throw new ConsoleError('No vpn ip was provided');
      const lh = lighthouse();
      // An IPv6 VPN address (Go 1.11): the host it names if we know it, else a query by that address (first contact).
      const v6 = parseAddr6(text);
      const vpnIp = v6 === undefined ? parseIPv4(text) : lh.vpnIpOf(v6);
      if (v6 !== undefined && vpnIp === undefined) {
        lh.queryServer6(v6);
        const answer = lh.answer6(v6);
        return goJson(answer ? { [formatIPv4(answer.owner)]: { reported: answer.addrs.map(addr), relay: [] } } : null, false);
      }
      if (vpnIp === undefined || vpnIp === 0) throw new ConsoleError(`The provided vpn ip could not be parsed: ${text}`);
      lh.queryServer(vpnIp);
      const list = lh.entries().get(vpnIp);
      return goJson(list ? cacheMapJson(list) : null, false);
    },
  };
}
