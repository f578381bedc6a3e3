/**
 * The handshake manager with real Noise and real certificates, two of them wired through an in-memory network that
 * can lose or repeat datagrams: completion with matching keys, the cached stage 2 for a retransmitted stage 1,
 * linear backoff then "Handshake timed out", and the simultaneous-initiation tie-break (nebula-spec §3.3–3.7).
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA } from '../../src/testbed/mesh-pki';
import { Logger } from '../../src/shared/log';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { HostMap, type HostInfo } from '../../src/supervisor/hostmap';
import { HandshakeManager } from '../../src/supervisor/handshake-manager';
import { Rekeyer, REKEY_AFTER_MESSAGES } from '../../src/supervisor/rekey';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { deliverHandshake, installInto, peerPki, testHostMap } from './fixtures/handshake-peers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-hs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(dir);

interface Peer {
  name: string;
  vpnIp: number;
  addr: Endpoint;
  hm: HandshakeManager;
  hostmap: HostMap;
  counters: SupervisorCounters;
  logs: string[];
  /** Every datagram this peer sent, in order, with a timestamp. */
  sent: Array<{ to: Endpoint; data: Buffer; at: number }>;
  tests: number;
}

type Wire = (from: Peer, to: Endpoint, data: Buffer) => void;

function makePeer(name: string, ip: string, wire: () => Wire, opts: { tryIntervalMs?: number; retries?: number; addresses?: Map<number, Endpoint[]>; onLog?: (line: string) => void } = {}): Peer {
  const pki = peerPki(dir, ca, name, `${ip}/24`);
  const hostmap = testHostMap();
  const counters = new SupervisorCounters();
  const logs: string[] = [];
  const peer: Peer = {
    name,
    vpnIp: parseIPv4(ip)!,
    addr: { ip: parseIPv4(`10.0.0.${ip.split('.')[3]}`)!, port: 4242 },
    hostmap,
    counters,
    logs,
    sent: [],
    tests: 0,
    hm: undefined as unknown as HandshakeManager,
  };
  peer.hm = new HandshakeManager({
    log: new Logger({ level: 'debug', write: (l) => void (logs.push(l), opts.onLog?.(l)) }),
    cipher: 'aes',
    pki: () => pki,
    vpnIp: peer.vpnIp,
    hostmap,
    tryIntervalMs: opts.tryIntervalMs ?? 1000,
    retries: opts.retries ?? 10,
    counters,
    addressesFor: (vpn) => opts.addresses?.get(vpn) ?? [],
    sendUdp: (buf, to) => {
      const data = Buffer.from(buf);
      peer.sent.push({ to, data, at: Date.now() });
      wire()(peer, to, data);
    },
    install: installInto(hostmap),
    sendTest: () => void peer.tests++,
  });
  return peer;
}

function deliver(to: Peer, from: Endpoint, data: Buffer): void {
  deliverHandshake(to.hm, from, data);
}

function pair(wireFn: Wire, opts: Parameters<typeof makePeer>[3] = {}): { a: Peer; b: Peer } {
  const addresses = new Map<number, Endpoint[]>();
  const a = makePeer('a', '192.168.50.1', () => wireFn, { ...opts, addresses });
  const b = makePeer('b', '192.168.50.2', () => wireFn, { ...opts, addresses });
  addresses.set(a.vpnIp, [a.addr]);
  addresses.set(b.vpnIp, [b.addr]);
  return { a, b };
}

t.test('a handshake completes on both sides with mirrored keys and indexes', async (t) => {
  const peers: Peer[] = [];
  const { a, b } = pair((from, to, data) => deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data));
  peers.push(a, b);
  a.hm.start(b.vpnIp);
  const ha = a.hostmap.get(b.vpnIp);
  const hb = b.hostmap.get(a.vpnIp);
  t.ok(ha && hb, 'both sides have a tunnel');
  t.ok(ha!.sendKey.equals(hb!.recvKey) && ha!.recvKey.equals(hb!.sendKey), 'initiator sends with what the responder receives with');
  t.equal(ha!.remoteIndex, hb!.localIndex);
  t.equal(hb!.remoteIndex, ha!.localIndex);
  t.equal(ha!.cert.details.name, 'b');
  t.equal(hb!.cert.details.name, 'a');
  t.equal(a.hm.pendingCount, 0);
  t.equal(a.counters.get('handshake_manager.initiated'), 1);
  t.equal(a.hm.durations.snapshot().count, 1, 'the `handshakes` histogram has the initiator\'s completed handshake');
  t.ok(a.hm.durations.snapshot().min > 0, 'a duration in ns');
  t.equal(b.hm.durations.snapshot().count, 0, 'the responder records none (as Go)');
});

