/**
 * MetaSender (src/supervisor/meta-sender.ts), Go's SendMessageToVpnIp: a meta packet goes at once on an installed
 * tunnel; without one it waits (bounded) while a handshake is started, and goes out in order when the tunnel comes
 * up, counted as hostinfo.cached_packets.sent (what overflows or expires: hostinfo.cached_packets.dropped).
 */
import t from 'tap';
import { TYPE_LIGHTHOUSE, TYPE_TEST, SUBTYPE_TEST_REQUEST } from '../../src/shared/protocol/header';
import type { CertVersion } from '../../src/shared/pki/certificate';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import type { HostInfo } from '../../src/supervisor/hostmap';
import { MAX_AGE_MS, MAX_PER_HOST, MetaSender } from '../../src/supervisor/meta-sender';

const A = parseIPv4('10.1.0.2')!;
const B = parseIPv4('10.1.0.3')!;
const C = parseIPv4('10.1.0.5')!;

/**
 * Only the VPN IP and the peer certificate's version (what a per-tunnel payload is written for) matter to the sender;
 * the tunnel object is handed back to sendOn untouched.
 */
const tunnel = (vpnIp: number, version: CertVersion = 1): HostInfo => ({ vpnIp, cert: { version } }) as unknown as HostInfo;

interface Wire {
  h: HostInfo;
  type: number;
  subtype: number;
  payload: string;
}

function fixture(maxHosts = 8) {
  const counters = new SupervisorCounters();
  const tunnels = new Map<number, HostInfo>();
  const wire: Wire[] = [];
  const handshakes: number[] = [];
  const clock = { now: 0 };
  let sendOk = true;
  const sender = new MetaSender({
    counters,
    maxHosts,
    tunnelTo: (v) => tunnels.get(v),
    startHandshake: (v) => void handshakes.push(v),
    sendOn: (h, type, subtype, payload) => {
      if (!sendOk) return false;
      wire.push({ h, type, subtype, payload: payload.toString() });
      return true;
    },
    now: () => clock.now,
  });
  const up = (v: number, version: CertVersion = 1): HostInfo => {
    const h = tunnel(v, version);
    tunnels.set(v, h);
    sender.tunnelUp(h);
    return h;
  };
  return {
    sender,
    counters,
    tunnels,
    wire,
    handshakes,
    clock,
    up,
    failSends: () => void (sendOk = false),
    count: () => Object.fromEntries(counters.entries()),
    lh: (v: number, text: string) => sender.send(v, TYPE_LIGHTHOUSE, 0, Buffer.from(text), 'messages.tx.lighthouse'),
  };
}

t.test('with a tunnel: sent at once, counted, no handshake', async (t) => {
  const f = fixture();
  const h = tunnel(A);
  f.tunnels.set(A, h);
  f.sender.send(A, TYPE_TEST, SUBTYPE_TEST_REQUEST, Buffer.alloc(0), 'messages.tx.test_request');
  f.lh(A, 'q');
  t.same(f.wire, [
    { h, type: TYPE_TEST, subtype: SUBTYPE_TEST_REQUEST, payload: '' },
    { h, type: TYPE_LIGHTHOUSE, subtype: 0, payload: 'q' },
  ]);
  t.same(f.handshakes, []);
  t.equal(f.sender.waitingCount, 0);
  t.same(f.count(), { 'messages.tx.test_request': 1, 'messages.tx.lighthouse': 1 });
});

t.test('with a tunnel whose counter space is spent: nothing sent, nothing counted as sent', async (t) => {
  const f = fixture();
  f.tunnels.set(A, tunnel(A));
  f.failSends();
  f.lh(A, 'q');
  t.same(f.count(), {});
});

t.test('without a tunnel: queued, a handshake started; flushed in order when the tunnel comes up', async (t) => {
  const f = fixture();
  f.lh(A, 'one');
  f.sender.send(A, TYPE_TEST, SUBTYPE_TEST_REQUEST, Buffer.alloc(0), 'messages.tx.test_request');
  f.lh(A, 'three');
  f.lh(B, 'for b');
  t.same(f.wire, [], 'nothing on the wire yet');
  t.same(f.handshakes, [A, A, A, B], 'each send asks for the handshake (the manager ignores a pending one)');
  t.equal(f.sender.waitingCount, 4);

  const h = f.up(A);
  t.same(f.wire, [
    { h, type: TYPE_LIGHTHOUSE, subtype: 0, payload: 'one' },
    { h, type: TYPE_TEST, subtype: SUBTYPE_TEST_REQUEST, payload: '' },
    { h, type: TYPE_LIGHTHOUSE, subtype: 0, payload: 'three' },
  ]);
  t.equal(f.sender.waitingCount, 1, "B's packet still waits");
  t.same(f.count(), { 'messages.tx.lighthouse': 2, 'messages.tx.test_request': 1, 'hostinfo.cached_packets.sent': 3 });

  f.sender.tunnelUp(h);
  t.equal(f.wire.length, 3, 'a second tunnelUp sends nothing again');
});

