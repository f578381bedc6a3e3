/**
 * Relayed tunnels looking for a direct path (src/supervisor/direct-path.ts): each round probes exactly the tunnels
 * that are relayed, whose host has a known direct address, and that have no handshake already under way. Direct
 * tunnels are never probed (they have their path), nor hosts without an address (nothing to try), nor a host
 * with a pending handshake (probing would replace it).
 */
import t from 'tap';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { DirectPathProber, PROBE_INTERVAL_MS } from '../../src/supervisor/direct-path';
import type { HostInfo } from '../../src/supervisor/hostmap';

const ip = (s: string): number => parseIPv4(s)!;
const RELAY = ip('10.1.0.9');

/** The prober reads only `vpnIp` and `relay` of a tunnel. */
function tunnel(vpnIp: number, relayed: boolean): HostInfo {
  const partial: Pick<HostInfo, 'vpnIp' | 'relay'> = { vpnIp, ...(relayed ? { relay: { relayVpnIp: RELAY, remoteIndex: 7 } } : {}) };
  return partial as HostInfo;
}

const RELAYED_WITH_ADDR = ip('10.1.0.2');
const RELAYED_NO_ADDR = ip('10.1.0.3');
const RELAYED_PENDING = ip('10.1.0.4');
const DIRECT = ip('10.1.0.5');
const RELAYED_WITH_ADDR_2 = ip('10.1.0.6');

function fixture() {
  const hosts = [
    tunnel(RELAYED_WITH_ADDR, true),
    tunnel(RELAYED_NO_ADDR, true),
    tunnel(RELAYED_PENDING, true),
    tunnel(DIRECT, false),
    tunnel(RELAY, false),
    tunnel(RELAYED_WITH_ADDR_2, true),
  ];
  const withAddress = new Set([RELAYED_WITH_ADDR, RELAYED_PENDING, DIRECT, RELAY, RELAYED_WITH_ADDR_2]);
  const pending = new Set([RELAYED_PENDING]);
  const tried: number[] = [];
  const prober = new DirectPathProber({
    tunnels: () => hosts,
    hasDirectAddress: (v) => withAddress.has(v),
    isPending: (v) => pending.has(v),
    tryDirect: (v) => void tried.push(v),
  });
  t.teardown(() => prober.stop());
  return { hosts, withAddress, pending, tried, prober };
}

t.test('one round: only relayed tunnels with a direct address and no handshake under way', async (t) => {
  const f = fixture();
  t.same(f.prober.probe(), [RELAYED_WITH_ADDR, RELAYED_WITH_ADDR_2]);
  t.same(f.tried, [RELAYED_WITH_ADDR, RELAYED_WITH_ADDR_2], 'tryDirect called for exactly those');
});

t.test('the set follows the state: an address learned, a handshake finished, a tunnel gone direct', async (t) => {
  const f = fixture();
  f.withAddress.add(RELAYED_NO_ADDR);
  f.pending.clear();
  f.hosts[0] = tunnel(RELAYED_WITH_ADDR, false); // went direct
  t.same(f.prober.probe(), [RELAYED_NO_ADDR, RELAYED_PENDING, RELAYED_WITH_ADDR_2]);
});

t.test('no tunnels or none relayed: nothing probed', async (t) => {
  const prober = new DirectPathProber({ tunnels: () => [tunnel(DIRECT, false)], hasDirectAddress: () => true, isPending: () => false, tryDirect: () => t.fail('probed a direct tunnel') });
  t.same(prober.probe(), []);
  const empty = new DirectPathProber({ tunnels: () => [], hasDirectAddress: () => true, isPending: () => false, tryDirect: () => t.fail('probed nothing') });
  t.same(empty.probe(), []);
});

t.test('start probes every interval until stopped', async (t) => {
  t.equal(PROBE_INTERVAL_MS, 5000);
  const f = fixture();
  const ticks: Array<() => void> = [];
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  let cleared = 0;
  let interval = 0;
  const fakeTimer = { unref: () => fakeTimer } as unknown as NodeJS.Timeout;
  globalThis.setInterval = ((fn: () => void, ms: number) => {
    ticks.push(fn);
    interval = ms;
    return fakeTimer;
  }) as typeof setInterval;
  globalThis.clearInterval = ((h: NodeJS.Timeout) => {
    if (h === fakeTimer) cleared++;
  }) as typeof clearInterval;
  try {
    f.prober.start();
    t.equal(interval, PROBE_INTERVAL_MS);
    t.equal(ticks.length, 1);
    ticks[0]!();
    ticks[0]!();
    t.same(f.tried, [RELAYED_WITH_ADDR, RELAYED_WITH_ADDR_2, RELAYED_WITH_ADDR, RELAYED_WITH_ADDR_2], 'each tick is one round');
    f.prober.stop();
    t.equal(cleared, 1, 'stop clears the timer');
  } finally {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
  }
});
