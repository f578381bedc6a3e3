/**
 * First contact by IPv6 VPN address (issue 12): a host known only by an IPv6 address of its certificate is
 * handshaked by that address and keyed by its certificate's IPv4 VPN IP once it answers (Go 1.11's
 * getOrHandshake for an IPv6 address). In memory, with real Noise and v2 certificates, and the lighthouse side: a
 * query by the IPv6 address (v2 tunnels only), its answer taken only when we asked.
 */
import t from 'tap';
import { MetaType } from '../../src/shared/protocol/lighthouse';
import { addrKey, addrOfBytes, parseAddr6, type VpnAddr } from '../../src/shared/protocol/vpn-addr';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { parseIPv6 } from '../../src/shared/util/ipv6';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { MAX_FIRST_CONTACTS, type HandshakeEnv } from '../../src/supervisor/handshake-manager';
import { lighthouseCommands } from '../../src/supervisor/console-lighthouse';
import { findCommand, parseCommandArgs } from '../../src/shared/console-commands';
import { handshakeNetwork } from './fixtures/handshake-peers';
import { hostPki, makeMixedCAs } from './fixtures/v2-peers';
import { CLIENT_YAML, LH1, LH2, details, node, v4 } from './fixtures/lighthouse-node';

const v6 = (text: string): VpnAddr => parseAddr6(text)!;
const ip = (text: string): number => parseIPv4(text)!;
/** handshakeNetwork with first contact: `known6` is what static_host_map / the lighthouses know of IPv6 addresses. */
function network(known6: Map<bigint, Endpoint[]>) {
  const queried = new Map<number, bigint[]>();
  const net = handshakeNetwork((peer) => ({
    addressesFor: () => [],
    addressesFor6: (a) => known6.get(addrKey(a)) ?? [],
    queryLighthouse6: (a) => void queried.set(peer.vpnIp, [...(queried.get(peer.vpnIp) ?? []), addrKey(a)]),
  }));
  return {
    add: (vpnIp: string, pki: ReturnType<HandshakeEnv['pki']>) => net.add(vpnIp, vpnIp, pki),
    /** The IPv6 addresses `p` asked its lighthouses about. */
    queried6: (p: { vpnIp: number }): bigint[] => queried.get(p.vpnIp) ?? [],
    key: (text: string) => addrKey(v6(text)),
  };
}

t.test('a handshake by IPv6 VPN address reaches the host holding it, keyed by its IPv4 VPN IP', async (t) => {
  const cas = makeMixedCAs();
  const known6 = new Map<bigint, Endpoint[]>();
  const net = network(known6);
  const a = net.add('192.168.50.1', hostPki(cas, { name: 'a', networks: ['192.168.50.1/24', 'fd00::1/64'], versions: [2] }));
  const b = net.add('192.168.50.2', hostPki(cas, { name: 'b', networks: ['192.168.50.2/24', 'fd00::2/64'], versions: [2] }));
  known6.set(net.key('fd00::2'), [b.addr]);
  a.hm.startTo6(v6('fd00::2'));
  const ha = a.hostmap.get(b.vpnIp);
  t.equal(ha?.cert.details.name, 'b', 'a has a tunnel to b, under b\'s IPv4 VPN IP');
  t.equal(b.hostmap.get(a.vpnIp)?.cert.details.name, 'a', 'and b to a');
  t.ok(ha!.initiatedLocally);
  t.equal(a.hm.pendingCount, 0, 'nothing left pending');
  t.equal(a.logs.filter((l) => /msg="Handshake message sent".*vpnIp="fd00::2"/.test(l)).length, 1, 'the stage 1 is logged under the IPv6 address');
  t.equal(a.logs.filter((l) => /msg="Handshake message received".*vpnIp=192\.168\.50\.2/.test(l)).length, 1, 'the stage 2 under the host\'s IPv4 VPN IP');
  t.same(net.queried6(a), [net.key('fd00::2')], 'one known address: the lighthouses are asked too (as for IPv4)');
});

t.test('a responder whose certificate does not hold the address is refused, no tunnel', async (t) => {
  const cas = makeMixedCAs();
  const known6 = new Map<bigint, Endpoint[]>();
  const net = network(known6);
  const a = net.add('192.168.50.1', hostPki(cas, { name: 'a', networks: ['192.168.50.1/24', 'fd00::1/64'], versions: [2] }));
  const c = net.add('192.168.50.3', hostPki(cas, { name: 'c', networks: ['192.168.50.3/24', 'fd00::3/64'], versions: [2] }));
  known6.set(net.key('fd00::2'), [c.addr]); // a stale or hostile answer: fd00::2 is not c's
  a.hm.startTo6(v6('fd00::2'));
  t.notOk(a.hostmap.get(c.vpnIp), 'no tunnel to c');
  t.equal(a.hm.pendingCount, 0, 'the handshake ended');
  t.equal(a.logs.filter((l) => /msg="Incorrect host responded to handshake".*certName=c/.test(l)).length, 1);
});

