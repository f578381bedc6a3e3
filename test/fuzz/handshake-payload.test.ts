/**
 * Fuzz: the Noise handshake payload decoder (src/shared/protocol/handshake-payload.ts), which parses the first
 * bytes an unauthenticated peer controls. Bad input must end in ProtobufError; accepted input must re-encode
 * canonically.
 */
import t from 'tap';
import { ProtobufError } from '../../src/shared/protobuf';
import {
  decodeHandshake,
  decodeHandshakeDetails,
  encodeHandshake,
  encodeHandshakeDetails,
  type NebulaHandshake,
} from '../../src/shared/protocol/handshake-payload';
import { marshalCertForHandshake } from '../../src/shared/pki';
import { makeCA, makeHost } from '../pki/helpers';
import { fuzzRun, nextInput, overlaps, Tally } from './fuzz-helpers';

const BASE_COUNT = 4000;

function reencode(h: NebulaHandshake): Buffer {
  return encodeHandshake({ details: h.details, hmac: h.hmac });
}

t.test('decodeHandshake on mutated and random payloads', async (t) => {
  const run = fuzzRun(t, 'handshake-payload', BASE_COUNT);
  const { rng } = run;
  const ca = makeCA();
  const host = makeHost(ca, { groups: ['a', 'b'], subnets: ['10.9.0.0/16'] });
  const cert = marshalCertForHandshake(host.cert);
  const seeds = [
    encodeHandshake({ details: { cert, initiatorIndex: 0x01020304, responderIndex: 0, cookie: 0n, time: 1_700_000_000_123_456_789n } }),
    encodeHandshake({ details: { cert, initiatorIndex: 0xffffffff, responderIndex: 0x80000000, cookie: 0n, time: (1n << 64n) - 1n } }),
    encodeHandshake({ details: { cert: Buffer.alloc(0), initiatorIndex: 1, responderIndex: 2, cookie: 3n, time: 4n }, hmac: Buffer.alloc(32, 9) }),
    encodeHandshake({ details: { cert: Buffer.alloc(0), initiatorIndex: 0, responderIndex: 0, cookie: 0n, time: 0n } }),
    // v1.10+ sends CertVersion=8 inside Details; unknown fields must be skipped.
    Buffer.concat([
      encodeHandshake({ details: { cert, initiatorIndex: 7, responderIndex: 0, cookie: 0n, time: 5n } }),
      Buffer.from([0x40, 0x01]),
    ]),
  ];
  // Sanity: the seeds decode to what they were built from.
  const first = decodeHandshake(seeds[0]!);
  t.same(first.details?.cert, cert, 'seed cert survives');
  t.equal(first.details?.initiatorIndex, 0x01020304, 'seed initiator index');

  const tally = new Tally('decodeHandshake', [ProtobufError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true, randomMax: 96 });
    const r = tally.run(input, () => decodeHandshake(input));
    if (!r.ok) continue;
    const h = r.value;
    const d = h.details;
    // Output is bounded by the input: no decoded byte comes from anywhere else.
    tally.check((d?.cert.length ?? 0) + h.hmac.length <= input.length, 'output larger than input', input);
    tally.check(!overlaps(h.hmac, input), 'hmac is a copy', input);
    if (d) {
      for (const v of [d.initiatorIndex, d.responderIndex]) tally.check(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `index ${v}`, input);
      for (const v of [d.cookie, d.time]) tally.check(v >= 0n && v < 1n << 64n, `uint64 ${v}`, input);
      // Decoded buffers are copies: a later reuse of the receive buffer must not change them.
      tally.check(!overlaps(d.cert, input), 'cert is a copy', input);
    }
    // Canonical round trip: decode(encode(decode(x))) == decode(x), and the encoding is a fixed point.
    const canon = reencode(h);
    const again = tally.mustNotThrow(input, 're-decoding the canonical encoding', () => decodeHandshake(canon));
    if (again) {
      tally.same(again, h, 'decode(encode(decode(x)))', input);
      tally.same(reencode(again), canon, 'canonical encoding is stable', input);
    }
  }
  tally.assert(t, 200);

  // The inner message on its own (the handshake manager never calls it directly, but it is exported).
  const inner = new Tally('decodeHandshakeDetails', [ProtobufError]);
  const innerSeeds = seeds.map((s) => decodeHandshake(s).details).filter((d) => d !== undefined).map((d) => encodeHandshakeDetails(d));
  for (let i = 0; i < run.count / 4; i++) {
    const input = nextInput(rng, innerSeeds, { corpus: innerSeeds, proto: true });
    const r = inner.run(input, () => decodeHandshakeDetails(input));
    if (r.ok) inner.check(r.value.cert.length <= input.length, 'cert larger than input', input);
  }
  inner.assert(t, 50);
});
