/**
 * The node's PKI with v2 certificates (issue 12): a CA pool mixing v1 and v2 CAs (nebula-cert 1.11.0's committed
 * fixtures) verifying both kinds as Go 1.11 does, the handshake's recombination in the payload's version, and a
 * pki.cert holding a v1 and a v2 certificate for one key (Go's CertState rules).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CertificateV2View,
  checkHostPki,
  generateP256KeyPair,
  generateX25519KeyPair,
  loadCAPool,
  loadHostPki,
  marshalX25519PrivateKey,
  parsePrefix,
  signCert,
  signCertV2,
  unmarshalCertificateFromPem,
  unmarshalEd25519PrivateKey,
  unmarshalSigningPrivateKeyPem,
  unmarshalX25519PrivateKey,
  validateHandshakeCert,
  certV2ToPem,
  type Certificate,
  type NebulaCertificateV2,
} from '../../src/shared/pki';
import { parseCidr } from '../../src/shared/util/ipv4';
import { certError } from './helpers';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'pki-v2');
const read = (f: string): string => readFileSync(path.join(FIXTURES, f), 'utf8');
const certOf = (name: string): Certificate => unmarshalCertificateFromPem(read(`${name}.crt`)).cert;
const v2Of = (name: string): NebulaCertificateV2 => (certOf(name) as CertificateV2View).v2;
const now = (): number => Math.floor(Date.now() / 1000);

const code = (fn: () => unknown): string | undefined => certError(fn);

/** A v1 host certificate signed by the fixture v1 CA (nebula-cert 1.11.0 made the CA). */
function v1Host(publicKey: Buffer, ip = '192.168.100.1/24'): Certificate {
  const ca = certOf('ca-v1');
  return signCert(
    { name: 'v1 host', ips: [parseCidr(ip)!], subnets: [], groups: [], notBefore: now() - 10, notAfter: now() + 3600, publicKey, isCA: false, issuer: ca.fingerprint() },
    unmarshalEd25519PrivateKey(read('ca-v1.key')).key,
  );
}

/** A v2 host certificate for `publicKey` signed by the fixture 25519 v2 CA. */
function v2Host(publicKey: Buffer, networks = ['192.168.100.1/24', 'fd00::1/64']): NebulaCertificateV2 {
  const ca = v2Of('ca-25519');
  const tbs = { name: 'v2 host', networks: networks.map((n) => parsePrefix(n)!), unsafeNetworks: [], groups: [], isCA: false, notBefore: now() - 10, notAfter: now() + 3600, publicKey, curve: 'CURVE25519' as const };
  return signCertV2(tbs, ca, 'CURVE25519', unmarshalSigningPrivateKeyPem(read('ca-25519.key')).key);
}

t.test('a pool of v1 and v2 CAs verifies both kinds', async (t) => {
  const { pool, expired } = loadCAPool(read('bundle-mixed.crt'));
  t.equal(pool.cas.size, 3, 'the v1, 25519 v2 and P256 v2 CAs of the bundle');
  t.same([...pool.cas.values()].map((c) => c.version).sort(), [1, 2, 2]);
  t.equal(expired.length, 0);
  for (const name of ['host-v4', 'host-v6', 'host-dual', 'host-multi', 'host-p256']) {
    const cert = certOf(name);
    t.equal(pool.verify(cert).fingerprint(), cert.details.issuer, `${name} (v2) verifies against its CA`);
  }
  const v1 = v1Host(generateX25519KeyPair().publicKey);
  t.equal(pool.verify(v1).version, 1, 'a v1 host verifies against the v1 CA of the same pool');
  t.equal(code(() => pool.verify(certOf('host-restricted'))), 'unknown-ca: could not find ca for the certificate', 'an unknown v2 CA');
  t.equal(code(() => pool.verify(certOf('host-v4'), now() + 200 * 365 * 86400)), 'root-expired: root certificate is expired');
  t.equal(code(() => pool.verify(certOf('ca-25519'))), 'is-ca: certificate is a CA certificate, not a host certificate');
});