t.test('without an address the handshake waits; the lighthouse\'s answer sends it at once (trigger6)', async (t) => {
  const cas = makeMixedCAs();
  const known6 = new Map<bigint, Endpoint[]>();
  const net = network(known6);
  const a = net.add('192.168.50.1', hostPki(cas, { name: 'a', networks: ['192.168.50.1/24', 'fd00::1/64'], versions: [2] }));
  const b = net.add('192.168.50.2', hostPki(cas, { name: 'b', networks: ['192.168.50.2/24', 'fd00::2/64'], versions: [2] }));
  a.hm.startTo6(v6('fd00::2'));
  a.hm.startTo6(v6('fd00::2'));
  t.equal(a.hm.pendingCount, 1, 'one pending handshake per address');
  t.notOk(a.hostmap.get(b.vpnIp));
  known6.set(net.key('fd00::2'), [b.addr]);
  a.hm.trigger6(v6('fd00::2'));
  t.equal(a.hostmap.get(b.vpnIp)?.cert.details.name, 'b', 'the answer brought the tunnel up');
  a.hm.stop();
});

t.test('first contacts are bounded: past MAX_FIRST_CONTACTS they are refused and counted', async (t) => {
  const cas = makeMixedCAs();
  const net = network(new Map());
  const a = net.add('192.168.50.1', hostPki(cas, { name: 'a', networks: ['192.168.50.1/24', 'fd00::1/64'], versions: [2] }));
  for (let i = 0; i < MAX_FIRST_CONTACTS + 5; i++) a.hm.startTo6(v6(`fd00::1:${i.toString(16)}`));
  t.equal(a.hm.pendingCount, MAX_FIRST_CONTACTS);
  t.equal(a.counters.get('handshake_manager.first_contact_refused'), 5);
  a.hm.stop();
  t.equal(a.hm.pendingCount, 0);
  a.hm.startTo6(v6('fd00::9'));
  t.equal(a.hm.pendingCount, 1, 'room again once they are gone');
  a.hm.stop();
});

t.test('lighthouse: a query by IPv6 address goes to v2 lighthouses only; the answer is taken only when asked', async (t) => {
  const n = node(ip('10.1.0.9'), CLIENT_YAML);
  n.versions.set(LH1, 2); // LH2 stays on a v1 tunnel: no room for an IPv6 address there
  const wanted = addrOfBytes(Buffer.from(parseIPv6('fd00::2')!.flatMap((w) => [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255])));
  n.lh.queryServer6(wanted);
  t.same(n.sent.map((m) => [m.to, m.type]), [[LH1, MetaType.HostQuery]], 'asked LH1 (v2) only');
  t.same(n.sent[0]!.details?.vpnAddr, wanted, 'by the IPv6 address');
  t.equal(n.count()['lighthouse.tx.HostQuery'], 1, 'counted once: the query LH2 cannot carry is not counted');
  n.lh.queryServer6(wanted);
  t.equal(n.sent.length, 1, 'not again within the query interval');

  n.rx(LH1, MetaType.HostQueryReply, { vpnAddr: wanted, ip4AndPorts: v4('203.0.113.9:4242', '172.16.0.5:4242') });
  t.same(n.lh.addressesFor6(wanted), [{ ip: ip('203.0.113.9'), port: 4242 }], 'stored, filtered by remote_allow_list');
  t.same(n.lh.answer6(wanted), { owner: LH1, addrs: [{ ip: ip('203.0.113.9'), port: 4242 }] }, 'under the lighthouse that answered');
  t.same(n.triggered6, [wanted], 'the pending first contact is tried at once');

  // An answer about an IPv6 address nobody asked about names nobody: counted as invalid, nothing stored.
  const other = addrOfBytes(Buffer.from([0xfd, 0, ...new Array<number>(13).fill(0), 7]));
  n.rx(LH1, MetaType.HostQueryReply, details({ vpnAddr: other, ip4AndPorts: v4('203.0.113.10:4242') }));
  t.same(n.lh.addressesFor6(other), []);
  t.equal(n.count()['lighthouse.dropped.invalid'], 1);
  // Nor from a host that is not a lighthouse.
  n.rx(ip('10.1.0.3'), MetaType.HostQueryReply, { vpnAddr: wanted, ip4AndPorts: v4('198.51.100.1:4242') });
  t.same(n.lh.addressesFor6(wanted), [{ ip: ip('203.0.113.9'), port: 4242 }], 'unchanged');
  t.equal(n.triggered6.length, 1);
  t.ok(LH2 > 0);
});

t.test('nebula-ctl query-lighthouse <ipv6>: a known host by its IPv4 key, an unknown address asked about as it is', async (t) => {
  const n = node(ip('10.1.0.9'), CLIENT_YAML);
  n.versions.set(LH1, 2);
  const query = lighthouseCommands(() => n.lh)['query-lighthouse']!;
  const run = (arg: string): string => String(query(parseCommandArgs(findCommand('query-lighthouse')!, [arg]), undefined as never));
  t.equal(run('fd00::2'), 'null\n', 'nothing known yet: null, as Go prints');
  t.same(n.sent.map((m) => [m.to, m.type]), [[LH1, MetaType.HostQuery]], 'and the v2 lighthouse was asked by the address');
  n.rx(LH1, MetaType.HostQueryReply, { vpnAddr: v6('fd00::2'), ip4AndPorts: v4('203.0.113.9:4242') });
  t.same(JSON.parse(run('fd00::2')), { '10.1.0.1': { reported: [{ ip: '203.0.113.9', port: 4242 }], relay: [] } }, 'the answer, under the lighthouse that gave it');
  // Once a tunnel's certificate names the address, the query is about that host (its IPv4 key).
  n.peer(ip('10.1.0.3'), '10.1.0.3/16', 'fd00::2/64');
  run('fd00::2');
  t.same(n.sent.at(-1)?.details?.vpnIp, ip('10.1.0.3'), 'asked about 10.1.0.3');
});
