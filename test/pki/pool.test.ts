/** CA pool loading and leaf verification at library level (nebula-spec §4.5), and loading a node's PKI. */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CAPool,
  loadCAPool,
  loadHostPki,
  marshalCertForHandshake,
  marshalEd25519PrivateKey,
  marshalX25519PrivateKey,
  validateHandshakeCert,
  verifyPrivateKey,
  generateX25519KeyPair,
} from '../../src/shared/pki';
import { certError, makeCA, makeHost, tempDir, trustedHost } from './helpers';

const now = (): number => Math.floor(Date.now() / 1000);

const code = (fn: () => unknown): string | undefined => certError(fn);

t.test('blocklist, lookup by fingerprint, and the order of checks', async (t) => {
  const ca = makeCA({ ips: ['10.0.0.0/8'] });
  const pool = new CAPool();
  const added = pool.addCA(ca.cert);
  t.equal(added.fingerprint, ca.cert.fingerprint());
  t.equal(added.expired, false);
  t.equal(pool.getCA(ca.cert.fingerprint().toUpperCase()), ca.cert);
  const host = makeHost(ca, { ips: ['10.5.0.1/16'] });
  t.equal(pool.verify(host.cert), ca.cert, 'verify returns the signing CA');
  pool.blocklistFingerprint(host.cert.fingerprint());
  t.equal(code(() => pool.verify(host.cert)), 'blocklisted: certificate is in the block list');
  t.ok(pool.isBlocklisted(host.cert));
  // Blocklisting is per leaf: another host of the same CA still verifies.
  t.equal(code(() => pool.verify(makeHost(ca, { ips: ['10.5.0.2/16'] }).cert)), undefined);
  // The blocklist is checked first, even before expiry.
  const expired = makeHost(ca, { notAfter: now() - 10 });
  pool.blocklistFingerprint(expired.cert.fingerprint());
  t.equal(code(() => pool.verify(expired.cert)), 'blocklisted: certificate is in the block list');
  // Root expiry is reported before leaf expiry.
  const oldCa = makeCA({ notBefore: now() - 7200, notAfter: now() - 3600 });
  pool.addCA(oldCa.cert);
  t.equal(code(() => pool.verify(makeHost(oldCa).cert)), 'root-expired: root certificate is expired');
  t.equal(code(() => pool.verify(makeHost(ca, { notAfter: now() - 1 }).cert)), 'expired: certificate is expired');
  // Verification time is a parameter: the same cert is valid before its NotAfter.
  const shortLived = makeHost(ca, { notAfter: now() + 100 });
  t.equal(code(() => pool.verify(shortLived.cert, now() + 101)), 'expired: certificate is expired');
  t.equal(code(() => pool.verify(shortLived.cert, now() + 99)), undefined);
  t.equal(code(() => pool.verify(makeHost(ca, { issuer: '' }).cert)), 'no-issuer: no issuer in certificate');
  t.equal(code(() => pool.verify(makeHost(ca, { isCA: true }).cert)), 'is-ca: certificate is a CA certificate, not a host certificate');
  t.equal(code(() => pool.verify(makeHost(ca, { ips: [] }).cert)), 'no-ip: certificate does not contain any ip');
});

t.test('root constraints: a leaf mask must be at least as long as the CA mask', async (t) => {
  const ca = makeCA({ ips: ['10.1.0.0/16', '10.2.0.0/24'], subnets: ['192.168.0.0/16'], groups: ['a', 'b'] });
  const pool = new CAPool();
  pool.addCA(ca.cert);
  t.equal(code(() => pool.verify(makeHost(ca, { ips: ['10.1.2.3/16'], groups: ['a', 'b'], subnets: ['192.168.3.0/24'] }).cert)), undefined);
  t.equal(code(() => pool.verify(makeHost(ca, { ips: ['10.2.0.200/28'] }).cert)), undefined);
  t.match(code(() => pool.verify(makeHost(ca, { ips: ['10.2.0.200/23'] }).cert)), /^constraints: .*10\.2\.0\.200\/23$/);
  t.match(code(() => pool.verify(makeHost(ca, { ips: ['10.2.1.1/24'] }).cert)), /^constraints: .*10\.2\.1\.1\/24$/);
  t.match(code(() => pool.verify(makeHost(ca, { subnets: ['192.0.0.0/8'] }).cert)), /subnet assignment outside.*192\.0\.0\.0\/8$/);
  t.match(code(() => pool.verify(makeHost(ca, { groups: ['c'] }).cert)), /group not present on the signing ca: c$/);
  // A CA without restrictions allows anything.
  const open = makeCA();
  pool.addCA(open.cert);
  t.equal(code(() => pool.verify(makeHost(open, { ips: ['1.2.3.4/1'], groups: ['z'], subnets: ['0.0.0.0/0'] }).cert)), undefined);
});