t.test('v2 verification failures: blocklist (both P256 forms), curve, signature, constraints', async (t) => {
  const pool = loadCAPool(read('bundle-mixed.crt')).pool;
  const host = certOf('host-v4');
  pool.blocklistFingerprint(host.fingerprint());
  t.equal(code(() => pool.verify(host)), 'blocklisted: certificate is in the block list');

  const p256 = certOf('host-p256');
  const alternate = p256.alternateFingerprint();
  t.match(alternate, /^[0-9a-f]{64}$/);
  t.not(alternate, p256.fingerprint());
  pool.blocklistFingerprint(alternate);
  t.equal(code(() => pool.verify(p256)), 'blocklisted: certificate is in the block list', 'the other signature form of a blocklisted P256 cert');

  // A P256 certificate naming the 25519 CA as issuer (signed with a P256 key): the curves differ.
  const ca25519 = v2Of('ca-25519');
  const kp = generateP256KeyPair();
  const liar = { fingerprint: () => ca25519.fingerprint(), details: { notBefore: 0, notAfter: now() + 3600, groups: [], networks: [], unsafeNetworks: [] } };
  const tbs = { name: 'p', networks: [parsePrefix('10.9.0.2/16')!], unsafeNetworks: [], groups: [], isCA: false, notBefore: now() - 5, notAfter: now() + 60, publicKey: kp.publicKey, curve: 'P256' as const };
  const curveLiar = new CertificateV2View(signCertV2(tbs, liar, 'P256', kp.privateKey));
  t.equal(code(() => pool.verify(curveLiar)), 'constraints: certificate curve does not match CA');

  // Signed by another 25519 key than the issuer's.
  const forged = new CertificateV2View(signCertV2({ ...tbs, publicKey: generateX25519KeyPair().publicKey, curve: 'CURVE25519' }, liar, 'CURVE25519', unmarshalSigningPrivateKeyPem(read('ca-restricted.key')).key));
  t.equal(code(() => pool.verify(forged)), 'signature-mismatch: certificate signature did not match');

  // The restricted CA's own key, but networks outside what the CA allows: the pool applies the CA's constraints.
  const restricted = loadCAPool(read('ca-restricted.crt')).pool;
  const rca = v2Of('ca-restricted');
  const unrestricted = { fingerprint: () => rca.fingerprint(), details: { ...rca.details, networks: [], unsafeNetworks: [], groups: [] } };
  const outside = signCertV2(
    { ...tbs, networks: [parsePrefix('10.1.0.1/16')!], publicKey: generateX25519KeyPair().publicKey, curve: 'CURVE25519', notBefore: rca.details.notBefore + 1, notAfter: rca.details.notAfter - 1 },
    unrestricted,
    'CURVE25519',
    unmarshalSigningPrivateKeyPem(read('ca-restricted.key')).key,
  );
  t.match(code(() => restricted.verify(new CertificateV2View(outside))), /^constraints: certificate contained a network assignment outside the limitations of the signing ca: 10\.1\.0\.1\/16$/);
});

t.test('handshake recombination follows the payload\'s CertVersion and our curve', async (t) => {
  const pool = loadCAPool(read('bundle-mixed.crt')).pool;
  const host = v2Of('host-v4');
  const wire = host.marshalForHandshake();
  const ok = validateHandshakeCert(wire, host.publicKey, pool, new Date(), 2, 'CURVE25519');
  t.equal(ok.version, 2);
  t.equal(ok.fingerprint(), host.fingerprint(), 'the same certificate once the static key is put back');
  t.match(code(() => validateHandshakeCert(wire, host.publicKey, pool, new Date(), 1)), /^malformed: error unmarshaling cert: /, 'v2 bytes read as v1');
  t.equal(code(() => validateHandshakeCert(wire, host.publicKey, pool, new Date(), 3)), 'malformed: error unmarshaling cert: unknown certificate version 3');
  // The handshake form carries no curve for 25519: read with our curve (P256), as Go does, its CA's curve differs.
  t.equal(
    code(() => validateHandshakeCert(wire, host.publicKey, pool, new Date(), 2, 'P256')),
    'constraints: certificate validation failed: certificate curve does not match CA',
    'our curve is P256, the peer\'s CA 25519',
  );
  t.match(code(() => validateHandshakeCert(wire, generateX25519KeyPair().publicKey, pool, new Date(), 2)), /^signature-mismatch: certificate validation failed/, 'another static key');
  // A 1.6-era peer leaves CertVersion out (0): read as v1.
  const v1 = v1Host(generateX25519KeyPair().publicKey);
  t.equal(validateHandshakeCert(v1.marshalForHandshake(), v1.details.publicKey, pool, new Date(), 0).version, 1);
});

