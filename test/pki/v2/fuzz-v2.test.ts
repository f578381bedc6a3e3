/**
 * Fuzz: the v2 certificate decoder (unmarshalCertV2 for files and CA bundles, certV2FromHandshake for what an
 * unauthenticated peer sends). Bad input must end in a one-line CertError, never another exception or a hang;
 * accepted certificates must re-encode stably and keep their fingerprint; nothing the CAs did not sign may verify.
 * Plus the named cases of issue 12: truncated DER, wrong tags, oversize lengths and inputs, unknown curves,
 * non-canonical P256 signatures.
 */
process.env.TZ = 'UTC';
import t, { type Test } from 'tap';
import {
  CertError,
  NebulaCertificateV2,
  certV2FromHandshake,
  certV2ToJson,
  certV2ToText,
  checkCAConstraintsV2,
  comparePrefix,
  swapP256Signature,
  unmarshalCertV2,
  type Curve,
} from '../../../src/shared/pki';
import { derElement } from '../../../src/shared/pki/v2/der';
import { fuzzRun, nextInput, Tally, type Rng } from '../../fuzz/fuzz-helpers';
import { breakDerHeader, mutateDerTree } from './der-mutate';
import { SIGNER, V2_CERTS, fixtureCert } from './fixtures';

const BASE_COUNT = 3000;
const certs = V2_CERTS.map(fixtureCert);
const caKeys = certs.filter((c) => c.details.isCA).map((c) => c.publicKey);
const signedMessages = new Set(certs.map((c) => c.signedBytes().toString('hex')));
const derMutators = [(rng: Rng, b: Buffer): Buffer => mutateDerTree(rng, b), (rng: Rng, b: Buffer): Buffer => mutateDerTree(rng, mutateDerTree(rng, b)), breakDerHeader];

/** Every rejection must be one line: a CertError whose message has no newline. */
function oneLine<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CertError && err.message.includes('\n')) throw new Error(`multi-line CertError: ${err.message}`);
    throw err;
  }
}

/** What must hold for any certificate the decoder hands out. */
function checkAccepted(tally: Tally, c: NebulaCertificateV2, input: Buffer): void {
  const d = c.details;
  tally.check(Buffer.byteLength(d.name) <= 253 * 3, 'name bounded', input);
  tally.check(d.isCA || d.networks.length > 0, 'a host has a network', input);
  tally.check(d.networks.every((n, i) => i === 0 || comparePrefix(d.networks[i - 1]!, n) < 0), 'networks sorted and unique', input);
  tally.check(Number.isSafeInteger(d.notBefore) && Number.isSafeInteger(d.notAfter), 'times are safe integers', input);
  tally.check(/^(?:[0-9a-f]{2})*$/.test(d.issuer), 'issuer is lowercase hex', input);
  tally.check(c.publicKey.length > 0 && c.signature.length > 0, 'key and signature present', input);
  const again = tally.mustNotThrow(input, 're-decoding marshal()', () => unmarshalCertV2(c.marshal()));
  if (again) {
    tally.same(again.details, d, 'details survive a round trip', input);
    tally.same(again.marshal(), c.marshal(), 'marshal is stable', input);
    tally.check(again.fingerprint() === c.fingerprint(), 'fingerprint is stable', input);
  }
  tally.mustNotThrow(input, 'print, expiry, signature and constraint helpers', () => {
    certV2ToJson(c);
    certV2ToText(c);
    c.expired(1_800_000_000);
    for (const key of caKeys) {
      if (c.checkSignature(key)) tally.check(signedMessages.has(c.signedBytes().toString('hex')), 'only signed bytes verify', input);
    }
    try {
      c.alternateFingerprint();
      checkCAConstraintsV2(certs[1]!.details, d);
    } catch (err) {
      if (!(err instanceof CertError)) throw err;
    }
  });
}

