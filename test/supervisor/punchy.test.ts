/**
 * punchy.punch (src/supervisor/punchy.ts, Go's HostMap.Punchy, nebula-spec §5.6): each round sends one datagram
 * holding the single byte 0x01 to every known address of every host we have a tunnel to, counted as
 * messages.tx.punchy per datagram.
 */
import t from 'tap';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { formatEndpoint } from '../../src/shared/util/endpoint';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { PUNCH_INTERVAL_MS, Punchy } from '../../src/supervisor/punchy';

const ip = (s: string): number => parseIPv4(s)!;
const A = ip('10.1.0.2');
const B = ip('10.1.0.3');
const NO_TUNNEL = ip('10.1.0.5');

function fixture(tunnels: number[]) {
  const counters = new SupervisorCounters();
  const wire: Array<{ to: string; bytes: string }> = [];
  const known = new Map<number, Endpoint[]>([
    [A, [{ ip: ip('203.0.113.5'), port: 6000 }, { ip: ip('192.168.1.2'), port: 4242 }]],
    [B, [{ ip: ip('198.51.100.7'), port: 4242 }]],
    [NO_TUNNEL, [{ ip: ip('198.51.100.99'), port: 1 }]],
  ]);
  const punchy = new Punchy({
    counters,
    tunnelVpnIps: () => tunnels,
    addressesOf: (v) => known.get(v) ?? [],
    // Copied at send time: a sender reusing one buffer must not be able to change what was "sent".
    send: (payload, to) => void wire.push({ to: formatEndpoint(to), bytes: payload.toString('hex') }),
  });
  t.teardown(() => punchy.stop());
  return { punchy, counters, wire };
}

t.test('one 0x01 datagram per known address of each tunnelled host, counted', async (t) => {
  const f = fixture([A, B]);
  t.equal(f.punchy.punchAll(), 3);
  t.same(f.wire, [
    { to: '203.0.113.5:6000', bytes: '01' },
    { to: '192.168.1.2:4242', bytes: '01' },
    { to: '198.51.100.7:4242', bytes: '01' },
  ]);
  t.same(Object.fromEntries(f.counters.entries()), { 'messages.tx.punchy': 3 });
  t.notOk(
    f.wire.some((w) => w.to === '198.51.100.99:1'),
    'a host without a tunnel is not punched',
  );
});

t.test('no tunnels: nothing sent, nothing counted', async (t) => {
  const f = fixture([]);
  t.equal(f.punchy.punchAll(), 0);
  t.same(f.wire, []);
  t.same([...f.counters.entries()], []);
});

t.test('start punches at once (Go sends before its first tick), every 10 s after', async (t) => {
  t.equal(PUNCH_INTERVAL_MS, 10_000);
  const f = fixture([B]);
  f.punchy.start();
  t.same(f.wire, [{ to: '198.51.100.7:4242', bytes: '01' }]);
  f.punchy.stop();
  t.equal(f.counters.get('messages.tx.punchy'), 1);
});
