/**
 * lighthouse.remote_allow_list in the supervisor, without root: the handshake manager neither answers a stage 1 nor
 * completes a stage 2 from a denied underlay address (Go's handshake.go / handshake_ix.go, with their debug line),
 * and a tunnel does not roam to a denied address: the host map keeps the old remote and the routines are sent a
 * remoteChanged back to it (Go's handleHostRoaming).
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { RemoteAllowList } from '../../src/shared/allow-list';
import { createPacketCipher } from '../../src/shared/crypto';
import type { SupervisorToRoutine } from '../../src/shared/ipc/messages';
import { Logger } from '../../src/shared/log';
import { allocSockaddrIn } from '../../src/shared/native/sockaddr';
import { TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { TunnelSlots } from '../../src/shared/state/tunnel-slots';
import type { DatagramOutbox } from '../../src/shared/tunnel/send';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { HandshakeManager } from '../../src/supervisor/handshake-manager';
import { HostMap, type HostInfo } from '../../src/supervisor/hostmap';
import type { LiveConfig } from '../../src/supervisor/live-config';
import { Tunnels } from '../../src/supervisor/tunnels';
import { deliverHandshake, installInto, peerPki, testHostMap } from './fixtures/handshake-peers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-ral-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(dir);
const ip = (s: string): number => parseIPv4(s)!;
const DENIED = 'lighthouse.remote_allow_list denied incoming handshake';

interface Peer {
  name: string;
  vpnIp: number;
  addr: Endpoint;
  hm: HandshakeManager;
  hostmap: HostMap;
  logs: Array<Record<string, unknown>>;
  sent: number;
  /** The allow list this peer enforces; replace it to "reload". */
  allow: RemoteAllowList;
}

function makePeer(name: string, vpn: string, underlay: string, deliverTo: (from: Peer, to: Endpoint, data: Buffer) => void, addresses: Map<number, Endpoint[]>): Peer {
  const pki = peerPki(dir, ca, name, `${vpn}/24`);
  const hostmap = testHostMap();
  const peer = { name, vpnIp: ip(vpn), addr: { ip: ip(underlay), port: 4242 }, hostmap, logs: [], sent: 0, allow: new RemoteAllowList(undefined) } as unknown as Peer;
  peer.hm = new HandshakeManager({
    log: new Logger({ level: 'debug', format: 'json', disableTimestamp: true, write: (l) => void peer.logs.push(JSON.parse(l) as Record<string, unknown>) }),
    cipher: 'aes',
    pki: () => pki,
    vpnIp: peer.vpnIp,
    hostmap,
    tryIntervalMs: 60_000,
    retries: 10,
    counters: new SupervisorCounters(),
    addressesFor: (v) => addresses.get(v) ?? [],
    sendUdp: (buf, to) => {
      peer.sent++;
      deliverTo(peer, to, Buffer.from(buf));
    },
    install: installInto(hostmap),
    sendTest: () => undefined,
    remoteAllowList: () => peer.allow,
  });
  return peer;
}

function deliver(to: Peer, from: Endpoint, data: Buffer): void {
  deliverHandshake(to.hm, from, data);
}

/** a (10.99.0.1) initiates to b (10.99.0.2); datagrams are delivered at once. */
function pair(): { a: Peer; b: Peer } {
  const peers: Peer[] = [];
  const addresses = new Map<number, Endpoint[]>();
  const wire = (from: Peer, to: Endpoint, data: Buffer): void => deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data);
  const a = makePeer('a', '192.168.100.1', '10.99.0.1', wire, addresses);
  const b = makePeer('b', '192.168.100.2', '10.99.0.2', wire, addresses);
  peers.push(a, b);
  addresses.set(a.vpnIp, [a.addr]);
  addresses.set(b.vpnIp, [b.addr]);
  t.teardown(() => {
    a.hm.stop();
    b.hm.stop();
  });
  return { a, b };
}

const deniedLines = (p: Peer): Array<Record<string, unknown>> => p.logs.filter((l) => l.msg === DENIED);

t.test('stage 1 from an address remote_allow_list denies: no answer, no tunnel, a debug line', async (t) => {
  const { a, b } = pair();
  b.allow = new RemoteAllowList({ '10.99.0.1/32': false });
  a.hm.start(b.vpnIp);
  t.equal(b.sent, 0, 'b did not answer');
  t.equal(b.hostmap.size, 0, 'b has no tunnel');
  t.equal(a.hostmap.size, 0, 'a has no tunnel');
  t.ok(a.hm.isPending(b.vpnIp), "a's handshake is still pending (it will retry)");
  t.same(deniedLines(b), [{ level: 'debug', msg: DENIED, udpAddr: '10.99.0.1:4242' }], 'denied before the VPN IP is known');
});

t.test('stage 1 denied by the range list of the peer VPN IP: logged with the vpnIp', async (t) => {
  const { a, b } = pair();
  b.allow = new RemoteAllowList(undefined, { '192.168.100.0/30': { '10.99.0.1/32': false } });
  a.hm.start(b.vpnIp);
  t.equal(b.hostmap.size, 0);
  t.same(deniedLines(b), [{ level: 'debug', msg: DENIED, vpnIp: '192.168.100.1', udpAddr: '10.99.0.1:4242' }]);
});

