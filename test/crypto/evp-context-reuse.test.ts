/**
 * The EVP backend keeps one keyed EVP_CIPHER_CTX per direction and per tunnel, and per packet only sets the IV
 * (and, when opening, the expected tag through DecryptInit_ex2's params). These tests fail if that reuse leaks
 * state between packets: a stale IV or tag, a context left unusable by a rejected packet, or one tunnel's
 * context touched by another's. The reference for every byte is node:crypto with a fresh context per packet.
 */
import t from 'tap';
import {
  aeadSeal,
  EvpPacketCipher,
  evpAvailable,
  makeNonce,
  TAG_LEN,
  type CipherName,
} from '../../src/shared/crypto';
import { evpBindings, type EvpBindings } from '../../src/shared/crypto/evp';
import { HEADER_LEN, TYPE_MESSAGE, writeHeader } from '../../src/shared/protocol/header';

const CIPHERS: CipherName[] = ['aes', 'chachapoly'];

/** A small deterministic PRNG (xorshift32), so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function bytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rand() & 0xff;
  return b;
}

function keyOf(seed: number): Buffer {
  return bytes(prng(seed), 32);
}

function header(counter: number | bigint, remoteIndex = 0x01020304): Buffer {
  const h = Buffer.alloc(HEADER_LEN);
  const c = BigInt(counter);
  writeHeader(h, 0, TYPE_MESSAGE, 0, remoteIndex, Number(c >> 32n), Number(c & 0xffffffffn));
  return h;
}

/** node:crypto's ciphertext || tag for one packet. */
function reference(cipher: CipherName, key: Buffer, counter: number | bigint, ad: Buffer, pt: Buffer): Buffer {
  return aeadSeal(cipher, key, makeNonce(cipher, counter), ad, pt);
}

/** Seals with EVP as the data path does: header (AD) then sealed payload in one datagram buffer. */
function evpSeal(c: EvpPacketCipher, counter: number | bigint, ad: Buffer, pt: Buffer): Buffer {
  const pkt = Buffer.alloc(ad.length + pt.length + TAG_LEN);
  ad.copy(pkt, 0);
  const n = c.encrypt(pkt, ad.length, pkt, 0, ad.length, pt, 0, pt.length, counter);
  if (n !== pt.length + TAG_LEN) throw new Error(`encrypt returned ${n}`);
  return pkt;
}

/** Opens `pkt` (AD of adLen bytes, then ciphertext || tag); the plaintext, or null when rejected. */
function evpOpen(c: EvpPacketCipher, counter: number | bigint, pkt: Buffer, adLen = HEADER_LEN): Buffer | null {
  const out = Buffer.alloc(pkt.length);
  const n = c.decrypt(out, 0, pkt, 0, adLen, pkt, adLen, pkt.length - adLen, counter);
  return n < 0 ? null : out.subarray(0, n);
}

t.test('EVP is available (these tests exercise it, not the node:crypto fallback)', async (t) => {
  t.ok(evpAvailable());
});