t.test('a retransmitted stage 1 gets the cached stage 2, byte for byte, and no second tunnel', async (t) => {
  const peers: Peer[] = [];
  let loseReplies = true;
  const { a, b } = pair((from, to, data) => {
    if (from.name === 'b' && loseReplies) return; // b's first stage 2 is lost
    deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data);
  });
  peers.push(a, b);
  a.hm.start(b.vpnIp);
  t.equal(b.sent.length, 1, 'b answered once');
  t.notOk(a.hostmap.get(b.vpnIp), 'a has no tunnel yet (the reply was lost)');
  const tunnelAtB = b.hostmap.get(a.vpnIp)!;
  loseReplies = false;
  deliver(b, a.addr, a.sent[0]!.data); // a's retransmission of the very same stage 1
  t.equal(b.sent.length, 2);
  t.ok(b.sent[1]!.data.equals(b.sent[0]!.data), 'identical stage 2 resent');
  t.equal(b.hostmap.get(a.vpnIp), tunnelAtB, 'same tunnel on b');
  t.equal(b.hostmap.size, 1);
  t.ok(a.hostmap.get(b.vpnIp), 'a completes with the cached reply');
  a.hm.stop();
});

t.test('no answer: attempts back off linearly, then "Handshake timed out" after `retries`', async (t) => {
  const tryIntervalMs = 20;
  const retries = 4;
  let onTimedOut: () => void = () => undefined;
  const timedOut = new Promise<void>((resolve) => (onTimedOut = resolve));
  const a = makePeer('lonely', '192.168.50.7', () => () => undefined, {
    tryIntervalMs,
    retries,
    addresses: new Map([[parseIPv4('192.168.50.8')!, [{ ip: 1, port: 1 }]]]),
    onLog: (line) => {
      if (line.includes('Handshake timed out')) onTimedOut();
    },
  });
  // The manager's retry timers are unref'd (the supervisor has other handles); keep this test process alive.
  const keepAlive = setInterval(() => undefined, 1000);
  a.hm.start(parseIPv4('192.168.50.8')!);
  await timedOut;
  clearInterval(keepAlive);
  t.equal(a.sent.length, retries, `exactly ${retries} attempts`);
  for (let n = 1; n < a.sent.length; n++) {
    const gap = a.sent[n]!.at - a.sent[n - 1]!.at;
    t.ok(gap >= n * tryIntervalMs - 2, `gap ${n} is at least ${n} x try_interval (${gap} ms)`);
  }
  t.ok(a.sent.every((s) => s.data.equals(a.sent[0]!.data)), 'the same stage-1 datagram each time');
  t.equal(a.counters.get('handshake_manager.timed_out'), 1);
  t.equal(a.hm.pendingCount, 0, 'the pending handshake is gone');
});

t.test('both sides initiate at once: the higher VPN IP wins and exactly one tunnel results', async (t) => {
  const peers: Peer[] = [];
  const queue: Array<() => void> = [];
  // Hold every datagram until both stage 1s are in flight, then deliver in order.
  const { a, b } = pair((from, to, data) => queue.push(() => deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data)));
  peers.push(a, b);
  a.hm.start(b.vpnIp);
  b.hm.start(a.vpnIp);
  while (queue.length > 0) queue.shift()!();
  const ha = a.hostmap.get(b.vpnIp);
  const hb = b.hostmap.get(a.vpnIp);
  t.ok(ha && hb, 'one tunnel on each side');
  t.ok(ha!.sendKey.equals(hb!.recvKey), 'the same handshake on both sides');
  t.ok(ha!.initiatedLocally === false && hb!.initiatedLocally === true, "b's (higher IP) handshake won");
  t.ok(b.logs.some((l) => l.includes('Prevented a pending handshake race')), 'b refused the lower-IP handshake');
  t.equal(a.hm.pendingCount + b.hm.pendingCount, 0, 'nothing left pending');
});

