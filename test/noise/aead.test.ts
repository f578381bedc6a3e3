import t from 'tap';
import { randomBytes } from 'node:crypto';
import {
  createPacketCipher,
  EvpPacketCipher,
  evpAvailable,
  makeNonce,
  NodePacketCipher,
  TAG_LEN,
  type CipherName,
  type PacketCipher,
} from '../../src/shared/crypto';
import { HEADER_LEN, TYPE_MESSAGE, writeHeader } from '../../src/shared/protocol/header';

const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const header = Buffer.from('11000000112233440000000000000003', 'hex');

// nebula-spec §2.3 derived vectors: key 00..1f, data header to index 0x11223344 counter 3, plaintext "hello".
const SPEC_VECTORS: Record<CipherName, { nonce: string; packet: string }> = {
  aes: {
    nonce: '000000000000000000000003',
    packet: '11000000112233440000000000000003654162df390e2166333f44faa0ef776a8ca2a6cd75',
  },
  chachapoly: {
    nonce: '000000000300000000000000',
    packet: '110000001122334400000000000000033f16181640808dab919733b13e0221249d7f0583ec',
  },
};

t.test('EVP is reachable through koffi in this node binary', async (t) => {
  t.ok(evpAvailable(), 'koffi.load(null) exposes the OpenSSL EVP symbols');
  t.equal(createPacketCipher('aes', key).impl, 'evp', 'factory prefers EVP');
  t.equal(createPacketCipher('aes', key, 'node').impl, 'node');
});

function impls(cipher: CipherName): PacketCipher[] {
  return [new NodePacketCipher(cipher, key), new EvpPacketCipher(cipher, key)];
}

