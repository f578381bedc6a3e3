/**
 * Signing v2 certificates (Ed25519 and P256, low-s), the P256 helpers and the key PEM banners of nebula 1.11.
 * Certificates signed here must read back identically and verify; refusals carry Go's wording.
 */
import t from 'tap';
import {
  CertError,
  ECDSA_P256_PRIVATE_BANNER,
  P256_N,
  certV2PublicKeyPem,
  encodeEcdsaSignature,
  generateEd25519KeyPair,
  generateP256KeyPair,
  generateX25519KeyPair,
  isLowS,
  marshalPrivateKeyPem,
  marshalPublicKeyPem,
  marshalSigningPrivateKeyPem,
  marshalSigningPublicKeyPem,
  normalizeP256Signature,
  p256SharedSecret,
  p256Sign,
  p256Verify,
  parseEcdsaSignature,
  parsePrefix,
  pemEncode,
  signCertV2,
  swapP256Signature,
  unmarshalCertV2,
  unmarshalPrivateKeyPem,
  unmarshalPublicKeyPem,
  unmarshalSigningPrivateKeyPem,
  unmarshalSigningPublicKeyPem,
  type Curve,
  type IpPrefix,
  type NebulaCertificateV2,
  type TbsCertV2,
} from '../../../src/shared/pki';
import { fixtureCert, fixtureText } from './fixtures';

const nets = (...list: string[]): IpPrefix[] => list.map((c) => parsePrefix(c)!);
const NOW = 1_800_000_000;

interface Made {
  cert: NebulaCertificateV2;
  key: Buffer;
}

function makeCA(curve: Curve, over: Partial<TbsCertV2> = {}): Made {
  const kp = curve === 'P256' ? generateP256KeyPair() : generateEd25519KeyPair();
  const tbs: TbsCertV2 = { name: 'ca', networks: [], unsafeNetworks: [], groups: [], isCA: true, notBefore: NOW - 3600, notAfter: NOW + 3600, publicKey: kp.publicKey, curve, ...over };
  return { cert: signCertV2(tbs, undefined, curve, kp.privateKey), key: kp.privateKey };
}

function hostTbs(ca: Made, over: Partial<TbsCertV2> = {}): TbsCertV2 {
  const curve = ca.cert.curve;
  const kp = curve === 'P256' ? generateP256KeyPair() : generateX25519KeyPair();
  return {
    name: 'host',
    networks: nets('10.1.2.3/16', 'fd00::3/64'),
    unsafeNetworks: nets('192.168.7.0/24', 'fd99::/64'),
    groups: ['a', 'b'],
    isCA: false,
    notBefore: NOW - 60,
    notAfter: NOW + 60,
    publicKey: kp.publicKey,
    curve,
    ...over,
  };
}

for (const curve of ['CURVE25519', 'P256'] as const) {
  t.test(`${curve}: signed certificates read back identically and verify`, async (t) => {
    const ca = makeCA(curve, { groups: ['a', 'b', 'c'], networks: nets('10.0.0.0/8', 'fd00::/16') });
    const host = signCertV2(hostTbs(ca), ca.cert, curve, ca.key);
    for (const c of [ca.cert, host]) {
      const back = unmarshalCertV2(c.marshal());
      t.same(back.marshal(), c.marshal(), `${c.details.name}: byte-identical round trip`);
      t.same(back.details, c.details, `${c.details.name}: same details`);
      t.equal(back.fingerprint(), c.fingerprint(), `${c.details.name}: same fingerprint`);
      t.equal(back.curve, curve);
    }
    t.ok(ca.cert.checkSignature(ca.cert.publicKey), 'CA is self-signed');
    t.ok(host.checkSignature(ca.cert.publicKey), 'host verifies with the CA');
    t.notOk(host.checkSignature(makeCA(curve).cert.publicKey), 'not with another CA');
    t.equal(host.details.issuer, ca.cert.fingerprint());
    t.doesNotThrow(() => ca.cert.verifyPrivateKey(curve, ca.key));
  });
}

t.test('P256 signatures are always low-s, and the high-s twin verifies as Go lets it', async (t) => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const msg = Buffer.from('nebula');
  let highSeen = 0;
  for (let i = 0; i < 24; i++) {
    const sig = p256Sign(privateKey, msg);
    t.ok(isLowS(sig), `signature ${i} is low-s`);
    t.ok(p256Verify(publicKey, msg, sig), `signature ${i} verifies`);
    const twin = swapP256Signature(sig);
    if (!isLowS(twin)) highSeen++;
    t.ok(p256Verify(publicKey, msg, twin), `its twin ${i} verifies`);
    t.same(normalizeP256Signature(twin), sig, 'normalizing the twin gives the signature back');
    t.same(swapP256Signature(twin), sig, 'swap is an involution');
  }
  t.equal(highSeen, 24, 'every twin is high-s');
  t.notOk(p256Verify(publicKey, Buffer.from('nebulb'), p256Sign(privateKey, msg)), 'other message');
});

