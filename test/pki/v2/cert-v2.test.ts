/**
 * v2 certificates made by nebula-cert 1.11.0 (committed fixtures): decode, byte-identical re-encoding, fingerprints,
 * signatures, details, print renderings, the handshake form, key pairs and P256 signature forms, all checked against
 * what nebula-cert printed for the same files.
 */
process.env.TZ = 'UTC'; // the fixtures' prints were taken with TZ=UTC
import t from 'tap';
import {
  CertError,
  NebulaCertificate,
  NebulaCertificateV2,
  certV2FromHandshake,
  certV2ToJson,
  certV2ToPem,
  certV2ToText,
  checkCAConstraintsV2,
  formatPrefix,
  isLowS,
  marshalDetailsV2,
  pemDecode,
  swapP256Signature,
  unmarshalAnyCertsFromPem,
  unmarshalCertV2,
  unmarshalCertV2FromPem,
  unmarshalPrivateKeyPem,
  unmarshalSigningPrivateKeyPem,
  ed25519Sign,
} from '../../../src/shared/pki';
import { derElement } from '../../../src/shared/pki/v2/der';
import { SIGNER, V2_CERTS, fixtureCert, fixtureJson, fixtureText } from './fixtures';

t.test('every fixture re-encodes byte-identically and prints as nebula-cert 1.11.0 printed it', async (t) => {
  for (const name of V2_CERTS) {
    const text = fixtureText(`${name}.crt`);
    const cert = unmarshalCertV2FromPem(text).cert;
    const go = fixtureJson(name);
    t.equal(go.length, 1, `${name}: one certificate`);
    t.same(cert.marshal(), pemDecode(text)!.block.bytes, `${name}: marshal() is the file's DER`);
    t.equal(certV2ToPem(cert), text, `${name}: PEM text identical`);
    t.equal(cert.fingerprint(), go[0]!.fingerprint, `${name}: fingerprint`);
    t.equal(cert.curve, go[0]!.curve, `${name}: curve`);
    t.equal(cert.publicKey.toString('hex'), go[0]!.publicKey, `${name}: public key`);
    t.equal(cert.signature.toString('hex'), go[0]!.signature, `${name}: signature`);
    t.equal(`[${certV2ToJson(cert)}]\n`, fixtureText(`${name}.json`), `${name}: print -json byte-identical`);
    t.equal(`${certV2ToText(cert)}\n`, fixtureText(`${name}.txt`), `${name}: print byte-identical`);
  }
});

t.test('signatures: CAs are self-signed, hosts verify with their CA only', async (t) => {
  const cas = V2_CERTS.filter((n) => n.startsWith('ca-'));
  for (const name of V2_CERTS) {
    const cert = fixtureCert(name);
    const signer = SIGNER[name] ?? name;
    for (const ca of cas) {
      const key = fixtureCert(ca).publicKey;
      t.equal(cert.checkSignature(key), ca === signer, `${name} ${ca === signer ? 'verifies' : 'does not verify'} with ${ca}`);
    }
    if (SIGNER[name]) t.equal(cert.details.issuer, fixtureCert(signer).fingerprint(), `${name}: issuer is its CA's fingerprint`);
    else t.equal(cert.details.issuer, '', `${name}: a CA has no issuer`);
  }
  // A flipped bit anywhere in the signed bytes or the signature fails the check.
  const host = fixtureCert('host-dual');
  const caKey = fixtureCert('ca-25519').publicKey;
  const der = host.marshal();
  for (const at of [6, 40, der.length - 70, der.length - 1]) {
    const bad = Buffer.from(der);
    bad[at]! ^= 0x01;
    let verified = false;
    try {
      verified = unmarshalCertV2(bad).checkSignature(caKey);
    } catch (err) {
      t.ok(err instanceof CertError, `flip at ${at}: refused by the decoder with a CertError`);
    }
    t.notOk(verified, `flip at ${at}: does not verify`);
  }
});

