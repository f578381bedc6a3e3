/**
 * The CA pool remembers leaves whose signature and CA constraints passed (by fingerprint, with their signer), so a
 * peer handshaking again (a retransmitted stage 1, a re-key, a reconnect) costs no second signature check. Everything
 * else is checked at every use, as Go 1.11's VerifyCachedCertificate does: blocklist (both P256 forms), the CA still
 * in the pool, the CA's and the leaf's validity at `now`. Another key or signature is another fingerprint; a reload
 * is a new pool; the memory is bounded. And the CA key KeyObjects kept for signature checks stay bounded too.
 */
import t from 'tap';
import {
  CAPool,
  generateP256KeyPair,
  generateX25519KeyPair,
  marshalCertForHandshake,
  NebulaCertificate,
  signCert,
  unmarshalCert,
  validateHandshakeCert,
} from '../../src/shared/pki';
import { VERIFY_KEY_CACHE_SIZE, verifyKeyCacheSize } from '../../src/shared/pki/verify-key-cache';
import { parseCidr } from '../../src/shared/util/ipv4';
import { certError, makeCA, makeHost, trustedHost } from './helpers';

const code = (fn: () => unknown): string | undefined => certError(fn, true);

/** `cert` with its signature check counted (and answered by the real one). */
function counted(cert: NebulaCertificate): { cert: NebulaCertificate; checks: () => number } {
  let n = 0;
  const real = cert.checkSignature.bind(cert);
  cert.checkSignature = (key) => {
    n++;
    return real(key);
  };
  return { cert, checks: () => n };
}

t.test('a leaf verified once is not signature-checked again, in this pool only', async (t) => {
  const { ca, pool, host } = trustedHost();
  const first = counted(host.cert);
  t.equal(pool.verify(first.cert), ca.cert);
  t.equal(first.checks(), 1, 'the first verification checks the signature');
  t.equal(pool.verifiedCount, 1);
  t.equal(pool.verify(first.cert), ca.cert);
  t.equal(first.checks(), 1, 'the second does not');

  // The same bytes in another object (what each handshake makes): found by fingerprint.
  const again = counted(unmarshalCert(host.cert.marshal()));
  t.equal(pool.verify(again.cert), ca.cert);
  t.equal(again.checks(), 0);

  // A reload builds a new pool: nothing remembered there.
  const reloaded = new CAPool();
  reloaded.addCA(ca.cert);
  const fresh = counted(unmarshalCert(host.cert.marshal()));
  t.equal(reloaded.verify(fresh.cert), ca.cert);
  t.equal(fresh.checks(), 1);
});

t.test('what Go checks at every use is still checked for a remembered leaf', async (t) => {
  const { ca, pool, host } = trustedHost();
  pool.verify(host.cert);
  const d = host.cert.details;
  t.equal(code(() => pool.verify(host.cert, d.notAfter + 1)), 'expired', 'expiry, at each use');
  t.equal(code(() => pool.verify(host.cert, d.notBefore - 1)), 'expired', 'not yet valid');
  t.equal(code(() => pool.verify(host.cert, ca.cert.details.notAfter + 10)), 'root-expired');
  t.equal(code(() => pool.verify(host.cert)), undefined, 'and valid again now');

  pool.blocklistFingerprint(host.cert.fingerprint());
  t.equal(code(() => pool.verify(host.cert)), 'blocklisted', 'a blocklist entry added after');
  pool.blocklist.clear();

  pool.cas.delete(ca.cert.fingerprint());
  t.equal(code(() => pool.verify(host.cert)), 'unknown-ca', 'a CA gone from the pool');
  // The same CA back as another object: remembered under the old object, so checked again (and valid).
  const sameCa = unmarshalCert(ca.cert.marshal());
  pool.addCA(sameCa);
  const back = counted(host.cert);
  t.equal(pool.verify(back.cert), sameCa);
  t.equal(back.checks(), 1, 'the signature is checked against the CA now in the pool');
});

t.test('another static key or another signature is another fingerprint: checked, and refused', async (t) => {
  const { ca, pool, host } = trustedHost();
  const wire = marshalCertForHandshake(host.cert);
  t.equal(validateHandshakeCert(wire, host.cert.details.publicKey, pool).fingerprint(), host.cert.fingerprint());
  t.equal(pool.verifiedCount, 1);
  // The certificate a peer sends, with a Noise static key that is not the certificate's.
  t.equal(code(() => validateHandshakeCert(wire, generateX25519KeyPair().publicKey, pool)), 'signature-mismatch');
  const forgedSignature = Buffer.from(host.cert.signature);
  forgedSignature[0]! ^= 1;
  t.equal(code(() => pool.verify(new NebulaCertificate(host.cert.details, forgedSignature))), 'signature-mismatch');
  t.equal(pool.verifiedCount, 1, 'nothing refused is remembered');
});

t.test('P256: a remembered leaf is refused when the other signature form is blocklisted', async (t) => {
  const caKeys = generateP256KeyPair();
  const now = Math.floor(Date.now() / 1000);
  const caCert = signCert(
    { name: 'p256 ca', groups: [], ips: [], subnets: [], notBefore: now - 60, notAfter: now + 3600, publicKey: caKeys.publicKey, isCA: true, issuer: '', curve: 'P256' },
    caKeys.privateKey,
  );
  const pool = new CAPool();
  pool.addCA(caCert);
  const host = signCert(
    { name: 'p256 host', groups: [], ips: [parseCidr('10.1.2.3/16')!], subnets: [], notBefore: now - 30, notAfter: now + 1800, publicKey: generateP256KeyPair().publicKey, isCA: false, issuer: caCert.fingerprint(), curve: 'P256' },
    caKeys.privateKey,
  );
  t.equal(pool.verify(host), caCert);
  pool.blocklistFingerprint(host.alternateFingerprint());
  t.equal(code(() => pool.verify(host)), 'blocklisted');
});

t.test('the remembered leaves are bounded, the least recently used forgotten first', async (t) => {
  const ca = makeCA();
  const pool = new CAPool(3);
  pool.addCA(ca.cert);
  const [h0, h1, h2, h3] = Array.from({ length: 4 }, (_, i) => counted(makeHost(ca, { name: `h${i}` }).cert));
  for (const h of [h0!, h1!, h2!]) pool.verify(h.cert);
  pool.verify(h0!.cert); // used again: now the most recent
  pool.verify(h3!.cert);
  t.equal(pool.verifiedCount, 3);
  pool.verify(h0!.cert);
  t.equal(h0!.checks(), 1, 'h0 is still known');
  pool.verify(h1!.cert);
  t.equal(h1!.checks(), 2, 'h1 was forgotten: checked again');
  t.equal(pool.verifiedCount, 3);
});

t.test('the CA keys kept for signature checks are bounded', async (t) => {
  const pool = new CAPool();
  for (let i = 0; i < VERIFY_KEY_CACHE_SIZE + 6; i++) {
    const ca = makeCA({ name: `ca ${i}` });
    pool.addCA(ca.cert); // checks the self-signature with the CA's key
    t.equal(pool.verify(makeHost(ca).cert), ca.cert);
  }
  t.equal(verifyKeyCacheSize(), VERIFY_KEY_CACHE_SIZE);
});