t.test('pki.cert with a v1 and a v2 certificate for one key', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-pki-v2-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kp = generateX25519KeyPair();
  const key = marshalX25519PrivateKey(kp.privateKey);
  const v1 = v1Host(kp.publicKey);
  const v2 = v2Host(kp.publicKey);
  const ca = read('bundle-mixed.crt');
  const both = v1.toPem() + certV2ToPem(v2);

  const dual = loadHostPki({ ca, cert: both, key });
  t.equal(dual.cert.initiatingVersion, 1, 'default initiating version with a v1 certificate: 1');
  t.equal(dual.cert.version, 1, 'reads as its default certificate');
  t.equal(dual.cert.forVersion(2)?.fingerprint(), v2.fingerprint());
  t.equal(dual.cert.vpnIp, parseCidr('192.168.100.1/24')!.ip);
  t.equal(loadHostPki({ ca, cert: both, key, initiatingVersion: 2 }).cert.version, 2, 'pki.initiating_version 2');
  t.same(checkHostPki({ ca, cert: both, key }), [], '-test finds nothing wrong');
  t.equal(dual.caPool.verify(dual.cert).version, 1, 'the pool verifies our state whole, answering with the default cert\'s CA');
  const v1Only = loadCAPool(read('ca-v1.crt')).pool;
  t.equal(code(() => v1Only.verify(dual.cert)), 'unknown-ca: could not find ca for the certificate', 'its v2 certificate is checked too');
  t.match(checkHostPki({ ca: read('ca-v1.crt'), cert: both, key }), [/^pki\.cert: certificate is not signed by any CA in pki\.ca/]);

  const v2only = loadHostPki({ ca, cert: read('host-v4.crt'), key: read('host-v4.key') });
  t.equal(v2only.cert.initiatingVersion, 2, 'only a v2 certificate: initiating version 2');
  t.same(v2only.privateKey, unmarshalX25519PrivateKey(read('host-v4.key')).key);

  t.equal(code(() => loadHostPki({ ca, cert: v1.toPem(), key, initiatingVersion: 3 })), 'malformed: pki.cert: unknown pki.initiating_version: 3');
  t.equal(code(() => loadHostPki({ ca, cert: certV2ToPem(v2), key, initiatingVersion: 1 })), 'malformed: pki.cert: can not use pki.initiating_version 1 without a v1 certificate in pki.cert');
  t.equal(code(() => loadHostPki({ ca, cert: both + certV2ToPem(v2), key })), 'malformed: pki.cert: v2 certificate already found in pki.cert');
  const otherKey = v2Host(generateX25519KeyPair().publicKey);
  t.match(code(() => loadHostPki({ ca, cert: v1.toPem() + certV2ToPem(otherKey), key })), /^key-mismatch: pki\.key: /, 'the key must fit both');
  const otherNet = v2Host(kp.publicKey, ['192.168.100.7/24']);
  t.equal(
    code(() => loadHostPki({ ca, cert: v1.toPem() + certV2ToPem(otherNet), key })),
    'malformed: pki.cert: v1 and v2 networks are not the same (192.168.100.1/24 and 192.168.100.7/24)',
  );
  t.match(code(() => loadHostPki({ ca, cert: read('host-v6.crt'), key: read('host-v6.key') })), /^no-ip: pki\.cert: certificate has no IPv4 network/, 'IPv6-only: a clear refusal');
  t.match(checkHostPki({ ca, cert: read('host-v6.crt'), key: read('host-v6.key') }), [/certificate has no IPv4 network/]);
  const p256 = loadHostPki({ ca, cert: read('host-p256.crt'), key: read('host-p256.key') });
  t.equal(p256.cert.curve, 'P256', 'a P256 certificate and key (nebula-cert 1.11.0) load');
  t.equal(p256.caPool.verify(p256.cert).curve, 'P256', 'and verify against the P256 CA');
  t.equal(code(() => loadHostPki({ ca, cert: read('host-p256.crt'), key })), 'key-mismatch: pki.key: public key does not match private key curve');
  t.equal(code(() => loadHostPki({ ca, cert: read('host-v4.crt'), key })), 'key-mismatch: pki.key: public key and private key are not a pair');
});
