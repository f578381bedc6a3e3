/**
 * v1 certificates of curve P256 (RawNebulaCertificateDetails field 100, nebula 1.7+), from the committed fixtures
 * that nebula-cert 1.9.3 and 1.11.0 made (fixtures-v1-p256/make-fixtures.sh): byte-identical re-encoding, Go's
 * fingerprints (1.11.0's print -json), ECDSA signatures in both forms, the blocklist holding either fingerprint,
 * keys, the handshake form, the node's loading, and bad input. Needs no Go binary (v1-p256-interop.test.ts does).
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CAPool,
  CertError,
  NebulaCertificate,
  certFromHandshake,
  checkHostPki,
  generateEd25519KeyPair,
  generateP256KeyPair,
  isLowS,
  loadCAPool,
  loadHostPki,
  marshalDetails,
  pemDecode,
  recombineCert,
  signCert,
  swapP256Signature,
  unmarshalCert,
  unmarshalCertFromPem,
  unmarshalPrivateKeyPem,
  unmarshalSigningPrivateKeyPem,
  type CertDetails,
} from '../../src/shared/pki';
import { marshalRawCert } from '../../src/shared/pki/cert-v1-wire';
import { certToJsonValue, certToText } from '../../src/shared/pki/print';
import { ProtoWriter } from '../../src/shared/protobuf';
import { parseCidr } from '../../src/shared/util/ipv4';

const DIR = path.join(__dirname, 'fixtures-v1-p256');
const text = (file: string): string => readFileSync(path.join(DIR, file), 'utf8');
const cert = (name: string): NebulaCertificate => unmarshalCertFromPem(text(`${name}.crt`)).cert;

interface Printed {
  details: { curve: string; name: string; networks: string[]; unsafeNetworks: string[]; groups: string[]; isCa: boolean; issuer: string; publicKey: string };
  fingerprint: string;
  signature: string;
}
const printed = (name: string): Printed => (JSON.parse(text(`${name}.json`)) as Printed[])[0]!;

const PAIRS = [
  ['ca-193', 'host-193'],
  ['ca-111', 'host-111'],
] as const;
/** Inside every fixture's validity (the CAs are valid for 100 years from when they were made). */
const NOW = cert('host-193').details.notBefore + 60;

function expectMalformed(t: Test, fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof CertError && err.code === 'malformed' && pattern.test(err.message), `${String(err)} ~ ${pattern}`);
    return;
  }
  t.fail(`expected a malformed-certificate error matching ${pattern}`);
}

t.test('nebula-cert 1.9.3 / 1.11.0 v1 P256 certificates re-encode byte for byte, with Go\'s fingerprints', async (t) => {
  for (const name of PAIRS.flat()) {
    const pem = text(`${name}.crt`);
    const c = cert(name);
    const p = printed(name);
    t.equal(c.curve, 'P256', `${name}: curve P256`);
    t.equal(c.details.curve, 'P256', `${name}: details carry the curve`);
    t.same(c.marshal(), pemDecode(pem)!.block.bytes, `${name}: re-encoded byte-identically`);
    t.equal(c.toPem(), pem, `${name}: PEM identical`);
    t.equal(c.fingerprint(), p.fingerprint, `${name}: fingerprint as nebula-cert prints it`);
    t.equal(c.signature.toString('hex'), p.signature, `${name}: signature`);
    t.equal(c.details.publicKey.toString('hex'), p.details.publicKey, `${name}: 65-byte public key`);
    t.same([c.details.name, c.details.isCA, c.details.issuer, c.details.groups], [p.details.name, p.details.isCa, p.details.issuer, p.details.groups], `${name}: details`);
    t.ok(c.marshal().includes(Buffer.from('a00601', 'hex')), `${name}: field 100 = 1 on the wire`);
  }
});

