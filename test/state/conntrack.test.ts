/**
 * The shared conntrack table: single-process semantics, and several processes writing and reading one table at once
 * (routines share it: the reply to a flow one routine let out may arrive on another) without ever seeing a torn
 * entry, i.e. a key with another entry's rules version or direction.
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createRegion } from '../../src/shared/shm/region';
import { ConntrackTable, conntrackEntries, releaseConntrackOwner, type FlowKey } from '../../src/shared/state/conntrack';
import { CONNTRACK_WORDS } from '../../src/shared/state/layout';

const flow = (i: number): FlowKey => ({
  version: 4,
  localIp: 0x0a000001,
  remoteIp: 0x0a000100 + i,
  localPort: 80,
  remotePort: 40000 + i,
  proto: 6,
  fragment: false,
  local6: new Uint32Array(4),
  remote6: new Uint32Array(4),
});
/** An IPv6 flow between fd00::1 and fd00::100+i whose last words, ports and protocol equal flow(i)'s. */
const flow6 = (i: number, remotePrefix = 0xfd000000): FlowKey => ({
  ...flow(i),
  version: 6,
  local6: Uint32Array.of(0xfd000000, 0, 0, 0x0a000001),
  remote6: Uint32Array.of(remotePrefix, 0, 0, 0x0a000100 + i),
});

t.test('insert, lookup, refresh, expiry and remove', async (t) => {
  const table = new ConntrackTable(new Int32Array(64 * CONNTRACK_WORDS), 64);
  t.equal(table.lookup(flow(1), 100), -1, 'empty');
  table.insert(flow(1), true, 7, 200, 100);
  const e = table.lookup(flow(1), 100);
  t.ok(e >= 0);
  t.equal(table.foundVersion, 7);
  t.equal(table.foundIncoming, true);
  t.equal(table.lookup({ ...flow(1), fragment: true }, 100), -1, 'the fragment flag is part of the key');
  table.refresh(e, flow(1), 300, 8);
  t.equal(table.lookup(flow(1), 250), e, 'refreshed expiry');
  t.equal(table.foundVersion, 8, 'and re-stamped version');
  t.equal(table.lookup(flow(1), 301), -1, 'expired');
  table.insert(flow(2), false, 1, 500, 100);
  const e2 = table.lookup(flow(2), 100);
  table.remove(e2, flow(3));
  t.equal(table.lookup(flow(2), 100), e2, 'remove with another key does nothing (the slot was reused)');
  table.remove(e2, flow(2));
  t.equal(table.lookup(flow(2), 100), -1, 'removed');
  t.equal(table.count(100), 1, 'flow 1 is still live at t=100');
  t.equal(table.count(301), 0, 'and expired at t=301');
});

t.test('IPv6 flows: keyed on both full addresses, the family part of the key', async (t) => {
  const words = new Int32Array(64 * CONNTRACK_WORDS);
  const table = new ConntrackTable(words, 64);
  const e6 = table.insert(flow6(1), true, 5, 200, 100);
  t.ok(e6 >= 0);
  t.equal(table.lookup(flow6(1), 100), e6, 'found by an equal key (other arrays, same words)');
  t.equal(table.foundVersion, 5);
  t.equal(table.foundIncoming, true);
  t.equal(table.lookup(flow(1), 100), -1, 'the IPv4 flow with the same last words, ports and protocol is another flow');
  t.equal(table.lookup(flow6(1, 0xfd000001), 100), -1, 'another remote prefix is another flow');
  for (let w = 0; w < 3; w++) {
    const other = flow6(1);
    other.local6[w] ^= 1;
    t.equal(table.lookup(other, 100), -1, `local word ${w} is part of the key`);
    const other2 = flow6(1);
    other2.remote6[w] ^= 0x80000000;
    t.equal(table.lookup(other2, 100), -1, `remote word ${w} is part of the key`);
  }
  const e4 = table.insert(flow(1), false, 9, 300, 100);
  t.not(e4, e6, 'the IPv4 twin gets an entry of its own');
  t.equal(table.lookup(flow(1), 100), e4);
  t.equal(table.foundVersion, 9, 'with its own companions');
  t.equal(table.foundIncoming, false);
  t.equal(table.lookup(flow6(1), 100), e6, 'and the IPv6 entry is untouched');
  t.equal(table.foundVersion, 5);
  table.refresh(e6, flow6(1), 400, 6);
  t.equal(table.lookup(flow6(1), 350), e6, 'refreshed');
  t.equal(table.foundVersion, 6);
  t.equal(table.lookup(flow(1), 350), -1, 'the IPv4 twin was not refreshed with it');
  table.remove(e6, flow(1));
  t.equal(table.lookup(flow6(1), 100), e6, 'remove with the IPv4 twin\'s key leaves the IPv6 entry');
  table.remove(e6, flow6(1));
  t.equal(table.lookup(flow6(1), 100), -1, 'removed');

  table.insert(flow6(2), false, 3, 500, 100);
  table.insert({ ...flow6(3), proto: 58, localPort: 0, remotePort: 0x1234 }, true, 3, 500, 100);
  const listed = conntrackEntries(words, 64, 100, 10);
  const v6 = listed.filter((e) => e.version === 6).map((e) => ({ local: [...e.local6], remote: [...e.remote6], proto: e.proto, remotePort: e.remotePort }));
  t.same(
    v6.sort((a, b) => a.remote[3]! - b.remote[3]!),
    [
      { local: [0xfd000000, 0, 0, 0x0a000001], remote: [0xfd000000, 0, 0, 0x0a000102], proto: 6, remotePort: 40002 },
      { local: [0xfd000000, 0, 0, 0x0a000001], remote: [0xfd000000, 0, 0, 0x0a000103], proto: 58, remotePort: 0x1234 },
    ],
    'the listing carries both IPv6 addresses',
  );
  const v4 = listed.filter((e) => e.version === 4);
  t.equal(v4.length, 1, 'and the IPv4 entry as IPv4');
  t.same([...v4[0]!.local6, ...v4[0]!.remote6], [0, 0, 0, 0, 0, 0, 0, 0], 'without IPv6 words');
});