function seal(c: PacketCipher, hdr: Buffer, pt: Buffer, counter: number | bigint): Buffer {
  const pkt = Buffer.alloc(HEADER_LEN + pt.length + TAG_LEN);
  hdr.copy(pkt, 0);
  const n = c.encrypt(pkt, HEADER_LEN, pkt, 0, HEADER_LEN, pt, 0, pt.length, counter);
  t.equal(n, pt.length + TAG_LEN);
  return pkt;
}

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`${cipher}: nonce byte order`, async (t) => {
    t.equal(makeNonce(cipher, 3).toString('hex'), SPEC_VECTORS[cipher].nonce);
    t.same(makeNonce(cipher, 0x0102030405n), makeNonce(cipher, 0x0102030405));
    t.equal(
      makeNonce(cipher, 0xfffffffffffffffen).toString('hex'),
      cipher === 'aes' ? '00000000fffffffffffffffe' : '00000000feffffffffffffff',
    );
  });

  t.test(`${cipher}: spec §2.3 packet from both implementations`, async (t) => {
    for (const c of impls(cipher)) {
      t.equal(seal(c, header, Buffer.from('hello'), 3).toString('hex'), SPEC_VECTORS[cipher].packet, c.impl);
      t.equal(seal(c, header, Buffer.from('hello'), 3n).toString('hex'), SPEC_VECTORS[cipher].packet, `${c.impl} bigint`);
      const pkt = Buffer.from(SPEC_VECTORS[cipher].packet, 'hex');
      const out = Buffer.alloc(64);
      const n = c.decrypt(out, 7, pkt, 0, HEADER_LEN, pkt, HEADER_LEN, pkt.length - HEADER_LEN, 3);
      t.equal(n, 5);
      t.equal(out.subarray(7, 12).toString(), 'hello', `${c.impl} decrypts`);
      c.dispose();
    }
  });

  t.test(`${cipher}: node and EVP are byte-identical and interoperate`, async (t) => {
    const [a, b] = impls(cipher) as [PacketCipher, PacketCipher];
    for (const len of [0, 1, 15, 16, 17, 100, 1300, 9001]) {
      const pt = randomBytes(len);
      const counter = 3 + len * 7919;
      const hdr = Buffer.alloc(HEADER_LEN);
      writeHeader(hdr, 0, TYPE_MESSAGE, 0, 0xdeadbeef, 0, counter);
      const pa = seal(a, hdr, pt, counter);
      const pb = seal(b, hdr, pt, counter);
      t.same(pa, pb, `len ${len}`);
      for (const [dec, pkt] of [
        [a, pb],
        [b, pa],
      ] as const) {
        const out = Buffer.alloc(len + 1);
        t.equal(dec.decrypt(out, 1, pkt, 0, HEADER_LEN, pkt, HEADER_LEN, pkt.length - HEADER_LEN, counter), len);
        t.same(out.subarray(1), pt);
      }
    }
    a.dispose();
    b.dispose();
  });

  t.test(`${cipher}: tampering, wrong counter, wrong AD and short input are rejected`, async (t) => {
    for (const c of impls(cipher)) {
      const pkt = seal(c, header, Buffer.from('hello world'), 3);
      const len = pkt.length - HEADER_LEN;
      const out = Buffer.alloc(64);
      const dec = (p: Buffer, counter: number, l = len): number => c.decrypt(out, 0, p, 0, HEADER_LEN, p, HEADER_LEN, l, counter);
      for (const pos of [0, 8, 15, HEADER_LEN, HEADER_LEN + 5, pkt.length - 1]) {
        const bad = Buffer.from(pkt);
        bad[pos]! ^= 0x80;
        t.equal(dec(bad, 3), -1, `${c.impl}: flipped byte ${pos}`);
      }
      t.equal(dec(pkt, 4), -1, `${c.impl}: wrong counter`);
      t.equal(dec(pkt, 3, TAG_LEN - 1), -1, `${c.impl}: shorter than a tag`);
      t.equal(dec(pkt, 3, len - 1), -1, `${c.impl}: truncated`);
      t.equal(dec(pkt, 3), 11, `${c.impl}: still decrypts after failures (context reusable)`);
      t.equal(out.subarray(0, 11).toString(), 'hello world');
      c.dispose();
    }
  });

  t.test(`${cipher}: in-place encrypt/decrypt and empty payloads`, async (t) => {
    for (const c of impls(cipher)) {
      const pkt = Buffer.alloc(HEADER_LEN + 32 + TAG_LEN);
      header.copy(pkt);
      pkt.write('in place payload, 32 bytes long!', HEADER_LEN);
      c.encrypt(pkt, HEADER_LEN, pkt, 0, HEADER_LEN, pkt, HEADER_LEN, 32, 3);
      t.equal(pkt.subarray(0, HEADER_LEN + 32 + TAG_LEN).toString('hex'), seal(c, header, Buffer.from('in place payload, 32 bytes long!'), 3).toString('hex'));
      t.equal(c.decrypt(pkt, HEADER_LEN, pkt, 0, HEADER_LEN, pkt, HEADER_LEN, 32 + TAG_LEN, 3), 32);
      t.equal(pkt.subarray(HEADER_LEN, HEADER_LEN + 32).toString(), 'in place payload, 32 bytes long!');

      // closeTunnel: empty plaintext, header + tag only.
      const close = seal(c, header, Buffer.alloc(0), 3);
      t.equal(close.length, HEADER_LEN + TAG_LEN);
      t.equal(c.decrypt(Buffer.alloc(0), 0, close, 0, HEADER_LEN, close, HEADER_LEN, TAG_LEN, 3), 0);
      c.dispose();
    }
  });
}

t.test('EVP rejects out-of-range buffers instead of writing past them', async (t) => {
  const c = new EvpPacketCipher('aes', key);
  const small = Buffer.alloc(20);
  t.throws(() => c.encrypt(small, 0, header, 0, 16, Buffer.alloc(10), 0, 10, 3), RangeError);
  t.throws(() => c.encrypt(Buffer.alloc(64), 0, header, 0, 17, Buffer.alloc(10), 0, 10, 3), RangeError);
  t.throws(() => c.decrypt(small, 0, header, 0, 16, Buffer.alloc(40), 0, 40, 3), RangeError);
  t.throws(() => c.encrypt(Buffer.alloc(64), -1, header, 0, 16, Buffer.alloc(10), 0, 10, 3), RangeError);
  c.dispose();
  c.dispose();
  t.throws(() => c.encrypt(Buffer.alloc(64), 0, header, 0, 16, Buffer.alloc(10), 0, 10, 3), /dispose/);
});

t.test('keys must be 32 bytes', async (t) => {
  t.throws(() => createPacketCipher('aes', Buffer.alloc(16)));
  t.throws(() => createPacketCipher('chachapoly', Buffer.alloc(31), 'node'));
});
