import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CipherState, createInitiator, createResponder, noiseProtocolName, NoiseError } from '../../src/shared/noise';
import type { CipherName } from '../../src/shared/crypto';
import { prereqs, SHARED_DIR } from '../helpers/prereq';

// The cacophony vectors live outside the repository, next to it (../shared relative to the project root, or
// $NEBULA_TS_SHARED for a checkout elsewhere); they must not be copied in.
const vectorsFile = path.join(SHARED_DIR, 'testdata', 'noise-ix-vectors.json');

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

const cipherFor: Record<string, CipherName> = {
  Noise_IX_25519_AESGCM_SHA256: 'aes',
  Noise_IX_25519_ChaChaPoly_SHA256: 'chachapoly',
};

t.test('cacophony vectors', async (t) => {
  if (!prereqs(t, ['shared'])) return;
  const { vectors } = JSON.parse(readFileSync(vectorsFile, 'utf8')) as { vectors: Vector[] };
  t.same(vectors.map((v) => v.protocol_name).sort(), [noiseProtocolName('aes'), noiseProtocolName('chachapoly')], 'the vectors file covers both Nebula protocol names');

  for (const v of vectors) {
    t.test(`cacophony vector ${v.protocol_name}`, async (t) => {
      const cipher = cipherFor[v.protocol_name]!;
      t.ok(cipher, 'known protocol name');
      const init = createInitiator({
        cipher,
        staticPrivate: hex(v.init_static),
        prologue: hex(v.init_prologue),
        ephemeralPrivate: hex(v.init_ephemeral),
      });
      const resp = createResponder({
        cipher,
        staticPrivate: hex(v.resp_static),
        prologue: hex(v.resp_prologue),
        ephemeralPrivate: hex(v.resp_ephemeral),
      });
      t.equal(init.protocolName, v.protocol_name);

      const [m0, m1, ...transport] = v.messages;
      const msg1 = init.writeMessage1(hex(m0!.payload));
      t.equal(msg1.toString('hex'), m0!.ciphertext, 'message 1 byte-identical');
      const r1 = resp.readMessage1(msg1);
      t.equal(r1.payload.toString('hex'), m0!.payload);
      t.same(r1.peerStatic, init.localStatic, 'responder learns the initiator static key');

      const msg2 = resp.writeMessage2(hex(m1!.payload));
      t.equal(msg2.toString('hex'), m1!.ciphertext, 'message 2 byte-identical');
      const r2 = init.readMessage2(msg2);
      t.equal(r2.payload.toString('hex'), m1!.payload);
      t.same(r2.peerStatic, resp.localStatic, 'initiator learns the responder static key');

      t.ok(init.complete && resp.complete);
      t.equal(init.handshakeHash.toString('hex'), v.handshake_hash, 'initiator handshake hash');
      t.equal(resp.handshakeHash.toString('hex'), v.handshake_hash, 'responder handshake hash');

      const ik = init.split();
      const rk = resp.split();
      t.same(ik.sendKey, rk.recvKey, 'c1: initiator sends, responder receives');
      t.same(ik.recvKey, rk.sendKey, 'c2: responder sends, initiator receives');
      const [c1, c2] = init.splitRaw();
      t.same(ik.sendKey, c1);
      t.same(rk.sendKey, c2);

      // Transport messages alternate initiator → responder, responder → initiator, with Noise's own nonces.
      const is = init.splitCipherStates();
      const rs = resp.splitCipherStates();
      transport.forEach((m, i) => {
        const fromInitiator = i % 2 === 0;
        const sender = fromInitiator ? is.send : rs.send;
        const receiver = fromInitiator ? rs.recv : is.recv;
        const ct = sender.encryptWithAd(Buffer.alloc(0), hex(m.payload));
        t.equal(ct.toString('hex'), m.ciphertext, `transport message ${i + 2}`);
        t.equal(receiver.decryptWithAd(Buffer.alloc(0), ct).toString('hex'), m.payload);
      });
      t.equal(is.send.nonce, 2n);
    });
  }
});

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`${cipher}: round trip with empty prologue and random ephemerals`, async (t) => {
    const iKey = createInitiator({ cipher, staticPrivate: Buffer.alloc(32, 1) });
    const rKey = createResponder({ cipher, staticPrivate: Buffer.alloc(32, 2) });
    const msg1 = iKey.writeMessage1(Buffer.from('hello responder'));
    t.equal(msg1.length, 64 + 15, 'message 1 = e + s + clear payload');
    const r1 = rKey.readMessage1(msg1);
    t.equal(r1.payload.toString(), 'hello responder');
    const msg2 = rKey.writeMessage2(Buffer.from('hi'));
    t.equal(msg2.length, 32 + 48 + 2 + 16, 'message 2 = e + enc s + enc payload');
    const r2 = iKey.readMessage2(msg2);
    t.equal(r2.payload.toString(), 'hi');
    t.same(iKey.handshakeHash, rKey.handshakeHash);
    t.same(iKey.split().sendKey, rKey.split().recvKey);
    t.same(iKey.split().recvKey, rKey.split().sendKey);
    t.notSame(iKey.split().sendKey, iKey.split().recvKey);

    // Two handshakes with fresh ephemerals yield different keys.
    const i2 = createInitiator({ cipher, staticPrivate: Buffer.alloc(32, 1) });
    const r2s = createResponder({ cipher, staticPrivate: Buffer.alloc(32, 2) });
    r2s.readMessage1(i2.writeMessage1(Buffer.alloc(0)));
    i2.readMessage2(r2s.writeMessage2(Buffer.alloc(0)));
    t.notSame(i2.split().sendKey, iKey.split().sendKey);
  });
}