t.test('at most MAX_PER_HOST wait per host; the rest is counted as dropped', async (t) => {
  const f = fixture();
  for (let i = 0; i < MAX_PER_HOST + 3; i++) f.lh(A, `p${i}`);
  t.equal(f.sender.waitingCount, MAX_PER_HOST);
  t.same(f.count(), { 'hostinfo.cached_packets.dropped': 3 });
  f.up(A);
  t.same(
    f.wire.map((w) => w.payload),
    Array.from({ length: MAX_PER_HOST }, (_, i) => `p${i}`),
    'the first ones kept (Go keeps the store and drops the newcomer)',
  );
  t.equal(f.count()['hostinfo.cached_packets.sent'], MAX_PER_HOST);
});

t.test('packets older than MAX_AGE_MS are dropped, not sent', async (t) => {
  const f = fixture();
  f.lh(A, 'old');
  f.clock.now = MAX_AGE_MS;
  f.lh(A, 'still young'); // exactly MAX_AGE_MS: kept
  t.equal(f.sender.waitingCount, 2);
  f.clock.now = MAX_AGE_MS + 1;
  f.lh(A, 'new');
  t.equal(f.sender.waitingCount, 1, 'the expired batch went');
  t.same(f.count(), { 'hostinfo.cached_packets.dropped': 2 });
  f.up(A);
  t.same(
    f.wire.map((w) => w.payload),
    ['new'],
  );

  // A tunnel that comes up long after its packets were queued does not get them.
  f.clock.now = 100_000;
  f.lh(B, 'stale');
  f.clock.now = 100_000 + MAX_AGE_MS + 1;
  f.up(B);
  t.same(
    f.wire.map((w) => w.payload),
    ['new'],
  );
  t.equal(f.sender.waitingCount, 0);
  t.same(f.count(), { 'hostinfo.cached_packets.dropped': 3, 'messages.tx.lighthouse': 1, 'hostinfo.cached_packets.sent': 1 });
});

t.test('at most maxHosts hosts wait; the oldest host makes room, its packets counted as dropped', async (t) => {
  const f = fixture(2);
  f.lh(A, 'a1');
  f.lh(A, 'a2');
  f.lh(B, 'b');
  f.lh(C, 'c');
  t.equal(f.sender.waitingCount, 2);
  t.same(f.count(), { 'hostinfo.cached_packets.dropped': 2 });
  f.up(A);
  f.up(B);
  f.up(C);
  t.same(
    f.wire.map((w) => w.payload),
    ['b', 'c'],
  );
});

t.test('a flush whose send fails counts the packet as dropped, not sent', async (t) => {
  const f = fixture();
  f.lh(A, 'x');
  f.failSends();
  f.up(A);
  t.same(f.count(), { 'hostinfo.cached_packets.dropped': 1 });
});

t.test('a payload written per tunnel is written for the certificate version of the tunnel it goes over', async (t) => {
  const f = fixture();
  const asked: CertVersion[] = [];
  const perTunnel = (v: CertVersion): Buffer => {
    asked.push(v);
    return Buffer.from(`v${v}`);
  };
  f.tunnels.set(A, tunnel(A, 2));
  f.sender.send(A, TYPE_LIGHTHOUSE, 0, perTunnel, 'messages.tx.lighthouse');
  t.same(f.wire.map((w) => w.payload), ['v2'], 'an installed v2 tunnel: written at once for v2');
  // Without a tunnel nothing is written until one is up; then for that tunnel's version.
  f.sender.send(B, TYPE_LIGHTHOUSE, 0, perTunnel, 'messages.tx.lighthouse');
  f.sender.send(C, TYPE_LIGHTHOUSE, 0, perTunnel, 'messages.tx.lighthouse');
  t.same(asked, [2], 'nothing written while waiting');
  f.up(B, 1);
  f.up(C, 2);
  t.same(f.wire.map((w) => [w.h.vpnIp, w.payload]), [
    [A, 'v2'],
    [B, 'v1'],
    [C, 'v2'],
  ]);
  t.same(f.count(), { 'messages.tx.lighthouse': 3, 'hostinfo.cached_packets.sent': 2 });
});
