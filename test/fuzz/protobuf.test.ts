/**
 * Fuzz: the generic protobuf wire reader (src/shared/protobuf.ts) that every Nebula message decoder sits on.
 * Bad input must end in ProtobufError; accepted input must read back the same after a canonical re-encoding.
 */
import t from 'tap';
import {
  asBytes,
  asInt64,
  asUint32,
  ProtobufError,
  ProtoReader,
  ProtoWriter,
  readPackedUint32,
  WIRE_BYTES,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_VARINT,
  type ProtoField,
} from '../../src/shared/protobuf';
import { encodeHandshake } from '../../src/shared/protocol/handshake-payload';
import { encodeMeta, MetaType } from '../../src/shared/protocol/lighthouse';
import { decodeHandshake } from '../../src/shared/protocol/handshake-payload';
import { decodeMeta } from '../../src/shared/protocol/lighthouse';
import { CertError, unmarshalCert } from '../../src/shared/pki';
import { encodeVarint, fuzzRun, HUGE_VALUES, nextInput, overlaps, Rng, Tally, throwsTyped } from './fuzz-helpers';

const BASE_COUNT = 4000;

interface Field {
  field: number;
  wire: number;
  int: bigint;
  data: Buffer;
}

/** Independent canonical encoder for any field list (ProtoWriter has no fixed32/fixed64 and skips zero values). */
function encodeRaw(fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    parts.push(encodeVarint((BigInt(f.field) << 3n) | BigInt(f.wire)));
    if (f.wire === WIRE_VARINT) parts.push(encodeVarint(f.int));
    else if (f.wire === WIRE_FIXED64) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(f.int);
      parts.push(b);
    } else if (f.wire === WIRE_FIXED32) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(Number(f.int));
      parts.push(b);
    } else parts.push(encodeVarint(BigInt(f.data.length)), f.data);
  }
  return Buffer.concat(parts);
}

function readAll(buf: Buffer): ProtoField[] {
  const r = new ProtoReader(buf);
  const out: ProtoField[] = [];
  while (!r.done) out.push(r.next());
  return out;
}

const plain = (fs: readonly ProtoField[]): Field[] =>
  fs.map((f) => ({ field: f.field, wire: f.wire, int: f.int, data: Buffer.from(f.data) }));

/** A random, valid message: small and large field numbers, every supported wire type, nested messages. */
function randomMessage(rng: Rng, depth = 0): Buffer {
  const fields: Field[] = [];
  const n = rng.size(8);
  for (let i = 0; i < n; i++) {
    const field = rng.chance(0.8) ? rng.range(1, 20) : rng.pick([15, 16, 2047, 2048, 19000, 0x1fffffff]);
    const wire = rng.pick([WIRE_VARINT, WIRE_VARINT, WIRE_BYTES, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64]);
    let int = 0n;
    let data: Buffer = Buffer.alloc(0);
    if (wire === WIRE_VARINT) int = rng.chance(0.3) ? rng.pick(HUGE_VALUES) : BigInt(rng.u32() >>> rng.int(32));
    else if (wire === WIRE_FIXED32) int = BigInt(rng.u32());
    else if (wire === WIRE_FIXED64) int = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    else data = depth < 2 && rng.chance(0.4) ? randomMessage(rng, depth + 1) : rng.bytes(rng.size(24));
    fields.push({ field, wire, int, data });
  }
  return encodeRaw(fields);
}

function projectSeeds(): Buffer[] {
  const details = { cert: Buffer.alloc(40, 7), initiatorIndex: 0x01020304, responderIndex: 0, cookie: 0n, time: 1_700_000_000_000_000_000n };
  return [
    encodeHandshake({ details }),
    encodeHandshake({ details: { ...details, responderIndex: 0xffffffff, cookie: 5n }, hmac: Buffer.alloc(8, 1) }),
    encodeMeta({
      type: MetaType.HostQueryReply,
      details: { vpnIp: 0x0a000001, ip4AndPorts: [{ ip: 0xc0a80001, port: 4242 }], counter: 3, ip6AndPorts: [{ hi: 1n, lo: 2n, port: 1 }], relayVpnIps: [1, 0xffffffff] },
    }),
    new ProtoWriter().uint(1, 150).bytes(2, 'testing').packedUint32(3, [3, 270, 86942]).finish(),
  ];
}