t.test('signatures verify in either form; the blocklist holds both fingerprints', async (t) => {
  t.notOk(isLowS(cert('host-193').signature), '1.9.3 signed this one high-s (it signs either form)');
  t.ok(isLowS(cert('host-111').signature), '1.11.0 signs low-s');
  for (const [caName, hostName] of PAIRS) {
    const { pool } = loadCAPool(text(`${caName}.crt`), NOW);
    const host = cert(hostName);
    t.equal(pool.verify(host, NOW).details.name, cert(caName).details.name, `${hostName}: verified by its CA`);
    const twin = new NebulaCertificate(host.details, swapP256Signature(host.signature));
    t.equal(twin.fingerprint(), host.alternateFingerprint(), `${hostName}: the twin's fingerprint is the alternate one`);
    t.equal(twin.alternateFingerprint(), host.fingerprint(), `${hostName}: and the other way round`);
    t.doesNotThrow(() => pool.verify(twin, NOW), `${hostName}: the other signature form verifies too`);
    for (const blocked of [host.fingerprint(), host.alternateFingerprint()]) {
      const p = loadCAPool(text(`${caName}.crt`), NOW).pool;
      p.blocklistFingerprint(blocked);
      for (const c of [host, twin]) t.throws(() => p.verify(c, NOW), { message: 'certificate is in the block list' });
    }
    const tampered = new NebulaCertificate({ ...host.details, groups: [...host.details.groups, 'extra'] }, host.signature);
    t.throws(() => pool.verify(tampered, NOW), { message: 'certificate signature did not match' }, `${hostName}: tampered details refused`);
    t.notOk(host.checkSignature(host.details.publicKey), `${hostName}: not signed by its own key`);
  }
  // A P256 leaf whose issuer is a 25519 CA (same fingerprint in the pool under a forged issuer) is refused by curve.
  const ed = generateEd25519KeyPair();
  const caDetails: CertDetails = { name: 'ed ca', ips: [], subnets: [], groups: [], notBefore: NOW - 10, notAfter: NOW + 1000, publicKey: ed.publicKey, isCA: true, issuer: '' };
  const edCA = signCert(caDetails, ed.privateKey);
  const pool = new CAPool();
  pool.addCA(edCA, NOW);
  const leaf = new NebulaCertificate({ ...cert('host-111').details, issuer: edCA.fingerprint() }, cert('host-111').signature);
  t.throws(() => pool.verify(leaf, NOW), { message: 'certificate curve does not match CA' });
});

t.test('key files: the ECDSA CA keys and P256 host keys pair with their certificates', async (t) => {
  for (const [caName, hostName] of PAIRS) {
    const caKey = unmarshalSigningPrivateKeyPem(text(`${caName}.key`));
    t.equal(caKey.curve, 'P256', `${caName}.key: NEBULA ECDSA P256 PRIVATE KEY`);
    t.doesNotThrow(() => cert(caName).verifyPrivateKey('P256', caKey.key), `${caName}: key pairs`);
    const hostKey = unmarshalPrivateKeyPem(text(`${hostName}.key`));
    t.equal(hostKey.curve, 'P256', `${hostName}.key: NEBULA P256 PRIVATE KEY`);
    t.doesNotThrow(() => cert(hostName).verifyPrivateKey('P256', hostKey.key), `${hostName}: key pairs`);
    t.throws(() => cert(hostName).verifyPrivateKey('CURVE25519', hostKey.key), { message: "curve in cert and private key supplied don't match" });
    t.throws(() => cert(hostName).verifyPrivateKey('P256', caKey.key), { message: "public key in cert and private key supplied don't match" });
    t.throws(() => cert(hostName).verifyPrivateKey('P256', Buffer.alloc(32)), { message: /^cannot parse private key as P256/ });
  }
});

t.test('handshake form: curve kept, public key from Noise, recombined only with a P256 credential', async (t) => {
  const host = cert('host-111');
  const wire = host.marshalForHandshake();
  t.notOk(wire.includes(host.details.publicKey), 'no public key on the wire');
  t.ok(wire.includes(Buffer.from('a00601', 'hex')), 'the curve travels');
  const rebuilt = certFromHandshake(wire, host.details.publicKey);
  t.equal(rebuilt.fingerprint(), host.fingerprint(), 'rebuilt with the static key: the same certificate');
  t.equal(recombineCert(wire, host.details.publicKey, 1, 'P256').fingerprint(), host.fingerprint(), 'recombined for a P256 node');
  t.throws(() => recombineCert(wire, host.details.publicKey, 1, 'CURVE25519'), { message: 'certificate curve P256 does not match expected CURVE25519' });
  const { pool } = loadCAPool(text('ca-111.crt'), NOW);
  const impostor = certFromHandshake(wire, generateP256KeyPair().publicKey);
  t.throws(() => pool.verify(impostor, NOW), { message: 'certificate signature did not match' }, 'another static key fails the CA signature');
});