t.test('loading a CA bundle: expired CAs are kept with a warning, all expired is an error', async (t) => {
  const good = makeCA({ name: 'good' });
  const old = makeCA({ name: 'old', notBefore: now() - 7200, notAfter: now() - 3600 });
  const { pool, expired } = loadCAPool(old.cert.toPem() + '\n' + good.cert.toPem());
  t.equal(pool.cas.size, 2);
  t.same(expired.map((c) => c.details.name), ['old']);
  t.equal(code(() => loadCAPool(old.cert.toPem())), 'no-valid-ca: no valid CA certificates present');
  t.equal(code(() => loadCAPool(good.cert.toPem() + makeHost(good).cert.toPem())), 'not-ca: host: certificate is not a CA');
  const forged = makeHost(makeCA(), { name: 'forged', isCA: true, issuer: '' });
  t.equal(code(() => loadCAPool(forged.cert.toPem())), 'not-self-signed: forged: certificate is not self-signed');
  t.match(code(() => loadCAPool('')), /input did not contain a valid PEM encoded block/);
});

t.test('handshake validation wraps errors like nebula logs them', async (t) => {
  const { pool, host } = trustedHost();
  const wire = marshalCertForHandshake(host.cert);
  t.equal(validateHandshakeCert(wire, host.cert.details.publicKey, pool).fingerprint(), host.cert.fingerprint());
  t.equal(
    code(() => validateHandshakeCert(wire, generateX25519KeyPair().publicKey, pool)),
    'signature-mismatch: certificate validation failed: certificate signature did not match',
  );
  t.match(code(() => validateHandshakeCert(wire.subarray(0, 20), host.cert.details.publicKey, pool)), /^malformed: error unmarshaling cert: proto: cannot parse/);
});

t.test('node PKI from paths or inline PEM, with key/cert matching', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA();
  const host = makeHost(ca);
  const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'host.crt'), key: path.join(dir, 'host.key') };
  writeFileSync(files.ca, ca.cert.toPem());
  writeFileSync(files.cert, host.cert.toPem());
  writeFileSync(files.key, marshalX25519PrivateKey(host.privateKey));
  const fromFiles = loadHostPki(files);
  t.equal(fromFiles.cert.fingerprint(), host.cert.fingerprint());
  t.same(fromFiles.privateKey, host.privateKey);
  const inline = loadHostPki({ ca: ca.cert.toPem(), cert: host.cert.toPem(), key: marshalX25519PrivateKey(host.privateKey) });
  t.ok(inline.caPool.getCA(ca.cert.fingerprint()));
  const mixed = loadHostPki({ ca: files.ca, cert: host.cert.toPem(), key: files.key });
  t.equal(mixed.expiredCAs.length, 0);

  const otherKey = marshalX25519PrivateKey(generateX25519KeyPair().privateKey);
  t.equal(code(() => loadHostPki({ ...files, key: otherKey })), "key-mismatch: pki.key: public key in cert and private key supplied don't match");
  t.equal(
    code(() => loadHostPki({ ...files, key: marshalEd25519PrivateKey(ca.privateKey) })),
    'malformed: pki.key: bytes did not contain a proper nebula X25519 private key banner',
  );
  t.equal(code(() => loadHostPki({ ...files, cert: ca.cert.toPem() })), 'is-ca: pki.cert: certificate is a CA certificate, not a host certificate');
  t.equal(code(() => loadHostPki({ ...files, cert: makeHost(ca, { ips: [] }).cert.toPem() })), 'no-ip: pki.cert: certificate does not contain any ip');
  t.equal(code(() => loadHostPki({ ...files, cert: makeHost(ca, { notAfter: now() - 5 }).cert.toPem() })), 'expired: pki.cert: certificate is expired');
  t.match(code(() => loadHostPki({ ...files, ca: path.join(dir, 'missing.crt') })), /unable to read pki.ca file .*missing\.crt/);
  // CA certs are matched against their Ed25519 key; a host key does not fit.
  t.doesNotThrow(() => verifyPrivateKey(ca.cert, ca.privateKey));
  t.throws(() => verifyPrivateKey(ca.cert, host.privateKey), /not 64 bytes/);
  t.throws(() => verifyPrivateKey(host.cert, ca.privateKey), /not 32 bytes/);
});