t.test('ProtoWriter output reads back field for field', async (t) => {
  const run = fuzzRun(t, 'protobuf-writer', BASE_COUNT / 4);
  const { rng } = run;
  const tally = new Tally('ProtoWriter→ProtoReader', [ProtobufError]);
  let nonEmpty = 0;
  for (let i = 0; i < run.count; i++) {
    const w = new ProtoWriter();
    const expected: Field[] = [];
    const n = rng.size(6);
    for (let k = 0; k < n; k++) {
      const field = rng.range(1, 40);
      switch (rng.int(4)) {
        case 0: {
          const v = rng.chance(0.2) ? 0n : rng.chance(0.3) ? rng.pick(HUGE_VALUES) : BigInt(rng.u32());
          w.uint(field, v);
          if (v !== 0n) expected.push({ field, wire: WIRE_VARINT, int: v, data: Buffer.alloc(0) });
          break;
        }
        case 1: {
          const data = rng.bytes(rng.size(16));
          w.bytes(field, data);
          if (data.length > 0) expected.push({ field, wire: WIRE_BYTES, int: 0n, data });
          break;
        }
        case 2: {
          const data = rng.bytes(rng.size(8));
          w.message(field, data, true);
          expected.push({ field, wire: WIRE_BYTES, int: 0n, data });
          break;
        }
        default: {
          const values = Array.from({ length: rng.size(5) }, () => rng.u32());
          w.packedUint32(field, values);
          if (values.length > 0) {
            expected.push({ field, wire: WIRE_BYTES, int: 0n, data: Buffer.concat(values.map((v) => encodeVarint(BigInt(v)))) });
          }
        }
      }
    }
    const buf = w.finish();
    if (buf.length > 0) nonEmpty++;
    const r = tally.run(buf, () => readAll(buf));
    if (!r.ok) continue;
    tally.same(plain(r.value), expected, 'read-back fields', buf);
    tally.same(encodeRaw(expected), buf, 'ProtoWriter is the canonical encoding', buf);
  }
  t.equal(tally.violations, 0, 'no violations', { examples: tally.examples });
  t.equal(tally.rejected, 0, 'the writer never produces unreadable output');
  t.ok(nonEmpty > run.count / 2, 'mostly non-empty messages');
});

t.test('ProtoReader on mutated and random bytes', async (t) => {
  const run = fuzzRun(t, 'protobuf-reader', BASE_COUNT);
  const { rng } = run;
  const seeds = [...projectSeeds(), ...Array.from({ length: 40 }, () => randomMessage(rng))];
  const tally = new Tally('ProtoReader', [ProtobufError]);
  const packed = new Tally('readPackedUint32', [ProtobufError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true });
    const r = tally.run(input, () => readAll(input));
    if (!r.ok) continue;
    const fields = r.value;
    // Every field costs at least a tag byte and a value/length byte: the reader cannot produce more than that.
    tally.check(fields.length <= input.length / 2, `${fields.length} fields from ${input.length} bytes`, input);
    for (const f of fields) {
      tally.check(Number.isSafeInteger(f.field) && f.field >= 1 && f.field <= 0x7fffffff, `field number ${f.field}`, input);
      tally.check([WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32].includes(f.wire), `wire type ${f.wire}`, input);
      tally.check(f.int >= 0n && f.int < 1n << 64n, `int ${f.int} outside uint64`, input);
      // Length-delimited payloads are views into the input, never copies or fresh allocations.
      if (f.data.length > 0) tally.check(overlaps(f.data, input) && f.data.length <= input.length, 'data is a view', input);
      // The typed accessors either convert or throw ProtobufError, exactly by wire type.
      const typed = (fn: () => unknown, okWire: number, what: string): void => {
        try {
          fn();
          tally.check(f.wire === okWire || (what === 'packed' && f.wire === WIRE_BYTES), `${what} accepted wire ${f.wire}`, input);
        } catch (err) {
          if (!(err instanceof ProtobufError) || err.message === '') tally.violation(`${what} threw ${String(err)}`, input);
          else tally.check(f.wire !== okWire, `${what} rejected its own wire type`, input);
        }
      };
      typed(() => asBytes(f), WIRE_BYTES, 'asBytes');
      typed(() => asUint32(f), WIRE_VARINT, 'asUint32');
      typed(() => asInt64(f), WIRE_VARINT, 'asInt64');
      if (f.wire === WIRE_BYTES) {
        const p = packed.run(f.data, () => readPackedUint32(f));
        if (p.ok) {
          packed.check(p.value.length <= f.data.length, 'packed count bounded by payload', f.data);
          packed.check(p.value.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff), 'packed values are uint32', f.data);
        }
      }
    }
    // Round trip: the canonical re-encoding reads back to the same fields, and is a fixed point.
    const canon = encodeRaw(plain(fields));
    const again = tally.mustNotThrow(input, 're-reading the canonical encoding', () => readAll(canon));
    if (again) {
      tally.same(plain(again), plain(fields), 'decode(encode(decode(x)))', input);
      tally.same(encodeRaw(plain(again)), canon, 'canonical encoding is stable', input);
    }
  }
  tally.assert(t, 100);
  packed.assert(t, 20);
});