t.test('the node loads a v1 P256 certificate and key (pki.ca / pki.cert / pki.key)', async (t) => {
  for (const [caName, hostName] of PAIRS) {
    const pki = loadHostPki({ ca: text(`${caName}.crt`), cert: text(`${hostName}.crt`), key: text(`${hostName}.key`) }, NOW);
    t.equal(pki.cert.curve, 'P256', `${hostName}: the node's curve (its Noise DH) is P256`);
    t.equal(pki.cert.version, 1);
    t.equal(pki.cert.fingerprint(), printed(hostName).fingerprint);
    t.same(checkHostPki({ ca: text(`${caName}.crt`), cert: text(`${hostName}.crt`), key: text(`${hostName}.key`) }, NOW), [], `${hostName}: -test finds no problem`);
  }
  t.throws(() => loadHostPki({ ca: text('ca-111.crt'), cert: text('host-111.crt'), key: text('host-193.key') }, NOW), {
    message: "pki.key: public key in cert and private key supplied don't match",
  });
  const x25519Key = '-----BEGIN NEBULA X25519 PRIVATE KEY-----\n' + Buffer.alloc(32, 9).toString('base64') + '\n-----END NEBULA X25519 PRIVATE KEY-----\n';
  t.throws(() => loadHostPki({ ca: text('ca-111.crt'), cert: text('host-111.crt'), key: x25519Key }, NOW), {
    message: 'pki.key: public key does not match private key curve',
  });
});

t.test('signing: field 100 written as Go writes it, ECDSA low-s, verified by the CA key', async (t) => {
  const caKeys = generateP256KeyPair();
  const base: CertDetails = { name: 'ts p256 ca', ips: [parseCidr('10.0.0.0/8')!], subnets: [], groups: ['g'], notBefore: NOW - 10, notAfter: NOW + 3600, publicKey: caKeys.publicKey, isCA: true, issuer: '' };
  const withCurve = marshalDetails({ ...base, curve: 'P256' });
  t.same(withCurve.subarray(-3), Buffer.from('a00601', 'hex'), 'field 100 last, value 1');
  t.same(marshalDetails({ ...base, curve: 'CURVE25519' }), marshalDetails(base), 'CURVE25519 omitted (the proto3 default)');
  const ca = signCert({ ...base, curve: 'P256' }, caKeys.privateKey);
  t.ok(ca.checkSignature(caKeys.publicKey), 'self-signed with ECDSA');
  t.ok(isLowS(ca.signature), 'low-s');
  t.same(unmarshalCert(ca.marshal()).marshal(), ca.marshal(), 'reads back byte-identically');
  const hostKeys = generateP256KeyPair();
  const host = signCert({ ...base, name: 'h', ips: [parseCidr('10.1.2.3/8')!], isCA: false, publicKey: hostKeys.publicKey, issuer: ca.fingerprint(), curve: 'P256' }, caKeys.privateKey);
  const pool = new CAPool();
  pool.addCA(ca, NOW);
  t.doesNotThrow(() => pool.verify(host, NOW));
  t.doesNotThrow(() => host.verifyPrivateKey('P256', hostKeys.privateKey));
  t.throws(() => signCert({ ...base, curve: 'P256' }, generateEd25519KeyPair().privateKey), { message: /^invalid signing key: / }, 'an Ed25519 key cannot sign a P256 certificate');
  const explicit = signCert({ ...base, publicKey: generateEd25519KeyPair().publicKey, curve: 'CURVE25519' }, generateEd25519KeyPair().privateKey);
  t.notOk('curve' in explicit.details, 'an explicit CURVE25519 is stored as absent: one spelling for equal details');
});