t.test('a full table evicts the soonest-expiring entry in the probe window', async (t) => {
  const table = new ConntrackTable(new Int32Array(4 * CONNTRACK_WORDS), 4);
  for (let i = 0; i < 4; i++) table.insert(flow(i), false, 1, 1000 + i, 100);
  t.equal(table.count(100), 4);
  table.insert(flow(9), false, 1, 5000, 100);
  t.ok(table.lookup(flow(9), 100) >= 0, 'the new flow is in');
  t.equal(table.lookup(flow(0), 100), -1, 'the soonest-expiring one was evicted');
  t.equal(table.count(100), 4);
});

t.test('an entry left mid-write by a dead owner is deleted and freed by releaseConntrackOwner', async (t) => {
  const words = new Int32Array(8 * CONNTRACK_WORDS);
  const a = new ConntrackTable(words, 8, 3);
  const e = a.insert(flow(1), false, 1, 500, 100);
  // Simulate routine 2 (owner 3) killed inside a write: its owner id is left in the entry's seqlock word.
  Atomics.or(words, e * CONNTRACK_WORDS + 7, 3);
  t.equal(a.lookup(flow(1), 100), -1, 'an entry being written is not trusted');
  t.equal(releaseConntrackOwner(words, 8, 2), 0, 'another owner frees nothing');
  t.equal(releaseConntrackOwner(words, 8, 3), 1, 'the dead owner\'s entry is freed');
  t.equal(a.lookup(flow(1), 100), -1, 'and deleted (it may be torn)');
  a.insert(flow(1), true, 2, 500, 100);
  t.ok(a.lookup(flow(1), 100) >= 0, 'the slot is writable again');
});

t.test('two processes hammering one small shared table never see a torn entry', async (t) => {
  const capacity = 64;
  const bytes = 64 + capacity * CONNTRACK_WORDS * 4;
  const region = createRegion(bytes);
  const iterations = 400_000;
  const results = await Promise.all(
    [1, 2].map(
      (seed) =>
        new Promise<{ ops: number; hits: number; torn: number }>((resolve, reject) => {
          // fork() reuses this process's execArgv (tap's TS loader), so the fixture runs from source.
          const child = fork(join(__dirname, 'fixtures', 'conntrack-hammer.ts'), [String(region.size), String(capacity), String(iterations), String(seed * 7919)], {
            stdio: ['ignore', 'inherit', 'inherit', region.fd, 'ipc'],
          });
          let result: { ops: number; hits: number; torn: number } | undefined;
          child.on('message', (m) => (result = m as typeof result));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`hammer exited with ${code}`))));
        }),
    ),
  );
  for (const r of results) {
    t.equal(r.ops, iterations);
    t.ok(r.hits > iterations / 10, `lookups hit often enough to mean something (${r.hits})`);
    t.equal(r.torn, 0, `no torn entry seen (${r.torn} of ${r.hits} hits)`);
  }
});

t.test('a reader never misses an entry because another process is refreshing it at that moment', async (t) => {
  const capacity = 64;
  const region = createRegion(capacity * CONNTRACK_WORDS * 4);
  const words = new Int32Array(region.buffer);
  const table = new ConntrackTable(words, capacity, 1);
  const entry = table.insert(flow(1), false, 7, 1000, 100);
  const kid = fork(join(__dirname, 'fixtures', 'conntrack-refresher.ts'), [String(region.size), String(capacity), String(entry), '1000000'], {
    stdio: ['ignore', 'inherit', 'inherit', region.fd, 'ipc'],
  });
  let done = false;
  const finished = new Promise<void>((resolve, reject) => {
    kid.on('message', (m: { done?: boolean }) => {
      if (m.done) done = true;
    });
    kid.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`refresher exited with ${code}`))));
  });
  await new Promise<void>((resolve) => kid.once('message', () => resolve())); // started
  let lookups = 0;
  let misses = 0;
  let contended = 0;
  // Look up while the child refreshes (bounded: the child stops after its iterations; we yield so its IPC arrives).
  while (!done && lookups < 20_000_000) {
    for (let i = 0; i < 10_000; i++) {
      const seq = Atomics.load(words, entry * CONNTRACK_WORDS + 7);
      if ((seq & 0xffff) !== 0) contended++;
      if (table.lookup(flow(1), 100) !== entry) misses++;
      lookups++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  t.ok(contended > 0, `the entry was caught mid-write ${contended} times in ${lookups} lookups (the race was exercised)`);
  t.equal(misses, 0, 'and no lookup missed it');
});