t.test('a peer that comes up while our handshake to it is pending and wins the race gets our stage 1 at once, once', async (t) => {
  const peers: Peer[] = [];
  let aUp = false;
  let dropFromB = false;
  const { a, b } = pair((from, to, data) => {
    if (!aUp || (from.name === 'b' && dropFromB)) return;
    deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data);
  });
  peers.push(a, b);
  b.hm.start(a.vpnIp); // a is down: lost; b's next retry is a whole try_interval (1 s) away
  t.equal(b.sent.length, 1);
  aUp = true;
  dropFromB = true;
  a.hm.start(b.vpnIp); // a initiates too; b (higher IP) refuses it and answers with its own stage 1, which is lost
  t.equal(b.sent.length, 2, 'b sent its stage 1 again as soon as a initiated');
  t.ok(b.sent[1]!.data.equals(b.sent[0]!.data), 'the very same stage 1');
  t.same(b.sent[1]!.to, a.addr, 'to where a initiated from');
  deliver(b, a.addr, a.sent[0]!.data); // a's retransmission: no second early resend
  t.equal(b.sent.length, 2, 'once per pending handshake');
  t.equal(b.counters.get('messages.tx.handshake_ixpsk0'), 2);
  a.hm.stop();

  // Now with the early stage 1 delivered: the tunnel is up without waiting for any retry timer.
  const peers2: Peer[] = [];
  let up = false;
  const { a: c, b: d } = pair((from, to, data) => {
    if (up) deliver(peers2.find((p) => p.addr.ip === to.ip)!, from.addr, data);
  });
  peers2.push(c, d);
  d.hm.start(c.vpnIp);
  up = true;
  c.hm.start(d.vpnIp);
  const hc = c.hostmap.get(d.vpnIp);
  const hd = d.hostmap.get(c.vpnIp);
  t.ok(hc && hd, 'one tunnel on each side');
  t.ok(hd!.initiatedLocally && !hc!.initiatedLocally, "the higher IP's handshake made it");
  t.ok(hc!.sendKey.equals(hd!.recvKey), 'mirrored keys');
  t.equal(c.hm.pendingCount + d.hm.pendingCount, 0, 'nothing left pending');
  t.equal(d.sent.length, 2, 'd sent its stage 1 twice (lost, then at once on the race), no retry');
});

t.test('re-key: a fresh handshake to the host of an existing tunnel replaces it on both sides', async (t) => {
  const peers: Peer[] = [];
  const { a, b } = pair((from, to, data) => deliver(peers.find((p) => p.addr.ip === to.ip)!, from.addr, data));
  peers.push(a, b);
  a.hm.start(b.vpnIp);
  const oldA = a.hostmap.get(b.vpnIp)!;
  const oldB = b.hostmap.get(a.vpnIp)!;
  b.hm.rekey(b.hostmap.get(a.vpnIp)!); // b initiates this time (it was the responder), to a's current address
  const newA = a.hostmap.get(b.vpnIp)!;
  const newB = b.hostmap.get(a.vpnIp)!;
  t.not(newA.localIndex, oldA.localIndex, 'a has a new tunnel');
  t.not(newB.localIndex, oldB.localIndex, 'b has a new tunnel');
  t.notOk(a.hostmap.byLocalIndex(oldA.localIndex), 'a retired the old one');
  t.notOk(b.hostmap.byLocalIndex(oldB.localIndex), 'b retired the old one');
  t.ok(newA.sendKey.equals(newB.recvKey) && !newA.sendKey.equals(oldA.sendKey), 'new keys, mirrored');
  t.equal(newA.remoteIndex, newB.localIndex);
  t.equal(b.counters.get('handshake_manager.initiated'), 1);
  t.equal(a.hm.durations.snapshot().count, 1, 'one handshake each initiated and completed');
  t.equal(b.hm.durations.snapshot().count, 1);
});

t.test('the re-keyer starts a re-key once a tunnel passes the threshold, and again only after a while', async (t) => {
  const h = { vpnIp: 0xc0a83202, localIndex: 7 } as HostInfo;
  let counter = REKEY_AFTER_MESSAGES - 1;
  const rekeyed: HostInfo[] = [];
  const hostmap = { hosts: () => [h][Symbol.iterator](), sendCounter: () => counter } as unknown as HostMap;
  const rekeyer = new Rekeyer({ log: new Logger({ level: 'error', write: () => undefined }), hostmap, handshakes: { rekey: (x) => void rekeyed.push(x) } });
  rekeyer.tick(1000);
  t.equal(rekeyed.length, 0, 'below the threshold: nothing');
  counter = REKEY_AFTER_MESSAGES;
  rekeyer.tick(2000);
  t.same(rekeyed, [h], 'at the threshold: a re-key');
  rekeyer.tick(3000);
  t.equal(rekeyed.length, 1, 'not again while it runs');
  rekeyer.tick(2000 + 30_000);
  t.equal(rekeyed.length, 2, 'retried if the tunnel was not replaced');
});
