/**
 * RemoteList (src/supervisor/remote-list.ts) against Go 1.6.1's remote_list.go: what each owner told us, the
 * MaxRemotes cap, and the order a handshake or a punch tries addresses in (unlockedSort: preferred_ranges first, then
 * public before RFC 1918, then the address bytes, then the port; deduplicated; blocked addresses left out).
 */
import t from 'tap';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { formatEndpoint } from '../../src/shared/util/endpoint';
import { parseCidr, parseIPv4 } from '../../src/shared/util/ipv4';
import { MAX_REMOTES, RemoteList } from '../../src/supervisor/remote-list';

const ip = (s: string): number => parseIPv4(s)!;
const ep = (s: string): Endpoint => {
  const [host, port] = s.split(':');
  return { ip: ip(host!), port: Number(port) };
};
const eps = (...s: string[]): Endpoint[] => s.map(ep);
const show = (list: readonly Endpoint[]): string[] => list.map(formatEndpoint);
const net = (s: string) => parseCidr(s)!;

const HOST = ip('10.1.0.2');
const LH1 = ip('10.1.0.1');
const LH2 = ip('10.1.0.4');

t.test('ordering: public before RFC 1918, then address bytes (unsigned), then port; duplicates across owners once', async (t) => {
  const r = new RemoteList();
  r.learn(HOST, ep('10.0.0.5:4242'));
  r.setReported(HOST, eps('203.0.113.9:4242', '192.168.1.1:4242', '203.0.113.9:4000', '172.16.0.1:1', '8.8.8.8:53'), [], []);
  // Another owner repeats one address and adds the edges of 172.16.0.0/12.
  r.setReported(LH1, eps('203.0.113.9:4242', '172.31.255.255:9', '172.32.0.1:9', '10.0.0.5:4242'), [], []);
  t.same(show(r.addresses()), [
    '8.8.8.8:53',
    '172.32.0.1:9', // just outside 172.16.0.0/12: public
    '203.0.113.9:4000',
    '203.0.113.9:4242',
    '10.0.0.5:4242',
    '172.16.0.1:1',
    '172.31.255.255:9',
    '192.168.1.1:4242',
  ]);
});

t.test('preferred_ranges come first; inside them public still precedes private', async (t) => {
  const r = new RemoteList();
  r.setReported(HOST, eps('8.8.8.8:53', '192.168.1.1:4242', '10.0.0.5:4242', '198.51.100.1:4242', '192.168.1.0:9'), [], []);
  t.same(show(r.addresses([net('192.168.1.0/24'), net('198.51.100.0/24')])), [
    '198.51.100.1:4242',
    '192.168.1.0:9',
    '192.168.1.1:4242',
    '8.8.8.8:53',
    '10.0.0.5:4242',
  ]);
  t.same(show(r.addresses()), ['8.8.8.8:53', '198.51.100.1:4242', '10.0.0.5:4242', '192.168.1.0:9', '192.168.1.1:4242'], 'without preferred ranges');
});

t.test('blocked addresses are left out, learned or reported, by exact address and port', async (t) => {
  const r = new RemoteList();
  r.learn(HOST, ep('203.0.113.5:6000'));
  r.setReported(LH1, eps('203.0.113.9:4000', '203.0.113.9:4242', '203.0.113.5:6000'), [], []);
  r.block(ep('203.0.113.9:4000'));
  r.block(ep('203.0.113.5:6000'));
  r.block(ep('203.0.113.5:6000')); // twice: harmless
  t.same(show(r.addresses()), ['203.0.113.9:4242']);
  t.same(show(r.ownedBy(LH1)!.reported), ['203.0.113.9:4000', '203.0.113.9:4242', '203.0.113.5:6000'], 'the cache itself is kept (Go: CopyCache)');
});

t.test('setReported replaces the owner list and keeps at most MAX_REMOTES addresses and relays', async (t) => {
  t.equal(MAX_REMOTES, 10, "Go's MaxRemotes");
  const r = new RemoteList();
  const twelve = Array.from({ length: 12 }, (_, i) => ({ ip: ip(`198.51.100.${i + 1}`), port: 4242 }));
  const relays = Array.from({ length: 12 }, (_, i) => ip(`10.1.1.${i + 1}`));
  const v6 = Array.from({ length: 12 }, (_, i) => ({ hi: 0x20010db8n << 32n, lo: BigInt(i + 1), port: 4242 }));
  r.setReported(LH1, twelve, v6, relays);
  const c = r.ownedBy(LH1)!;
  t.same(show(c.reported), show(twelve.slice(0, 10)), 'the first 10, in order');
  t.equal(c.reported6.length, 10);
  t.same(c.relays, relays.slice(0, 10));
  t.same(show(r.addresses()), show(twelve.slice(0, 10)));

  r.setReported(LH1, eps('203.0.113.1:1'), [], [ip('10.1.1.1')]);
  t.same(show(r.ownedBy(LH1)!.reported), ['203.0.113.1:1'], 'replaced, not appended');
  t.same(r.ownedBy(LH1)!.reported6, []);
  t.same(show(r.addresses()), ['203.0.113.1:1']);
});

t.test('learn replaces the owner learned address; owners stay apart', async (t) => {
  const r = new RemoteList();
  r.learn(HOST, ep('203.0.113.5:6000'));
  r.learn(HOST, ep('203.0.113.6:6001'));
  r.setReported(LH1, eps('198.51.100.1:4242'), [], []);
  t.same(show([r.ownedBy(HOST)!.learned!]), ['203.0.113.6:6001']);
  t.equal(r.ownedBy(LH1)!.learned, undefined);
  t.same(show(r.addresses()), ['198.51.100.1:4242', '203.0.113.6:6001']);
  t.same([...r.owners().keys()].sort(), [LH1, HOST].sort());
  r.forget(LH1);
  t.same(show(r.addresses()), ['203.0.113.6:6001'], 'forget drops only that owner');
});

t.test('relays: every owner answer, deduplicated', async (t) => {
  const r = new RemoteList();
  r.setReported(LH1, [], [], [ip('10.1.0.9'), ip('10.1.0.8')]);
  r.setReported(LH2, [], [], [ip('10.1.0.9'), ip('10.1.0.7')]);
  t.same(r.relays().sort(), [ip('10.1.0.7'), ip('10.1.0.8'), ip('10.1.0.9')]);
});

t.test('prependStatic: first in the owner list, at most MAX_REMOTES kept (Go unlockedPrependV4)', async (t) => {
  const r = new RemoteList();
  const me = ip('10.1.0.2');
  r.setReported(me, eps('198.51.100.1:4242'), [], []);
  r.prependStatic(me, ep('192.0.2.1:4242'));
  t.same(show(r.ownedBy(me)!.reported), ['192.0.2.1:4242', '198.51.100.1:4242']);
  for (let i = 2; i <= 12; i++) r.prependStatic(me, ep(`192.0.2.${i}:4242`));
  const kept = r.ownedBy(me)!.reported;
  t.equal(kept.length, MAX_REMOTES, 'capped');
  t.same(show(kept.slice(0, 2)), ['192.0.2.12:4242', '192.0.2.11:4242'], 'the newest first');
});
