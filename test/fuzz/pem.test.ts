/**
 * Fuzz: PEM framing and the PEM-level loaders of src/shared/pki/ (pem.ts, cert.ts, ca-pool.ts): certificate files,
 * `pki.ca` bundles (inline in a config or from a file) and key files. pemDecode never throws (undefined = no
 * block); everything above it fails only with CertError.
 */
import t from 'tap';
import {
  CertError,
  loadCAPool,
  marshalEd25519PrivateKey,
  marshalEd25519PublicKey,
  marshalX25519PrivateKey,
  marshalX25519PublicKey,
  pemDecode,
  pemEncode,
  unmarshalCertsFromPem,
  unmarshalEd25519PrivateKey,
  unmarshalEd25519PublicKey,
  unmarshalX25519PrivateKey,
  unmarshalX25519PublicKey,
} from '../../src/shared/pki';
import { makeCA, makeHost } from '../pki/helpers';
import { fuzzRun, mapLines, mutateLines, mutateProto, nextInput, Rng, Tally } from './fuzz-helpers';

const BASE_COUNT = 2500;

const BANNERS = [
  'NEBULA CERTIFICATE',
  'NEBULA X25519 PRIVATE KEY',
  'NEBULA X25519 PUBLIC KEY',
  'NEBULA ED25519 PRIVATE KEY',
  'NEBULA ED25519 PUBLIC KEY',
  'nebula certificate',
  'NEBULA  CERTIFICATE',
  '',
  'X-----Y',
];

const text = (b: Buffer): string => b.toString('utf8');
const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Text-level mutations that keep PEM mostly PEM-shaped, so the parser gets past its first checks. */
function pemMutators(corpusText: readonly string[]): Array<(rng: Rng, b: Buffer) => Buffer> {
  return [
    (rng, b) => bytes(mutateLines(rng, text(b), corpusText)),
    // Swap a banner (in BEGIN, END or both).
    (rng, b) => {
      const s = text(b);
      const from = rng.pick(BANNERS.slice(0, 5));
      const to = rng.pick(BANNERS);
      return bytes(rng.chance(0.5) ? s.replace(from, to) : s.split(from).join(to));
    },
    // Whitespace and line endings.
    (rng, b) => {
      const s = text(b);
      const at = rng.int(s.length + 1);
      return bytes(s.slice(0, at) + rng.pick([' ', '\t', '\r', '\n', '\r\n', '\n\n', '\u00a0']) + s.slice(at));
    },
    (_rng, b) => bytes(text(b).replace(/\n/g, '\r\n')),
    // RFC 1421 headers, text before the block, a trailing comment.
    (rng, b) => {
      const s = text(b);
      const i = s.indexOf('-----\n');
      const header = rng.pick(['Proc-Type: 4,ENCRYPTED\n\n', 'a: b\nc: d\n\n', 'x:y\n', ': \n\n', 'k: -----END NEBULA CERTIFICATE-----\n\n']);
      return bytes(i < 0 ? s : s.slice(0, i + 6) + header + s.slice(i + 6));
    },
    (rng, b) => bytes(rng.pick(['# ca bundle\n', 'garbage', '-----BEGIN', '\n\n', '-----BEGIN X-----\n']) + text(b)),
    (rng, b) => bytes(text(b) + rng.pick(['\n', '# end\n', '-----END NEBULA CERTIFICATE-----\n', ' \t\n', '='])),
    // Base64 alphabet edits: a character, padding, a character outside the alphabet.
    (rng, b) => {
      const s = text(b);
      const at = rng.int(s.length);
      return bytes(s.slice(0, at) + rng.pick(['A', '/', '+', '=', '==', '-', '_', '*', '']) + s.slice(at + 1));
    },
    // Mutate the encoded bytes themselves (protobuf-aware for certificates) and re-frame.
    (rng, b) => {
      const d = pemDecode(text(b));
      if (!d) return b;
      const inner = rng.chance(0.7) ? mutateProto(rng, d.block.bytes) : d.block.bytes.subarray(0, rng.int(d.block.bytes.length + 1));
      return bytes(pemEncode(d.block.type, inner) + d.rest);
    },
  ];
}

