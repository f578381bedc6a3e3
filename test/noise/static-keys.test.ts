/**
 * Keys prepared once (issue 13): a node's static key pair is kept between handshakes, found by curve and key bytes,
 * so a new key (a reload) is used from its first handshake on and a buffer changed in place finds no stale pair; the
 * cache is bounded. Peer keys imported for several DHs give the DHs of the raw-key functions. Both curves.
 */
import t from 'tap';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createInitiator, createResponder, DH_25519, DH_P256, dhFor, NoiseError, StaticKeyCache, staticKeys, STATIC_KEY_CACHE_SIZE, type DHCurve } from '../../src/shared/noise';
import { generateP256KeyPair, generateX25519KeyPair, p256PublicFromPrivate, p256SharedSecret, x25519PublicFromPrivate, x25519SharedSecret } from '../../src/shared/pki';

const CURVES: DHCurve[] = ['CURVE25519', 'P256'];

function keyPair(curve: DHCurve): { publicKey: Buffer; privateKey: Buffer } {
  return curve === 'P256' ? generateP256KeyPair() : generateX25519KeyPair();
}

function publicOf(curve: DHCurve, priv: Buffer): Buffer {
  return curve === 'P256' ? p256PublicFromPrivate(priv) : x25519PublicFromPrivate(priv);
}

function sharedSecret(curve: DHCurve, priv: Buffer, pub: Buffer): Buffer {
  return curve === 'P256' ? p256SharedSecret(priv, pub) : x25519SharedSecret(priv, pub);
}

for (const curve of CURVES) {
  t.test(`${curve}: one key pair per key, a new one for new bytes`, async (t) => {
    const cache = new StaticKeyCache();
    const a = keyPair(curve);
    const pair = cache.get(curve, a.privateKey);
    t.same(pair.publicRaw, a.publicKey, 'the public key of the private key');
    t.equal(cache.get(curve, Buffer.from(a.privateKey)), pair, 'the same bytes in another buffer: the same pair');
    t.equal(cache.size, 1);

    const b = keyPair(curve);
    const swapped = Buffer.from(a.privateKey);
    t.equal(cache.get(curve, swapped), pair);
    b.privateKey.copy(swapped); // the key buffer rewritten in place (a reload reading into it)
    const next = cache.get(curve, swapped);
    t.not(next, pair);
    t.same(next.publicRaw, b.publicKey, 'the new key, not the remembered one');
    t.same(cache.get(curve, a.privateKey).publicRaw, a.publicKey, 'the old key still gives its own pair');
  });

  t.test(`${curve}: a responder whose key is swapped answers with the new key from the next handshake on`, async (t) => {
    const initiatorKey = keyPair(curve);
    const handshake = (responderPrivate: Buffer): { peerStatic: Buffer; keysMatch: boolean } => {
      const initiator = createInitiator({ cipher: 'aes', staticPrivate: initiatorKey.privateKey, curve });
      const responder = createResponder({ cipher: 'aes', staticPrivate: responderPrivate, curve });
      responder.readMessage1(initiator.writeMessage1(Buffer.from('hello')));
      const { peerStatic } = initiator.readMessage2(responder.writeMessage2(Buffer.from('hi')));
      const [i, r] = [initiator.split(), responder.split()];
      return { peerStatic, keysMatch: i.sendKey.equals(r.recvKey) && i.recvKey.equals(r.sendKey) };
    };
    const old = keyPair(curve);
    const fresh = keyPair(curve);
    const running = Buffer.from(old.privateKey); // the PKI's key buffer
    t.same(handshake(running), { peerStatic: old.publicKey, keysMatch: true });
    t.same(handshake(running), { peerStatic: old.publicKey, keysMatch: true }, 'again, from the kept pair');
    t.same(handshake(fresh.privateKey), { peerStatic: fresh.publicKey, keysMatch: true }, 'a reloaded PKI: new buffer');
    fresh.privateKey.copy(running);
    t.same(handshake(running), { peerStatic: fresh.publicKey, keysMatch: true }, 'the same buffer, rewritten');
  });

  t.test(`${curve}: a peer key imported once serves several DHs, each the raw-key DH`, async (t) => {
    const dh = dhFor(curve);
    const mine = keyPair(curve);
    const peer = keyPair(curve);
    const pair = dh.fromPrivate(mine.privateKey);
    const peerKey = dh.publicKey(peer.publicKey);
    const expected = sharedSecret(curve, mine.privateKey, peer.publicKey);
    t.same(pair.dh(peerKey), expected);
    t.same(pair.dh(peerKey), expected, 'the second DH with the imported key');
    t.equal(dh.generate().dh(peerKey).length, 32);
    const eph = dh.generate();
    t.same(eph.publicRaw, publicOf(curve, eph.privateRaw), 'a generated pair: raw halves that belong together');
    t.same(eph.dh(peerKey), sharedSecret(curve, eph.privateRaw, peer.publicKey));
  });
}