t.test('a range list for another VPN range does not apply', async (t) => {
  const { a, b } = pair();
  b.allow = new RemoteAllowList(undefined, { '192.168.200.0/24': { '10.99.0.1/32': false } });
  a.hm.start(b.vpnIp);
  t.ok(a.hostmap.get(b.vpnIp) && b.hostmap.get(a.vpnIp), 'tunnel on both sides');
  t.same(deniedLines(b), []);
});

t.test('stage 2 from a denied address is not completed; the handshake stays pending', async (t) => {
  const { a, b } = pair();
  a.allow = new RemoteAllowList({ '10.99.0.2/32': false });
  a.hm.start(b.vpnIp);
  t.ok(b.hostmap.get(a.vpnIp), 'b (allowing) answered and installed its side');
  t.notOk(a.hostmap.get(b.vpnIp), 'a did not complete');
  t.ok(a.hm.isPending(b.vpnIp), 'still pending, as in Go (the reply is ignored, not fatal)');
  t.same(deniedLines(a), [{ level: 'debug', msg: DENIED, udpAddr: '10.99.0.2:4242' }], 'refused at the first look, before the VPN IP');
});

t.test('stage 2 denied only by the range list of the expected peer', async (t) => {
  const { a, b } = pair();
  a.allow = new RemoteAllowList(undefined, { '192.168.100.2/32': { '10.99.0.0/24': false } });
  a.hm.start(b.vpnIp);
  t.notOk(a.hostmap.get(b.vpnIp));
  t.same(deniedLines(a), [{ level: 'debug', msg: DENIED, vpnIp: '192.168.100.2', udpAddr: '10.99.0.2:4242' }]);
});

t.test('allowed: the handshake completes as usual', async (t) => {
  const { a, b } = pair();
  a.allow = new RemoteAllowList({ '10.99.0.0/24': true });
  b.allow = new RemoteAllowList({ '10.99.0.0/24': true });
  a.hm.start(b.vpnIp);
  t.ok(a.hostmap.get(b.vpnIp) && b.hostmap.get(a.vpnIp));
});

t.test('roaming to a denied address: the tunnel keeps its remote and the routines are told to go back', async (t) => {
  const slots = new TunnelSlots(new Int32Array(4 * TUNNEL_SLOT_WORDS), -1);
  const hostmap = new HostMap(slots, 4);
  const sent: SupervisorToRoutine[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let allow = new RemoteAllowList({ '172.16.0.0/12': false });
  const tunnels = new Tunnels({
    log: new Logger({ level: 'debug', format: 'json', disableTimestamp: true, write: (l) => void logs.push(JSON.parse(l) as Record<string, unknown>) }),
    counters: new SupervisorCounters(),
    hostmap,
    slots,
    outbox: {} as DatagramOutbox,
    live: {} as LiveConfig,
    broadcast: (m) => void sent.push(m),
    remoteAllowList: () => allow,
  });
  const cert = makeHostCert(path.join(dir, 'roamer'), ca, { name: 'roamer', ip: '192.168.100.9/24' }).certObj;
  const h: HostInfo = {
    vpnIp: ip('192.168.100.9'),
    localIndex: 77,
    remoteIndex: 78,
    slot: hostmap.allocateSlot(Date.now())!,
    sendKey: Buffer.alloc(32),
    recvKey: Buffer.alloc(32),
    cert,
    remoteIp: ip('10.99.0.9'),
    remotePort: 4242,
    handshakeTime: 1n,
    initiatedLocally: true,
    encrypt: createPacketCipher('aes', Buffer.alloc(32)),
    remoteSockaddr: allocSockaddrIn(),
    recvErrors: 0,
    createdAt: Date.now(),
  };
  hostmap.add(h);

  tunnels.roamed(77, ip('172.16.5.5'), 5000);
  t.equal(h.remoteIp, ip('10.99.0.9'), 'remote kept');
  t.equal(h.remotePort, 4242);
  t.same(sent, [{ type: 'remoteChanged', localIndex: 77, remoteIp: ip('10.99.0.9'), remotePort: 4242 }], 'routines sent back to the old address');
  t.same(
    logs.filter((l) => l.msg === 'lighthouse.remote_allow_list denied roaming'),
    [{ level: 'debug', msg: 'lighthouse.remote_allow_list denied roaming', vpnIp: '192.168.100.9', certName: 'roamer', newAddr: '172.16.5.5:5000' }],
  );

  sent.length = 0;
  tunnels.roamed(77, ip('10.99.0.10'), 4243);
  t.equal(h.remoteIp, ip('10.99.0.10'), 'an allowed address is followed');
  t.same(sent, [{ type: 'remoteChanged', localIndex: 77, remoteIp: ip('10.99.0.10'), remotePort: 4243 }]);
  t.ok(logs.some((l) => l.msg === 'Host roamed to new udp ip/port.'));

  sent.length = 0;
  allow = new RemoteAllowList(undefined, { '192.168.100.0/24': { '10.99.0.0/24': true } }); // reloaded: only 10.99.0.0/24
  tunnels.roamed(77, ip('10.98.0.1'), 4242);
  t.equal(h.remoteIp, ip('10.99.0.10'), 'denied by the range list after a reload');
  t.same(sent, [{ type: 'remoteChanged', localIndex: 77, remoteIp: ip('10.99.0.10'), remotePort: 4243 }]);
});