t.test('bad input: unknown curves, wrong wire types, non-canonical encodings, broken signatures', async (t) => {
  const host = cert('host-111');
  const { curve: _curve, ...plain } = host.details;
  const raw = (curveField: Buffer): Buffer => marshalRawCert(Buffer.concat([marshalDetails(plain), curveField]), host.signature);
  const field100 = (v: bigint): Buffer => new ProtoWriter().uint(100, v).finish();
  t.same(raw(field100(1n)), host.marshal(), 'the fixture rebuilt from its parts');
  expectMalformed(t, () => unmarshalCert(raw(field100(2n))), /^unknown curve 2 in certificate/);
  expectMalformed(t, () => unmarshalCert(raw(field100(BigInt.asUintN(64, -1n)))), /^unknown curve -1 in certificate/);
  expectMalformed(t, () => unmarshalCert(raw(new ProtoWriter().bytes(100, Buffer.from([1])).finish())), /invalid wire-format data: field 100: expected varint/);
  // Go reads the enum as int32: 2^32 + 1 is P256, and the re-encoding (what is signed and hashed) is the canonical one.
  const wide = unmarshalCert(raw(field100(2n ** 32n + 1n)));
  t.equal(wide.curve, 'P256');
  t.equal(wide.fingerprint(), host.fingerprint(), 'fingerprint over the canonical re-encoding, as Go');
  // An explicit 0 is CURVE25519: the certificate then is a 25519 one whose ECDSA signature cannot verify.
  const zero = unmarshalCert(raw(field100(0n)));
  t.equal(zero.curve, 'CURVE25519');
  t.notOk(zero.checkSignature(cert('ca-111').details.publicKey), 'read as 25519: the signature no longer verifies');
  // Two curve fields: the last wins, as protobuf has it.
  t.equal(unmarshalCert(raw(Buffer.concat([field100(0n), field100(1n)]))).curve, 'P256');
  // Every truncation is refused or reads as a different (unverifiable) certificate; none throws anything but CertError.
  const bytes = host.marshal();
  const { pool } = loadCAPool(text('ca-111.crt'), NOW);
  for (let cut = 0; cut < bytes.length; cut++) {
    try {
      const c = unmarshalCert(bytes.subarray(0, cut));
      t.throws(() => pool.verify(c, NOW), { name: 'CertError' }, `cut at ${cut}: does not verify`);
    } catch (err) {
      if (!(err instanceof CertError)) t.fail(`cut at ${cut}: ${String(err)}`);
    }
  }
  // A signature that is not DER: fails verification, and has no alternate form.
  const junk = new NebulaCertificate(host.details, Buffer.from('3006020101020101ff', 'hex'));
  t.notOk(junk.checkSignature(cert('ca-111').details.publicKey));
  t.throws(() => junk.alternateFingerprint(), { message: /^could not calculate alternate fingerprint: / });
  const blocking = loadCAPool(text('ca-111.crt'), NOW).pool;
  blocking.blocklistFingerprint('00'.repeat(32));
  t.throws(() => blocking.verify(junk, NOW), { message: 'certificate signature did not match' }, 'the blocklist check survives it');
});

t.test('print-cert (1.6.1\'s layout) shows a v1 P256 certificate\'s curve as Go 1.9 does', async (t) => {
  const host = cert('host-193');
  const p = printed('host-193');
  const json = certToJsonValue(host) as { details: Record<string, unknown> };
  t.same(Object.keys(json.details), ['curve', 'groups', 'ips', 'isCa', 'issuer', 'name', 'notAfter', 'notBefore', 'publicKey', 'subnets'], 'Go 1.9\'s keys, in its sorted order');
  t.equal(json.details.curve, 'P256');
  t.same(json.details.ips, p.details.networks);
  t.match(certToText(host), /\t\tPublic key: 04[0-9a-f]{128}\n\t\tCurve: P256\n\t\}\n/, 'the Curve line follows the public key');
});