t.test('PEM decoding and loading on mutated and random text', async (t) => {
  const run = fuzzRun(t, 'pem', BASE_COUNT);
  const { rng } = run;
  const ca = makeCA();
  const ca2 = makeCA({ name: 'second ca', groups: ['g'] });
  const host = makeHost(ca);
  const seedText = [
    ca.cert.toPem(),
    ca.cert.toPem() + ca2.cert.toPem(),
    '# my CAs\n' + ca2.cert.toPem() + '\n' + ca.cert.toPem() + '\n',
    (ca.cert.toPem() + ca2.cert.toPem()).replace(/\n/g, '\r\n'),
    host.cert.toPem(),
    marshalX25519PrivateKey(host.privateKey),
    marshalX25519PublicKey(host.cert.details.publicKey),
    marshalEd25519PrivateKey(ca.privateKey),
    marshalEd25519PublicKey(ca.cert.details.publicKey),
  ];
  const seeds = seedText.map(bytes);
  const now = ca.cert.details.notBefore + 60;
  t.equal(loadCAPool(seedText[1]!, now).pool.cas.size, 2, 'seed bundle loads');

  const decode = new Tally('pemDecode', []);
  const certs = new Tally('unmarshalCertsFromPem', [CertError]);
  const pool = new Tally('loadCAPool', [CertError]);
  const keys = new Tally('unmarshal*Key (4 key decoders per input)', [CertError]);
  const keyDecoders = [
    [unmarshalX25519PrivateKey, marshalX25519PrivateKey, 32],
    [unmarshalX25519PublicKey, marshalX25519PublicKey, 32],
    [unmarshalEd25519PrivateKey, marshalEd25519PrivateKey, 64],
    [unmarshalEd25519PublicKey, marshalEd25519PublicKey, 32],
  ] as const;

  for (let i = 0; i < run.count; i++) {
    const raw = nextInput(rng, seeds, { corpus: seeds, extra: pemMutators(seedText), randomMax: 200, maxLen: 8192 });
    const input = text(raw);

    const d = decode.runOptional(input, () => pemDecode(input));
    if (d) {
      decode.check(input.endsWith(d.rest) && d.rest.length < input.length, 'rest is a proper suffix of the input', input);
      // Round trip through the canonical encoder.
      const canon = pemEncode(d.block.type, d.block.bytes);
      const again = decode.mustNotThrow(input, 're-decoding', () => pemDecode(canon));
      decode.check(again !== undefined, 'the canonical encoding of a decoded block decodes', input);
      if (again) {
        decode.check(again.block.type === d.block.type && again.block.bytes.equals(d.block.bytes) && again.rest === '', 'PEM round trip', input);
        decode.check(pemEncode(again.block.type, again.block.bytes) === canon, 'canonical PEM is stable', input);
      }
    }

    const c = certs.run(input, () => unmarshalCertsFromPem(input));
    if (c.ok) {
      certs.check(c.value.length >= 1, 'at least one certificate', input);
      // A bundle written back canonically reads back to the same certificates.
      const back = certs.mustNotThrow(input, 're-reading the canonical bundle', () => unmarshalCertsFromPem(c.value.map((x) => x.toPem()).join('')));
      if (back) certs.same(back.map((x) => x.marshal()), c.value.map((x) => x.marshal()), 'bundle round trip', input);
    }

    const p = pool.run(input, () => loadCAPool(input, now));
    if (p.ok) {
      const { pool: cas, expired } = p.value;
      pool.check(cas.cas.size >= 1 && expired.length < cas.cas.size, 'a loaded pool has a valid CA', input);
      for (const [fp, cert] of cas.cas) {
        pool.check(cert.details.isCA && cert.checkSignature(cert.details.publicKey) && cert.fingerprint() === fp, 'pool holds self-signed CAs by fingerprint', input);
      }
    }

    for (const [unmarshal, marshal, len] of keyDecoders) {
      const k = keys.run(input, () => unmarshal(input));
      if (!k.ok) continue;
      keys.check(k.value.key.length === len, `key is ${len} bytes`, input);
      const again = keys.mustNotThrow(input, 're-reading the key', () => unmarshal(marshal(k.value.key)));
      if (again) keys.check(again.key.equals(k.value.key) && again.rest === '', 'key round trip', input);
    }
  }
  decode.assert(t, 100);
  certs.assert(t, 50);
  pool.assert(t, 20);
  keys.assert(t, 20);
});

t.test('PEM lines and CRLF variants of a valid bundle keep loading', async (t) => {
  // Not random: the whitespace Go's pem tolerates must keep working, so the fuzzer's "accepted" bucket is real.
  const ca = makeCA();
  const pem = ca.cert.toPem();
  const now = ca.cert.details.notBefore + 60;
  const variants = [
    pem,
    pem.replace(/\n/g, '\r\n'),
    '\n\n' + pem + '\n\n',
    mapLines(pem, (lines) => lines.map((l) => (l.startsWith('-----') ? l : ' ' + l))),
    'some text first\n' + pem,
  ];
  for (const v of variants) t.equal(loadCAPool(v, now).pool.cas.size, 1, `loads: ${JSON.stringify(v.slice(0, 30))}`);
});