t.test('details of the dual-stack, multi-network, restricted and P256 fixtures', async (t) => {
  const dual = fixtureCert('host-dual');
  t.same(
    { ...dual.details, networks: dual.details.networks.map(formatPrefix), unsafeNetworks: dual.details.unsafeNetworks.map(formatPrefix) },
    {
      name: 'host-dual',
      networks: ['192.168.100.2/24', 'fd00::2/64'],
      unsafeNetworks: ['10.1.0.0/16', 'fd99::/64'],
      groups: ['a', 'b'],
      isCA: false,
      notBefore: Date.parse(fixtureJson('host-dual')[0]!.details.notBefore as string) / 1000,
      notAfter: Date.parse(fixtureJson('host-dual')[0]!.details.notAfter as string) / 1000,
      issuer: fixtureCert('ca-25519').fingerprint(),
    },
  );
  t.equal(dual.version, 2);
  t.equal(dual.publicKey.length, 32);
  // nebula-cert sorts networks (IPv4 first) whatever the order they were given in.
  t.same(fixtureCert('host-multi').details.networks.map(formatPrefix), ['10.0.0.5/8', '172.16.0.5/12', 'fd00::5/64', 'fd01::5/48']);
  t.same(fixtureCert('host-v6').details.networks.map(formatPrefix), ['fd00::1/64']);
  const ca = fixtureCert('ca-restricted');
  t.ok(ca.details.isCA);
  t.same(ca.details.groups, ['ops', 'web', 'db']);
  t.same(ca.details.networks.map(formatPrefix), ['10.128.0.0/9', 'fd00:1::/32']);
  t.same(ca.details.unsafeNetworks.map(formatPrefix), ['192.168.0.0/16', 'fd99::/16']);
  const p = fixtureCert('host-p256');
  t.equal(p.curve, 'P256');
  t.equal(p.publicKey.length, 65, 'P256 keys are uncompressed points');
  t.equal(p.publicKey[0], 0x04);
  t.equal(fixtureCert('ca-p256').publicKey[0], 0x04);
  t.equal(fixtureCert('host-escape').details.name, 'web<&>ü.example');
});

t.test('expiry is inclusive at both ends', async (t) => {
  const c = fixtureCert('host-v4');
  const { notBefore, notAfter } = c.details;
  t.same([c.expired(notBefore - 1), c.expired(notBefore), c.expired(notAfter), c.expired(notAfter + 1)], [true, false, false, true]);
  t.notOk(c.expired(new Date((notBefore + 10) * 1000)), 'a Date works too');
});

t.test('a restricted CA: its host is inside the limits, others are refused with Go wording', async (t) => {
  const ca = fixtureCert('ca-restricted');
  const host = fixtureCert('host-restricted');
  t.doesNotThrow(() => checkCAConstraintsV2(ca.details, host.details));
  const outside = fixtureCert('host-dual'); // 192.168.100.2/24 is not in 10.128.0.0/9
  t.throws(() => checkCAConstraintsV2(ca.details, { ...host.details, networks: outside.details.networks }), {
    message: 'certificate contained a network assignment outside the limitations of the signing ca: 192.168.100.2/24',
  });
  t.throws(() => checkCAConstraintsV2(ca.details, { ...host.details, groups: ['ops', 'sales'] }), {
    message: 'certificate contained a group not present on the signing ca: sales',
  });
  t.throws(() => checkCAConstraintsV2(ca.details, { ...host.details, unsafeNetworks: outside.details.unsafeNetworks }), {
    message: 'certificate contained an unsafe network assignment outside the limitations of the signing ca: 10.1.0.0/16',
  });
  t.throws(() => checkCAConstraintsV2(ca.details, { ...host.details, notAfter: ca.details.notAfter + 1 }), { message: 'certificate expires after signing certificate' });
  t.throws(() => checkCAConstraintsV2(ca.details, { ...host.details, notBefore: ca.details.notBefore - 1 }), {
    message: 'certificate is valid before the signing certificate',
  });
});

t.test('the handshake form drops curve and key; recombining with the static key gives the same certificate', async (t) => {
  for (const name of ['host-dual', 'host-p256'] as const) {
    const cert = fixtureCert(name);
    const hs = cert.marshalForHandshake();
    t.ok(hs.length < cert.marshal().length - cert.publicKey.length, `${name}: shorter than the full form`);
    const back = certV2FromHandshake(hs, cert.publicKey, cert.curve);
    t.equal(back.fingerprint(), cert.fingerprint(), `${name}: same fingerprint`);
    t.same(back.marshal(), cert.marshal(), `${name}: same full encoding`);
    t.ok(back.checkSignature(fixtureCert(SIGNER[name]!).publicKey), `${name}: still verifies`);
    const other = name === 'host-p256' ? 'CURVE25519' : 'P256';
    // The handshake form has no curve field: the handshake's curve is taken, and the signature no longer holds.
    const wrong = certV2FromHandshake(hs, cert.publicKey, other);
    t.equal(wrong.curve, other, `${name}: takes the handshake's curve`);
    t.notOk(wrong.checkSignature(fixtureCert(SIGNER[name]!).publicKey), `${name}: which breaks the signature`);
    t.throws(() => certV2FromHandshake(cert.marshal(), cert.publicKey, cert.curve), { message: 'certificate has unexpected pubkey present' });
    t.throws(() => certV2FromHandshake(hs, Buffer.alloc(0), cert.curve), { message: 'no peer static key was present' });
  }
  // A curve field in the bytes wins over the handshake's curve, and then the two must agree.
  const p = fixtureCert('host-p256');
  const withCurve = derElement(0x30, p.rawDetails, derElement(0x81, Buffer.from([1])), derElement(0x83, p.signature));
  t.equal(certV2FromHandshake(withCurve, p.publicKey, 'P256').fingerprint(), p.fingerprint());
  t.throws(() => certV2FromHandshake(withCurve, p.publicKey, 'CURVE25519'), { message: 'certificate curve P256 does not match expected CURVE25519' });
});