t.test('huge lengths and bad varints are rejected against the bytes actually present', async (t) => {
  const tally = new Tally('huge-lengths', [ProtobufError, CertError]);
  let n = 0;
  for (const huge of HUGE_VALUES) {
    for (const field of [1, 2, 4, 5]) {
      // A length-delimited field claiming `huge` bytes with only a few present.
      const input = Buffer.concat([encodeVarint(BigInt((field << 3) | WIRE_BYTES)), encodeVarint(huge), Buffer.from('abc')]);
      const decoders: Array<[string, () => unknown]> = [
        ['ProtoReader', () => readAll(input)],
        ['decodeHandshake', () => decodeHandshake(input)],
        ['decodeMeta', () => decodeMeta(input)],
        ['unmarshalCert', () => unmarshalCert(input)],
      ];
      for (const [name, decode] of decoders) {
        n++;
        const r = tally.run(input, decode);
        tally.check(!r.ok, `${name} accepted a ${huge}-byte length`, input);
      }
      // The same claim one level down: inside a well-formed outer message.
      const inner = Buffer.concat([encodeVarint(BigInt((1 << 3) | WIRE_BYTES)), encodeVarint(huge), Buffer.from('xy')]);
      const outer = Buffer.concat([encodeVarint(BigInt((field << 3) | WIRE_BYTES)), encodeVarint(BigInt(inner.length)), inner]);
      const nested: Array<() => unknown> = [() => decodeHandshake(outer), () => decodeMeta(outer), () => unmarshalCert(outer)];
      for (const decode of nested) {
        n++;
        tally.run(outer, decode); // accepted (field unused) or rejected, but never anything else
      }
    }
  }
  // 11-byte varints (tag, value, length) and an unterminated one.
  const eleven = Buffer.alloc(11, 0x81);
  eleven[10] = 0x01;
  for (const input of [
    eleven,
    Buffer.concat([Buffer.from([0x08]), eleven]),
    Buffer.concat([Buffer.from([0x0a]), eleven]),
    Buffer.alloc(9, 0xff),
    Buffer.from([0x08, 0xff, 0xff]),
  ]) {
    n++;
    const r = tally.run(input, () => readAll(input));
    tally.check(!r.ok, 'bad varint accepted', input);
  }
  // A packed field whose element never ends, or runs past 10 bytes.
  for (const data of [Buffer.alloc(11, 0x80), Buffer.from([0x01, 0x80])]) {
    n++;
    const r = tally.run(data, () => readPackedUint32({ field: 2, wire: WIRE_BYTES, int: 0n, data }));
    tally.check(!r.ok, 'bad packed varint accepted', data);
  }
  t.comment(`huge-lengths: ${n} directed inputs, ${tally.accepted} accepted, ${tally.rejected} rejected`);
  t.equal(tally.violations, 0, 'every huge length or bad varint ends in a typed error', { examples: tally.examples });
  t.ok(tally.rejected > 0 && tally.accepted > 0, 'both paths taken');
});

t.test('regression: field numbers above MaxInt32 are refused, not rounded', async (t) => {
  // Found by the reader fuzz: a 10-byte tag whose field number (2303675827019579391) a JS number cannot hold was
  // accepted as field 2303675827019579400, so a re-encoding named another field. Go's protowire refuses tags with
  // a field number above MaxInt32; so does the reader now.
  const found = Buffer.from('f8ffffc9c9f599e1ff0f0a', 'hex');
  throwsTyped(t, () => readAll(found), ProtobufError, /^invalid field number$/, 'the fuzzer input');
  for (const field of [0x80000000n, 0xffffffffn, 1n << 53n, (1n << 61n) - 1n]) {
    const input = Buffer.concat([encodeVarint((field << 3n) | BigInt(WIRE_VARINT)), Buffer.from([0x01])]);
    throwsTyped(t, () => readAll(input), ProtobufError, /^invalid field number$/, `field ${field}`);
    throwsTyped(t, () => decodeHandshake(input), ProtobufError, /invalid field number/, `decodeHandshake, field ${field}`);
    throwsTyped(t, () => decodeMeta(input), ProtobufError, /invalid field number/, `decodeMeta, field ${field}`);
    throwsTyped(t, () => unmarshalCert(input), CertError, /invalid field number/, `unmarshalCert, field ${field}`);
  }
  // The largest field numbers Go accepts still read, exactly.
  for (const field of [0x1fffffff, 0x7fffffff]) {
    const input = Buffer.concat([encodeVarint((BigInt(field) << 3n) | BigInt(WIRE_VARINT)), Buffer.from([0x01])]);
    t.same(plain(readAll(input)), [{ field, wire: WIRE_VARINT, int: 1n, data: Buffer.alloc(0) }], `field ${field} reads`);
  }
});
