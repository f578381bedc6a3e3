/**
 * Fuzz: the 16-byte Nebula header decoder (src/shared/protocol/header.ts). decodeHeader answers with a boolean and
 * must never throw; what it accepts must match an independent reading of the bytes and re-encode to them.
 */
import t from 'tap';
import {
  decodeHeader,
  encodeHeader,
  Header,
  HEADER_LEN,
  isKnownTypePair,
  MessageType,
  subTypeName,
  typeName,
  writeHeader,
} from '../../src/shared/protocol/header';
import { BoolTally, fuzzRun, nextInput } from './fuzz-helpers';

const BASE_COUNT = 5000;

/** Marker values no real decode produces together, to see whether a rejected decode touched the object. */
function sentinel(): Header {
  const h = new Header();
  h.version = 99;
  h.type = 98;
  h.subtype = 97;
  h.reserved = 96;
  h.remoteIndex = 95;
  h.counterHi = 94;
  h.counterLo = 93;
  return h;
}

const fieldsOf = (h: Header): number[] => [h.version, h.type, h.subtype, h.reserved, h.remoteIndex, h.counterHi, h.counterLo];

t.test('decodeHeader on mutated and random packets', async (t) => {
  const run = fuzzRun(t, 'header', BASE_COUNT);
  const { rng } = run;
  const seeds: Buffer[] = [];
  for (const type of Object.values(MessageType)) {
    for (const [idx, counter] of [
      [0, 0],
      [0xffffffff, 0xffffffffffffffffn],
      [0x11223344, 2 ** 53 - 1],
      [1, 1n << 32n],
    ] as const) {
      const b = Buffer.alloc(HEADER_LEN + rng.int(24));
      encodeHeader(b, 0, type, rng.int(2), idx, counter);
      seeds.push(b);
    }
  }
  const tally = new BoolTally('decodeHeader');
  for (let i = 0; i < run.count; i++) {
    const buf = nextInput(rng, seeds, { corpus: seeds, randomMax: 40 });
    // Offsets and lengths as a packet loop could pass them, plus off-by-a-few and out-of-range values.
    const offset = rng.chance(0.7) ? 0 : rng.range(-3, buf.length + 3);
    const len = rng.chance(0.7) ? buf.length : rng.range(-3, buf.length + 20);
    const into = sentinel();
    const ok = tally.runBool(buf, () => decodeHeader(buf, offset, len, into));
    if (ok === undefined) continue;
    const fits = len >= HEADER_LEN && offset >= 0 && offset + HEADER_LEN <= buf.length;
    tally.check(ok === fits, `returned ${ok} for offset ${offset} len ${len} of ${buf.length} bytes`, buf);
    if (!ok) {
      tally.same(fieldsOf(into), fieldsOf(sentinel()), 'a rejected decode leaves the header untouched', buf);
      continue;
    }
    // Independent reading of the same 16 bytes.
    const dv = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_LEN);
    tally.same(
      fieldsOf(into),
      [dv.getUint8(0) >> 4, dv.getUint8(0) & 15, dv.getUint8(1), dv.getUint16(2), dv.getUint32(4), dv.getUint32(8), dv.getUint32(12)],
      'fields',
      buf,
    );
    tally.check(into.counterBig === dv.getBigUint64(8), 'counterBig', buf);
    tally.check(into.counter === Number(dv.getBigUint64(8)), 'counter (rounded above 2^53)', buf);
    // Re-encoding gives back the bytes, except what the writer always normalises: version 1, reserved 0.
    const expected = Buffer.from(buf.subarray(offset, offset + HEADER_LEN));
    expected[0] = 0x10 | (expected[0]! & 0x0f);
    expected[2] = 0;
    expected[3] = 0;
    const out = Buffer.alloc(HEADER_LEN + 2, 0xee);
    tally.mustNotThrow(buf, 'Header.encode', () => into.encode(out, 1));
    tally.same(out.subarray(1, 1 + HEADER_LEN), expected, 'encode(decode(x))', buf);
    tally.check(out[0] === 0xee && out[HEADER_LEN + 1] === 0xee, 'encode stays inside its 16 bytes', buf);
    const again = new Header();
    tally.check(decodeHeader(out, 1, HEADER_LEN, again), 're-decode', buf);
    tally.same(fieldsOf(again), [1, into.type, into.subtype, 0, into.remoteIndex, into.counterHi, into.counterLo], 'decode(encode(decode(x)))', buf);
    const viaWrite = Buffer.alloc(HEADER_LEN);
    tally.mustNotThrow(buf, 'writeHeader', () =>
      writeHeader(viaWrite, 0, into.type, into.subtype, into.remoteIndex, into.counterHi, into.counterLo),
    );
    tally.same(viaWrite, expected, 'writeHeader(decode(x))', buf);
    // What a receiver logs and counts for a hostile header must not throw either.
    tally.mustNotThrow(buf, 'names', () => {
      into.toString();
      typeName(into.type);
      subTypeName(into.type, into.subtype);
      return isKnownTypePair(into.type, into.subtype);
    });
  }
  tally.assert(t, 200);
});