t.test('unmarshalCertV2 on mutated and random certificates', async (t) => {
  const run = fuzzRun(t, 'cert-v2-unmarshal', BASE_COUNT);
  const seeds = certs.map((c) => c.marshal());
  const tally = new Tally('unmarshalCertV2', [CertError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(run.rng, seeds, { corpus: seeds, extra: derMutators, randomMax: 160 });
    const r = tally.run(input, () => oneLine(() => unmarshalCertV2(input)));
    if (r.ok) checkAccepted(tally, r.value, input);
  }
  tally.assert(t, 100);
});

t.test('certV2FromHandshake on mutated handshake forms, keys and curves', async (t) => {
  const run = fuzzRun(t, 'cert-v2-handshake', BASE_COUNT);
  const hosts = certs.filter((c) => !c.details.isCA);
  const seeds = hosts.map((c) => c.marshalForHandshake());
  const tally = new Tally('certV2FromHandshake', [CertError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(run.rng, seeds, { corpus: seeds, extra: derMutators, randomMax: 160 });
    const host = run.rng.pick(hosts);
    const key = run.rng.chance(0.85) ? host.publicKey : run.rng.bytes(run.rng.pick([0, 1, 31, 32, 33, 65]));
    const curve: Curve = run.rng.chance(0.8) ? host.curve : run.rng.pick(['CURVE25519', 'P256'] as const);
    const r = tally.run(input, () => oneLine(() => certV2FromHandshake(input, key, curve)));
    if (!r.ok) continue;
    tally.same(r.value.publicKey, Buffer.from(key), 'the public key is the static key', input);
    tally.check(r.value.curve === curve, 'the curve is the handshake curve', input);
    checkAccepted(tally, r.value, input);
  }
  tally.assert(t, 100);
});

/** Asserts a one-line CertError (the "clear error") for `input`. */
function refused(t: Test, input: Buffer, message: RegExp, what: string): void {
  t.throws(() => oneLine(() => unmarshalCertV2(input)), { name: 'CertError', message }, what);
}

t.test('named bad inputs end in one-line errors', async (t) => {
  const host = fixtureCert('host-dual');
  const der = host.marshal();
  let truncatedRefused = 0;
  for (let n = 0; n < der.length; n++) {
    try {
      oneLine(() => unmarshalCertV2(der.subarray(0, n)));
    } catch (err) {
      if (err instanceof CertError) truncatedRefused++;
    }
  }
  t.equal(truncatedRefused, der.length, 'every truncation of a certificate is refused with a CertError');
  refused(t, Buffer.alloc(0), /certificate of 0 bytes/, 'empty');
  refused(t, Buffer.concat([der, Buffer.alloc(65537 - der.length)]), /certificate of 65537 bytes \(1\.\.65536 allowed\)/, 'oversize input');
  refused(t, Buffer.concat([Buffer.from([0x31]), der.subarray(1)]), /envelope: expected tag 0x30, found 0x31/, 'wrong outer tag');
  refused(t, Buffer.from('3084ffffffff', 'hex'), /element of 4294967295 bytes overruns/, 'oversize length');
  refused(t, Buffer.from('3085000000000100', 'hex'), /length of 5 octets is too long/, 'five length octets');
  refused(t, Buffer.from('3080a0000000', 'hex'), /indefinite length/, 'indefinite length');
  const body = (details: Buffer, ...rest: Buffer[]): Buffer => derElement(0x30, details, ...rest);
  const key = derElement(0x82, host.publicKey);
  const sig = derElement(0x83, host.signature);
  refused(t, body(host.rawDetails, sig), /missing public key/, 'no public key');
  refused(t, body(host.rawDetails, key), /missing signature/, 'no signature');
  refused(t, body(host.rawDetails, derElement(0x84, host.publicKey), sig), /missing public key/, 'public key under a wrong tag');
  refused(t, body(derElement(0xa1, host.rawDetails.subarray(2)), key, sig), /details: expected tag 0xa0, found 0xa1/, 'details under a wrong tag');
  for (const curve of [2, 3, 0x7f, 0xff]) {
    refused(t, body(host.rawDetails, derElement(0x81, Buffer.from([curve])), key, sig), new RegExp(`unknown curve ${curve}$`), `unknown curve ${curve}`);
  }
  refused(t, body(host.rawDetails, derElement(0x81, Buffer.from([1, 0])), key, sig), /curve of 2 bytes/, 'two-byte curve');
  const details = (...fields: Buffer[]): Buffer => derElement(0xa0, ...fields);
  const name = derElement(0x80, Buffer.from('h'));
  const nets = derElement(0xa1, derElement(0x04, Buffer.from('0a01020310', 'hex')));
  const time = (v: string): Buffer => Buffer.from(v, 'hex');
  const times = [derElement(0x85, time('01')), derElement(0x86, time('7f'))];
  refused(t, body(details(name, nets, derElement(0x85, time('0001')), times[1]!), key, sig), /notBefore: integer not minimally encoded/, 'non-minimal time');
  refused(t, body(details(name, nets, derElement(0x85, time('010000000000000000')), times[1]!), key, sig), /notBefore: integer does not fit 64 bits/, '9-byte time');
  refused(t, body(details(derElement(0x80, Buffer.alloc(254, 0x61)), nets, ...times), key, sig), /name of 254 bytes/, '254-byte name');
  refused(t, body(details(name, derElement(0xa1, derElement(0x04, Buffer.alloc(6))), ...times), key, sig), /entry of 6 bytes is not an IPv4 or IPv6 prefix/, '6-byte network');
  refused(t, body(details(name, derElement(0xa1, derElement(0x04, Buffer.alloc(18))), ...times), key, sig), /entry of 18 bytes \(1\.\.17 allowed\)/, '18-byte network');
  refused(t, body(details(name, derElement(0xa1, derElement(0x04, Buffer.from('0a01020321', 'hex'))), ...times), key, sig), /invalid network: invalid Prefix/, '/33');
  refused(t, body(details(name, nets, derElement(0x84, Buffer.from([1, 1])), ...times), key, sig), /isCA of 2 bytes/, 'two-byte isCA');
  refused(t, body(details(name, ...times), key, sig), /non-CA certificate must contain at least 1 network/, 'host without networks');
  refused(t, body(details(nets, name, ...times), key, sig), /details: name: expected tag 0x80, found 0xa1 at offset 0$/, 'fields out of order');
  refused(t, body(details(name, nets, derElement(0xa3, derElement(0x0c, Buffer.alloc(0))), ...times), key, sig), /groups: empty group$/, 'empty group');
  // Fields after the issuer are a future extension: ignored, as Go ignores them (the signature covers them).
  t.equal(unmarshalCertV2(body(details(name, nets, ...times, derElement(0x88, Buffer.from('future'))), key, sig)).details.name, 'h', 'unknown trailing field');
  // A well-formed minimal certificate built the same way decodes, so the refusals above are about the named fault.
  t.equal(unmarshalCertV2(body(details(name, nets, ...times), key, sig)).details.name, 'h', 'the minimal base case decodes');
});

t.test('non-canonical P256 signatures: high-s verifies as in Go; malformed encodings never do, with one-line errors', async (t) => {
  const host = fixtureCert('host-p256');
  const ca = fixtureCert(SIGNER['host-p256']!);
  const withSig = (sig: Buffer): NebulaCertificateV2 =>
    unmarshalCertV2(derElement(0x30, host.rawDetails, derElement(0x81, Buffer.from([1])), derElement(0x82, host.publicKey), derElement(0x83, sig)));
  const high = withSig(swapP256Signature(host.signature));
  t.ok(high.checkSignature(ca.publicKey), 'the high-s form decodes and verifies (nebula 1.11 accepts it)');
  t.equal(high.alternateFingerprint(), host.fingerprint(), 'and its alternate fingerprint is the low-s one, for the blocklist');
  const sig = host.signature;
  const malformedSigs: [string, Buffer][] = [
    ['trailing byte', Buffer.concat([sig, Buffer.from([0])])],
    ['wrong SEQUENCE tag', Buffer.concat([Buffer.from([0x31]), sig.subarray(1)])],
    ['non-minimal r', Buffer.concat([Buffer.from([0x30, sig[1]! + 1, 0x02, sig[3]! + 1, 0x00]), sig.subarray(4)])],
    ['truncated', sig.subarray(0, sig.length - 3)],
    ['random bytes', Buffer.from('deadbeef', 'hex')],
  ];
  for (const [what, bad] of malformedSigs) {
    const c = withSig(bad);
    t.notOk(c.checkSignature(ca.publicKey), `${what}: does not verify`);
    t.throws(() => oneLine(() => c.alternateFingerprint()), { name: 'CertError', message: /^could not calculate alternate fingerprint: invalid ASN\.1: [^\n]+$/ }, `${what}: alternate fingerprint is a one-line error`);
  }
});