t.test('aes: known-answer vectors (McGrew-Viega GCM test cases 13 and 14: zero key, IV 0 = counter 0)', async (t) => {
  const c = new EvpPacketCipher('aes', Buffer.alloc(32));
  const empty = Buffer.alloc(0);
  const tc13 = Buffer.alloc(TAG_LEN);
  t.equal(c.encrypt(tc13, 0, empty, 0, 0, empty, 0, 0, 0), TAG_LEN);
  t.equal(tc13.toString('hex'), '530f8afbc74536b9a963b4f1c4cb738b');
  const tc14 = Buffer.alloc(16 + TAG_LEN);
  c.encrypt(tc14, 0, empty, 0, 0, Buffer.alloc(16), 0, 16, 0);
  t.equal(tc14.toString('hex'), 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919');
  const out = Buffer.alloc(16, 0xee);
  t.equal(c.decrypt(out, 0, empty, 0, 0, tc14, 0, tc14.length, 0), 16);
  t.same(out, Buffer.alloc(16));
  t.equal(c.decrypt(out, 0, empty, 0, 0, tc13, 0, TAG_LEN, 0), 0, 'empty plaintext with its tag');
  c.dispose();
});

for (const cipher of CIPHERS) {
  t.test(`${cipher}: known answers against node:crypto (lengths, AD sizes, counters)`, async (t) => {
    const rand = prng(cipher === 'aes' ? 11 : 12);
    const key = keyOf(rand());
    const enc = new EvpPacketCipher(cipher, key);
    const dec = new EvpPacketCipher(cipher, key);
    const counters: Array<number | bigint> = [
      ...[0, 1, 2, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1],
      ...[2n ** 63n, 2n ** 64n - 1n],
    ];
    // [AD length, payload length]: data packets, an empty AD, and a relay frame (all AD, empty payload).
    const shapes: Array<[number, number]> = [
      ...[[HEADER_LEN, 0], [HEADER_LEN, 1], [HEADER_LEN, 64], [HEADER_LEN, 1300]] as Array<[number, number]>,
      ...[[0, 33], [HEADER_LEN + 1350, 0]] as Array<[number, number]>,
    ];
    let n = 0;
    for (const counter of counters) {
      for (const [adLen, len] of shapes) {
        const ad = bytes(rand, adLen);
        const pt = bytes(rand, len);
        const pkt = evpSeal(enc, counter, ad, pt);
        const want = Buffer.concat([ad, reference(cipher, key, counter, ad, pt)]);
        const what = `counter ${counter} ad ${adLen} len ${len}`;
        if (!pkt.equals(want)) t.fail(`${what}: sealed bytes differ from node:crypto`);
        const got = evpOpen(dec, counter, want, adLen);
        if (got === null || !got.equals(pt)) t.fail(`${what}: node:crypto packet not opened`);
        else if (pkt.equals(want)) n++;
      }
    }
    t.equal(n, counters.length * shapes.length, 'every combination sealed identically and opened');
    enc.dispose();
    dec.dispose();
  });

  t.test(`${cipher}: 3000 consecutive packets through one context each way`, async (t) => {
    const rand = prng(cipher === 'aes' ? 21 : 22);
    const key = keyOf(rand());
    const enc = new EvpPacketCipher(cipher, key);
    const dec = new EvpPacketCipher(cipher, key);
    let sealedOk = 0;
    let openedOk = 0;
    let previous: { pkt: Buffer; counter: number } | undefined;
    const start = 2 ** 32 - 1500; // crosses the 32-bit boundary of the counter halfway
    for (let i = 0; i < 3000; i++) {
      const counter = start + i;
      const pt = bytes(rand, (i * 37) % 1400);
      const ad = header(counter);
      const pkt = evpSeal(enc, counter, ad, pt);
      if (pkt.equals(Buffer.concat([ad, reference(cipher, key, counter, ad, pt)]))) sealedOk++;
      const got = evpOpen(dec, counter, pkt);
      if (got !== null && got.equals(pt)) openedOk++;
      // The previous packet under this packet's counter must fail: the IV really changed per packet.
      if (previous && evpOpen(dec, counter, previous.pkt) !== null) {
        t.fail(`packet ${previous.counter} opened under counter ${counter}`);
      }
      previous = { pkt, counter };
    }
    t.equal(sealedOk, 3000, 'every sealed packet equals node:crypto');
    t.equal(openedOk, 3000, 'every packet opened');
    enc.dispose();
    dec.dispose();
  });

  t.test(`${cipher}: a rejected packet leaves the context usable, and each packet's own tag is checked`, async (t) => {
    const key = keyOf(cipher === 'aes' ? 31 : 32);
    const enc = new EvpPacketCipher(cipher, key);
    const dec = new EvpPacketCipher(cipher, key);
    const rand = prng(33);
    let rejected = 0;
    let accepted = 0;
    for (let i = 0; i < 200; i++) {
      const counter = 1000 + i;
      const pt = bytes(rand, 1 + (i % 120));
      const pkt = evpSeal(enc, counter, header(counter), pt);
      const bad = Buffer.from(pkt);
      const kind = i % 4;
      if (kind === 0) bad[bad.length - 1 - (i % TAG_LEN)]! ^= 0x01; // tag
      else if (kind === 1) bad[i % HEADER_LEN]! ^= 0x80; // AD (header)
      else if (kind === 2) bad[HEADER_LEN + (i % pt.length)]! ^= 0x04; // ciphertext
      if (kind === 3 ? evpOpen(dec, counter + 1, pkt) === null : evpOpen(dec, counter, bad) === null) rejected++;
      // The valid packet right after, in a buffer of its own at another offset: a tag pointer left over from
      // the rejected packet, or state from its failed Final, would make this fail.
      const shifted = Buffer.alloc(pkt.length + 37);
      pkt.copy(shifted, 37);
      const out = Buffer.alloc(pt.length);
      const ctLen = pkt.length - HEADER_LEN;
      const n = dec.decrypt(out, 0, shifted, 37, HEADER_LEN, shifted, 37 + HEADER_LEN, ctLen, counter);
      if (n === pt.length && out.equals(pt)) accepted++;
    }
    t.equal(rejected, 200, 'every tampered tag, AD, ciphertext and wrong counter rejected');
    t.equal(accepted, 200, 'every valid packet after a rejected one opened');
    enc.dispose();
    dec.dispose();
  });
}

t.test('interleaved seal and open on several tunnels, both ciphers, out-of-order opens', async (t) => {
  const rand = prng(41);
  // Per tunnel, as the data path has them: a send cipher on one side, a receive cipher on the other. Tunnel 3 also
  // uses one cipher object for both directions (both of its contexts live in one object).
  const tunnels = [0, 1, 2, 3].map((i) => {
    const cipher: CipherName = i % 2 === 0 ? 'aes' : 'chachapoly';
    const key = keyOf(100 + i);
    const send = new EvpPacketCipher(cipher, key);
    const recv = i === 3 ? send : new EvpPacketCipher(cipher, key);
    const queue: Array<{ counter: number; pkt: Buffer; pt: Buffer }> = [];
    return { cipher, key, send, recv, next: 1 + i * 1_000_000, queue };
  });
  let sealed = 0;
  let opened = 0;
  let mismatched = 0;
  for (let step = 0; step < 4000; step++) {
    const tu = tunnels[rand() % tunnels.length]!;
    if (tu.queue.length > 0 && rand() % 3 === 0) {
      // Open a queued packet, not necessarily the oldest (reordering on the wire).
      const [p] = tu.queue.splice(rand() % tu.queue.length, 1);
      const got = evpOpen(tu.recv, p!.counter, p!.pkt);
      if (got !== null && got.equals(p!.pt)) opened++;
      continue;
    }
    const counter = tu.next++;
    const pt = bytes(rand, rand() % 1400);
    const ad = header(counter, 0x10 + tunnels.indexOf(tu));
    const pkt = evpSeal(tu.send, counter, ad, pt);
    if (!pkt.equals(Buffer.concat([ad, reference(tu.cipher, tu.key, counter, ad, pt)]))) mismatched++;
    sealed++;
    tu.queue.push({ counter, pkt, pt });
  }
  for (const tu of tunnels) {
    for (const p of tu.queue) {
      const got = evpOpen(tu.recv, p.counter, p.pkt);
      if (got !== null && got.equals(p.pt)) opened++;
    }
    // A packet of this tunnel must not open on another tunnel's context (keys differ).
    const other = tunnels[(tunnels.indexOf(tu) + 2) % tunnels.length]!;
    const probe = evpSeal(tu.send, tu.next, header(tu.next), Buffer.from('probe'));
    t.equal(evpOpen(other.recv, tu.next, probe), null, `tunnel ${tunnels.indexOf(tu)}'s packet rejected elsewhere`);
  }
  for (const tu of tunnels) {
    tu.send.dispose();
    tu.recv.dispose();
  }
  t.equal(mismatched, 0, 'every sealed packet equals node:crypto');
  t.ok(sealed > 2000, `${sealed} packets sealed`);
  t.equal(opened, sealed, 'every sealed packet opened on its own tunnel');
});

/** The real bindings with every koffi-bound function counted. */
function countingBindings(real: EvpBindings): { evp: EvpBindings; calls: () => number } {
  let calls = 0;
  const counted = <A extends unknown[], R>(f: (...a: A) => R) => (...a: A): R => {
    calls++;
    return f(...a);
  };
  const evp: EvpBindings = {
    ctxNew: counted(real.ctxNew),
    ctxFree: counted(real.ctxFree),
    aes256Gcm: counted(real.aes256Gcm),
    chacha20Poly1305: counted(real.chacha20Poly1305),
    encryptInit: counted(real.encryptInit),
    decryptInit: counted(real.decryptInit),
    encryptUpdate: counted(real.encryptUpdate),
    decryptUpdate: counted(real.decryptUpdate),
    encryptFinal: counted(real.encryptFinal),
    decryptFinal: counted(real.decryptFinal),
    ctrl: counted(real.ctrl),
    address: counted(real.address),
    osslParam: real.osslParam,
  };
  return { evp, calls: () => calls };
}

for (const cipher of CIPHERS) {
  t.test(`${cipher}: koffi calls per packet (seal 5, open 4; an empty payload one fewer)`, async (t) => {
    const real = evpBindings();
    if (!real) throw new Error('EVP bindings unavailable');
    const { evp, calls } = countingBindings(real);
    const key = keyOf(51);
    const enc = new EvpPacketCipher(cipher, key, evp);
    const dec = new EvpPacketCipher(cipher, key, evp);
    const pt = Buffer.alloc(1300, 0x61);
    // Buffers and contexts are set up on first use (address look-ups, context creation): not per packet.
    const pkt = evpSeal(enc, 1, header(1), pt);
    t.ok(evpOpen(dec, 1, pkt));
    const wire = Buffer.alloc(pkt.length);
    const out = Buffer.alloc(pt.length);
    const empty = Buffer.alloc(0);
    const close = Buffer.alloc(HEADER_LEN + TAG_LEN);
    header(2).copy(wire);
    header(3).copy(close);
    enc.encrypt(wire, HEADER_LEN, wire, 0, HEADER_LEN, pt, 0, pt.length, 2);
    dec.decrypt(out, 0, wire, 0, HEADER_LEN, wire, HEADER_LEN, wire.length - HEADER_LEN, 2);
    enc.encrypt(close, HEADER_LEN, close, 0, HEADER_LEN, empty, 0, 0, 3);
    dec.decrypt(empty, 0, close, 0, HEADER_LEN, close, HEADER_LEN, TAG_LEN, 3);

    const measure = (f: () => number): { calls: number; result: number } => {
      const before = calls();
      const result = f();
      return { calls: calls() - before, result };
    };
    const sealData = (): number => enc.encrypt(wire, HEADER_LEN, wire, 0, HEADER_LEN, pt, 0, pt.length, 4);
    const openData = (): number => dec.decrypt(out, 0, wire, 0, HEADER_LEN, wire, HEADER_LEN, wire.length - HEADER_LEN, 4);
    const sealEmpty = (): number => enc.encrypt(close, HEADER_LEN, close, 0, HEADER_LEN, empty, 0, 0, 5);
    const openEmpty = (): number => dec.decrypt(empty, 0, close, 0, HEADER_LEN, close, HEADER_LEN, TAG_LEN, 5);
    t.same(measure(sealData), { calls: 5, result: pt.length + TAG_LEN }, 'seal');
    t.same(measure(openData), { calls: 4, result: pt.length }, 'open');
    t.same(out, pt);
    wire[wire.length - 1]! ^= 1;
    t.same(measure(openData), { calls: 4, result: -1 }, 'rejected open');
    t.same(measure(sealEmpty), { calls: 4, result: TAG_LEN }, 'seal, empty payload');
    t.same(measure(openEmpty), { calls: 3, result: 0 }, 'open, empty payload');
    enc.dispose();
    dec.dispose();
  });
}