t.test('P256 verification is as strict as Go: uncompressed keys only, strict DER, r and s in range', async (t) => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const msg = Buffer.from('strict');
  const sig = p256Sign(privateKey, msg);
  t.ok(p256Verify(publicKey, msg, sig));
  const compressed = Buffer.concat([Buffer.from([2 + (publicKey[64]! & 1)]), publicKey.subarray(1, 33)]);
  t.notOk(p256Verify(compressed, msg, sig), 'a compressed key is refused (OpenSSL alone would take it)');
  const offCurve = Buffer.from(publicKey);
  offCurve[64]! ^= 1;
  t.notOk(p256Verify(offCurve, msg, sig), 'a point off the curve');
  const { r, s } = parseEcdsaSignature(sig);
  t.notOk(p256Verify(publicKey, msg, Buffer.concat([sig, Buffer.from([0])])), 'trailing byte');
  const padded = Buffer.from(`3046022100${r.toString(16).padStart(64, '0')}0221${s.toString(16).padStart(66, '0')}`, 'hex');
  t.notOk(p256Verify(publicKey, msg, padded), 'non-minimal INTEGERs');
  t.throws(() => parseEcdsaSignature(padded), { name: 'P256Error', message: /not minimally encoded/ });
  t.notOk(p256Verify(publicKey, msg, encodeEcdsaSignature({ r, s: s + P256_N })), 's + n');
  t.notOk(p256Verify(publicKey, msg, encodeEcdsaSignature({ r: r + P256_N, s })), 'r + n');
  t.throws(() => swapP256Signature(encodeEcdsaSignature({ r, s: P256_N })), { message: /s is out of range/ });
});

t.test('P256 ECDH agrees both ways and refuses compressed keys', async (t) => {
  const a = generateP256KeyPair();
  const b = generateP256KeyPair();
  const ab = p256SharedSecret(a.privateKey, b.publicKey);
  t.equal(ab.length, 32);
  t.same(ab, p256SharedSecret(b.privateKey, a.publicKey));
  t.throws(() => p256SharedSecret(a.privateKey, b.publicKey.subarray(0, 33)), { name: 'P256Error' });
});

t.test('signing refuses what Go refuses, and what Go could not read back', async (t) => {
  const ca = makeCA('CURVE25519', { groups: ['a', 'b'], networks: nets('10.0.0.0/8', 'fd00::/16'), unsafeNetworks: nets('192.168.0.0/16', 'fd99::/16') });
  // signer null: self-signed
  const fail = (over: Partial<TbsCertV2>, message: string, signer: Made | null = ca, curve: Curve = 'CURVE25519'): void => {
    t.throws(() => signCertV2(hostTbs(ca, over), signer?.cert, curve, ca.key), { name: 'CertError', message }, message);
  };
  fail({}, "curve in cert and private key supplied don't match", ca, 'P256');
  fail({ isCA: true }, 'can not sign a CA certificate with another');
  fail({}, 'self signed certificates must have IsCA set to true', null);
  fail({ groups: ['a', 'z'] }, 'certificate contained a group not present on the signing ca: z');
  fail({ networks: nets('11.0.0.1/8') }, 'certificate contained a network assignment outside the limitations of the signing ca: 11.0.0.1/8');
  fail({ unsafeNetworks: nets('172.16.0.0/12') }, 'certificate contained an unsafe network assignment outside the limitations of the signing ca: 172.16.0.0/12');
  fail({ notAfter: NOW + 7200 }, 'certificate expires after signing certificate');
  fail({ networks: [] }, 'non-CA certificate must contain at least 1 network');
  fail({ networks: nets('10.1.2.3/16', '10.1.2.3/16') }, 'duplicate network detected: 10.1.2.3/16');
  fail({ networks: nets('10.1.2.3/16'), unsafeNetworks: nets('fd99::/64') }, 'IPv6 unsafe networks require an IPv6 address assignment: fd99::/64');
  fail({ networks: nets('fd00::3/64'), unsafeNetworks: nets('192.168.1.0/24') }, 'IPv4 unsafe networks require an IPv4 address assignment: 192.168.1.0/24');
  const open = makeCA('CURVE25519');
  const failOpen = (over: Partial<TbsCertV2>, message: string): void => {
    t.throws(() => signCertV2(hostTbs(open, over), open.cert, 'CURVE25519', open.key), { name: 'CertError', message }, message);
  };
  failOpen({ networks: nets('0.0.0.0/8') }, 'non-CA certificates must not use the zero address as a network: 0.0.0.0/8');
  failOpen({ networks: nets('::ffff:10.1.2.3/120'), unsafeNetworks: [] }, '4in6 networks are not allowed: ::ffff:10.1.2.3/120');
  failOpen({ name: '' }, 'certificate name must be 1..253 bytes, got 0');
  failOpen({ name: 'x'.repeat(254) }, 'certificate name must be 1..253 bytes, got 254');
  failOpen({ groups: ['a', ''] }, 'certificate groups must not be empty strings');
  failOpen({ publicKey: Buffer.alloc(0) }, 'invalid public key');
  t.throws(() => signCertV2(hostTbs(open), open.cert, 'CURVE25519', Buffer.alloc(12)), { name: 'CertError', message: /invalid signing key/ });
  t.ok(signCertV2(hostTbs(open, { name: 'x'.repeat(253) }), open.cert, 'CURVE25519', open.key), 'a 253-byte name is fine');
});