t.test('prologue and cipher mismatches fail at message 2 with NoiseError', async (t) => {
  const i = createInitiator({ cipher: 'aes', staticPrivate: Buffer.alloc(32, 1), prologue: Buffer.from('a') });
  const r = createResponder({ cipher: 'aes', staticPrivate: Buffer.alloc(32, 2), prologue: Buffer.from('b') });
  r.readMessage1(i.writeMessage1(Buffer.alloc(0)));
  t.throws(() => i.readMessage2(r.writeMessage2(Buffer.alloc(0))), NoiseError);

  const i2 = createInitiator({ cipher: 'aes', staticPrivate: Buffer.alloc(32, 1) });
  const r2 = createResponder({ cipher: 'chachapoly', staticPrivate: Buffer.alloc(32, 2) });
  r2.readMessage1(i2.writeMessage1(Buffer.alloc(0)));
  t.throws(() => i2.readMessage2(r2.writeMessage2(Buffer.alloc(0))), NoiseError);
});

t.test('bad messages throw NoiseError and leave the state usable', async (t) => {
  const i = createInitiator({ cipher: 'chachapoly', staticPrivate: Buffer.alloc(32, 1) });
  const r = createResponder({ cipher: 'chachapoly', staticPrivate: Buffer.alloc(32, 2) });
  const msg1 = i.writeMessage1(Buffer.from('x'));

  t.throws(() => r.readMessage1(msg1.subarray(0, 63)), NoiseError, 'short message 1');
  t.throws(() => i.readMessage1(msg1), NoiseError, 'wrong role');
  t.throws(() => r.writeMessage2(Buffer.alloc(0)), NoiseError, 'out of order');
  t.throws(() => r.split(), NoiseError, 'split before completion');

  r.readMessage1(msg1);
  const msg2 = r.writeMessage2(Buffer.from('payload'));
  t.throws(() => i.readMessage2(msg2.subarray(0, 95)), NoiseError, 'short message 2');
  for (const pos of [0, 40, msg2.length - 1]) {
    const bad = Buffer.from(msg2);
    bad[pos]! ^= 0x01;
    t.throws(() => i.readMessage2(bad), NoiseError, `corrupted byte ${pos}`);
  }
  // Failed reads rolled back: the genuine message still completes the handshake.
  t.equal(i.readMessage2(msg2).payload.toString(), 'payload');
  t.same(i.split().sendKey, r.split().recvKey);
  t.throws(() => i.readMessage2(msg2), NoiseError, 'no third message');
});

t.test('low-order peer ephemeral is rejected as a NoiseError', async (t) => {
  const r = createResponder({ cipher: 'aes', staticPrivate: Buffer.alloc(32, 2) });
  // An all-zero e and s are low-order points; message 1 itself carries no DH, so it parses...
  r.readMessage1(Buffer.alloc(64));
  // ...but the responder's DH with it must fail cleanly.
  t.throws(() => r.writeMessage2(Buffer.alloc(0)), NoiseError);
});

t.test('CipherState without a key passes data through; with a key rejects tampering', async (t) => {
  const cs = new CipherState('aes');
  t.same(cs.encryptWithAd(Buffer.alloc(0), Buffer.from('plain')), Buffer.from('plain'));
  const a = new CipherState('aes', Buffer.alloc(32, 7));
  const b = new CipherState('aes', Buffer.alloc(32, 7));
  const ct = a.encryptWithAd(Buffer.from('ad'), Buffer.from('secret'));
  const bad = Buffer.from(ct);
  bad[0]! ^= 1;
  t.throws(() => b.decryptWithAd(Buffer.from('ad'), bad), NoiseError);
  t.equal(b.nonce, 0n, 'nonce not advanced by a failure');
  t.equal(b.decryptWithAd(Buffer.from('ad'), ct).toString(), 'secret');
});