t.test('a key is prepared per curve: the same bytes on 25519 and P256 are two pairs', async (t) => {
  const cache = new StaticKeyCache();
  const raw = generateP256KeyPair().privateKey; // a valid scalar for both curves
  const x = cache.get('CURVE25519', raw);
  const p = cache.get('P256', raw);
  t.equal(x.publicRaw.length, 32);
  t.equal(p.publicRaw.length, 65);
  t.equal(cache.size, 2);
});

t.test('bounded: the least recently used key is dropped', async (t) => {
  const cache = new StaticKeyCache(2);
  const [k1, k2, k3] = [0, 1, 2].map(() => generateX25519KeyPair().privateKey);
  const p1 = cache.get('CURVE25519', k1!);
  const p2 = cache.get('CURVE25519', k2!);
  t.equal(cache.get('CURVE25519', k1!), p1, 'k1 used again: now the most recent');
  cache.get('CURVE25519', k3!);
  t.equal(cache.size, 2);
  t.equal(cache.get('CURVE25519', k1!), p1, 'k1 kept');
  t.not(cache.get('CURVE25519', k2!), p2, 'k2 was dropped: prepared anew');
  t.throws(() => new StaticKeyCache(0), RangeError);

  staticKeys.clear();
  for (let i = 0; i < STATIC_KEY_CACHE_SIZE + 3; i++) createResponder({ cipher: 'aes', staticPrivate: generateX25519KeyPair().privateKey });
  t.equal(staticKeys.size, STATIC_KEY_CACHE_SIZE, 'the process-wide cache too');
});

t.test('hostile peer keys still fail as NoiseError', async (t) => {
  const x = DH_25519.generate();
  t.throws(() => x.dh(DH_25519.publicKey(Buffer.alloc(32))), NoiseError, 'X25519 low-order point');
  t.throws(() => x.dh(DH_25519.publicKey(Buffer.alloc(31, 9))), NoiseError, 'X25519 key of the wrong size');
  const p = DH_P256.generate();
  const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]);
  t.throws(() => p.dh(DH_P256.publicKey(offCurve)), NoiseError, 'P256 point not on the curve');
  t.throws(() => p.dh(DH_P256.publicKey(Buffer.alloc(33, 2))), NoiseError, 'P256 compressed point');
  t.throws(() => DH_P256.fromPrivate(Buffer.alloc(32)), NoiseError, 'P256 zero scalar');
});

t.test('ephemeral keys: never exported as JWK; thousands generated in a row, none hangs the process', async (t) => {
  // Exporting a freshly generated key as JWK deadlocks Node 20 when a GC frees its generation job meanwhile (dh.ts):
  // a loop of that hangs after some thousands of keys (when depends on the GC). So: no JWK export at all (checked
  // directly), and a long run of generations that would likely hang (a timeout) if one crept back in.
  const formats: string[] = [];
  // Public and private KeyObjects each have their own export(): watch both.
  const sample = generateKeyPairSync('x25519');
  const prototypes = [Object.getPrototypeOf(sample.publicKey), Object.getPrototypeOf(sample.privateKey)] as Array<{ export: KeyObject['export'] }>;
  const realExports = prototypes.map((p) => p.export);
  prototypes.forEach((p, i) => {
    p.export = function (this: KeyObject, options?: Parameters<KeyObject['export']>[0]) {
      formats.push(String((options as { format?: string } | undefined)?.format));
      return realExports[i]!.call(this, options as never);
    } as KeyObject['export'];
  });
  try {
    const e = DH_25519.generate();
    e.dh(DH_25519.publicKey(generateX25519KeyPair().publicKey));
    createResponder({ cipher: 'aes', staticPrivate: generateX25519KeyPair().privateKey });
  } finally {
    prototypes.forEach((p, i) => (p.export = realExports[i]!));
  }
  t.ok(formats.length > 0, `exports seen: ${formats.join(',')}`);
  t.notOk(formats.includes('jwk'), 'no JWK export');

  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(DH_25519.generate().publicRaw.toString('hex'));
  t.equal(seen.size, 10_000, 'distinct public keys');
});