t.test('a host signed here with the fixture CA keys verifies against the nebula-cert CAs', async (t) => {
  for (const name of ['ca-25519', 'ca-p256'] as const) {
    const ca = fixtureCert(name);
    const { key, curve } = unmarshalSigningPrivateKeyPem(fixtureText(`${name}.key`));
    const tbs = hostTbs({ cert: ca, key }, { notBefore: ca.details.notBefore + 1, notAfter: ca.details.notAfter - 1 });
    const host = signCertV2(tbs, ca, curve, key);
    t.ok(unmarshalCertV2(host.marshal()).checkSignature(ca.publicKey), `${name}: verifies`);
  }
});

t.test('key PEM banners of nebula 1.11: round trips, sizes and refusals in Go wording', async (t) => {
  const p = generateP256KeyPair();
  const x = generateX25519KeyPair();
  const e = generateEd25519KeyPair();
  t.match(marshalSigningPrivateKeyPem('P256', p.privateKey), /^-----BEGIN NEBULA ECDSA P256 PRIVATE KEY-----\n/);
  t.match(marshalPrivateKeyPem('P256', p.privateKey), /^-----BEGIN NEBULA P256 PRIVATE KEY-----\n/);
  t.match(marshalPublicKeyPem('P256', p.publicKey), /^-----BEGIN NEBULA P256 PUBLIC KEY-----\n/);
  t.match(marshalSigningPublicKeyPem('P256', p.publicKey), /^-----BEGIN NEBULA ECDSA P256 PUBLIC KEY-----\n/);
  t.match(marshalPrivateKeyPem('CURVE25519', x.privateKey), /^-----BEGIN NEBULA X25519 PRIVATE KEY-----\n/);
  t.match(marshalSigningPrivateKeyPem('CURVE25519', e.privateKey), /^-----BEGIN NEBULA ED25519 PRIVATE KEY-----\n/);
  t.same(unmarshalPrivateKeyPem(marshalPrivateKeyPem('P256', p.privateKey)), { key: p.privateKey, curve: 'P256', rest: '' });
  t.same(unmarshalPublicKeyPem(marshalPublicKeyPem('P256', p.publicKey)).key, p.publicKey);
  t.same(unmarshalPublicKeyPem(marshalPublicKeyPem('CURVE25519', x.publicKey)).curve, 'CURVE25519');
  t.same(unmarshalSigningPublicKeyPem(marshalSigningPublicKeyPem('P256', p.publicKey)).curve, 'P256');
  t.same(unmarshalSigningPrivateKeyPem(marshalSigningPrivateKeyPem('CURVE25519', e.privateKey)).key, e.privateKey);
  const refuse = (fn: () => unknown, message: string): void => {
    t.throws(fn, { name: 'CertError', message }, message);
  };
  refuse(() => unmarshalPublicKeyPem(marshalPublicKeyPem('P256', p.publicKey.subarray(0, 33))), 'key was not 65 bytes, is invalid P256 public key');
  refuse(() => unmarshalPrivateKeyPem(marshalSigningPrivateKeyPem('P256', p.privateKey)), 'bytes did not contain a proper private key banner');
  refuse(() => unmarshalSigningPrivateKeyPem(pemEncode(ECDSA_P256_PRIVATE_BANNER, Buffer.alloc(31))), 'key was not 32 bytes, is invalid ECDSA P256 private key');
  refuse(() => unmarshalSigningPrivateKeyPem(pemEncode('NEBULA ED25519 ENCRYPTED PRIVATE KEY', Buffer.alloc(80))), 'private key must be decrypted');
  refuse(() => unmarshalSigningPrivateKeyPem(pemEncode('constructor', Buffer.alloc(32))), 'bytes did not contain a proper Ed25519/ECDSA private key banner');
  refuse(() => unmarshalPrivateKeyPem('no pem here'), 'input did not contain a valid PEM encoded block');
  t.match(certV2PublicKeyPem(fixtureCert('ca-p256')), /^-----BEGIN NEBULA ECDSA P256 PUBLIC KEY-----/, 'a CA key is a signing key');
  t.match(certV2PublicKeyPem(fixtureCert('host-v4')), /^-----BEGIN NEBULA X25519 PUBLIC KEY-----/, 'a host key is a key-agreement key');
  t.ok(CertError);
});