t.test('key files pair with their certificates; mismatches are refused', async (t) => {
  for (const name of V2_CERTS) {
    const cert = fixtureCert(name);
    const text = fixtureText(`${name}.key`);
    const { key, curve } = cert.details.isCA ? unmarshalSigningPrivateKeyPem(text) : unmarshalPrivateKeyPem(text);
    t.equal(curve, cert.curve, `${name}: key curve`);
    t.doesNotThrow(() => cert.verifyPrivateKey(curve, key), `${name}: key pairs with cert`);
  }
  const host = fixtureCert('host-v4');
  const otherKey = unmarshalPrivateKeyPem(fixtureText('host-v6.key')).key;
  t.throws(() => host.verifyPrivateKey('CURVE25519', otherKey), { message: 'public key and private key are not a pair' });
  t.throws(() => host.verifyPrivateKey('P256', otherKey), { message: 'public key does not match private key curve' });
  t.throws(() => host.verifyPrivateKey('CURVE25519', Buffer.alloc(31, 1)), { message: 'invalid private key' });
  const pca = fixtureCert('ca-p256');
  t.throws(() => pca.verifyPrivateKey('P256', Buffer.alloc(32, 0xff)), { message: 'invalid private key' }, 'scalar >= n');
});

t.test('P256 signatures: fixtures are low-s; the high-s twin verifies and has the alternate fingerprint', async (t) => {
  const caKey = fixtureCert('ca-p256').publicKey;
  for (const name of ['ca-p256', 'host-p256'] as const) {
    const cert = fixtureCert(name);
    t.ok(isLowS(cert.signature), `${name}: nebula-cert 1.11 signs low-s`);
    const twinSig = swapP256Signature(cert.signature);
    t.notOk(isLowS(twinSig), `${name}: the swapped form is high-s`);
    const twin = new NebulaCertificateV2(cert.details, cert.rawDetails, cert.curve, cert.publicKey, twinSig);
    t.ok(twin.checkSignature(caKey), `${name}: the high-s form verifies too (as in Go)`);
    t.equal(twin.fingerprint(), cert.alternateFingerprint(), `${name}: alternate fingerprint is the twin's`);
    t.equal(twin.alternateFingerprint(), cert.fingerprint(), `${name}: and back`);
    t.not(twin.fingerprint(), cert.fingerprint());
    const reparsed = unmarshalCertV2(twin.marshal());
    t.equal(reparsed.fingerprint(), twin.fingerprint(), `${name}: the twin survives a round trip`);
  }
  t.equal(fixtureCert('host-v4').alternateFingerprint(), '', 'CURVE25519 has no alternate form');
});

t.test('networks are sorted for the details but the signed bytes are kept as received', async (t) => {
  const ca = fixtureCert('ca-25519');
  const caKey = unmarshalSigningPrivateKeyPem(fixtureText('ca-25519.key')).key;
  const host = fixtureCert('host-multi');
  const unsorted = { ...host.details, networks: [...host.details.networks].reverse() };
  const rawDetails = marshalDetailsV2(unsorted);
  const unsigned = new NebulaCertificateV2(unsorted, rawDetails, 'CURVE25519', host.publicKey, Buffer.alloc(0));
  const signed = new NebulaCertificateV2(unsorted, rawDetails, 'CURVE25519', host.publicKey, ed25519Sign(caKey, unsigned.signedBytes()));
  const decoded = unmarshalCertV2(signed.marshal());
  t.same(decoded.details.networks.map(formatPrefix), ['10.0.0.5/8', '172.16.0.5/12', 'fd00::5/64', 'fd01::5/48'], 'details sorted');
  t.same(decoded.rawDetails, rawDetails, 'raw details untouched');
  t.same(decoded.marshal(), signed.marshal(), 'byte-identical re-encoding');
  t.ok(decoded.checkSignature(ca.publicKey), 'signature over the received order verifies');
});

t.test('a CA bundle mixing v1 and v2 reads in order, with nebula-cert fingerprints', async (t) => {
  const certs = unmarshalAnyCertsFromPem(fixtureText('bundle-mixed.crt'));
  const go = fixtureJson('bundle-mixed');
  t.equal(certs.length, 3);
  t.ok(certs[0] instanceof NebulaCertificate, 'first is v1');
  t.ok(certs[1] instanceof NebulaCertificateV2 && certs[2] instanceof NebulaCertificateV2, 'then two v2');
  t.same(certs.map((c) => c.fingerprint()), go.map((g) => g.fingerprint));
  t.same(go.map((g) => g.version), [1, 2, 2]);
  t.throws(() => unmarshalCertV2FromPem(fixtureText('ca-v1.crt')), { message: 'bytes did not contain a proper nebula certificate v2 banner' });
  t.throws(() => unmarshalAnyCertsFromPem(fixtureText('ca-v1.key')), { message: 'bytes did not contain a proper certificate banner' });
});
