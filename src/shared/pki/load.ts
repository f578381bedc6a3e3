/**
 * Loading the node's PKI material from config values (`pki.ca`, `pki.cert`, `pki.key`), each either a file path
 * or inline PEM, and checking that a private key belongs to a certificate (nebula's VerifyPrivateKey).
 */
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { CertError } from './errors';
import { NebulaCertificate, unmarshalCertFromPem } from './cert';
import { ed25519PublicFromPrivate, x25519PublicFromPrivate } from './keys';
import { unmarshalX25519PrivateKey } from './pem';
import { CAPool, checkRootConstraints, loadCAPool } from './ca-pool';

/** Inline PEM is recognised the way nebula does it: the value contains "-----BEGIN". */
export function isInlinePem(value: string): boolean {
  return value.includes('-----BEGIN');
}

/** The PEM text of a config value: the value itself when inline, otherwise the file's contents. */
export function readPemValue(value: string, what: string): string {
  if (isInlinePem(value)) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`unable to read ${what} file ${value}: ${reason}`);
  }
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Throws unless `privateKey` belongs to `cert`: X25519 base-point multiplication for host certs, the Ed25519
 * public key for CA certs (64-byte Go-style key; both its stored public half and the seed-derived key must match).
 */
export function verifyPrivateKey(cert: NebulaCertificate, privateKey: Buffer): void {
  const mismatch = (): CertError => new CertError('key-mismatch', "public key in cert and private key supplied don't match");
  if (cert.details.isCA) {
    if (privateKey.length !== 64) throw new CertError('key-mismatch', 'key was not 64 bytes, is invalid ed25519 private key');
    const derived = ed25519PublicFromPrivate(privateKey);
    if (!equal(derived, cert.details.publicKey) || !equal(privateKey.subarray(32), cert.details.publicKey)) throw mismatch();
    return;
  }
  if (privateKey.length !== 32) throw new CertError('key-mismatch', 'key was not 32 bytes, is invalid X25519 private key');
  if (!equal(x25519PublicFromPrivate(privateKey), cert.details.publicKey)) throw mismatch();
}

export interface HostPki {
  caPool: CAPool;
  /** CAs in the bundle that are expired (loaded anyway; the caller should warn about each). */
  expiredCAs: NebulaCertificate[];
  cert: NebulaCertificate;
  privateKey: Buffer;
}

/** The CA bundle of `pki.ca` (path or inline PEM) with `pki.blocklist` applied; errors name `pki.ca`. */
export function loadCABundle(value: string, blocklist: readonly string[] = [], now: Date | number = new Date()): { caPool: CAPool; expiredCAs: NebulaCertificate[] } {
  const { pool, expired } = wrapSetting('pki.ca', () => loadCAPool(readPemValue(value, 'pki.ca'), now));
  for (const fp of blocklist) pool.blocklistFingerprint(fp);
  return { caPool: pool, expiredCAs: expired };
}

/** The node's own cert and key (unexpired, not a CA, at least one IP, key matching); errors name the setting. */
export function loadHostCertAndKey(values: { cert: string; key: string }, now: Date | number = new Date()): { cert: NebulaCertificate; privateKey: Buffer } {
  const cert = wrapSetting('pki.cert', () => unmarshalCertFromPem(readPemValue(values.cert, 'pki.cert')).cert);
  const privateKey = wrapSetting('pki.key', () => unmarshalX25519PrivateKey(readPemValue(values.key, 'pki.key')).key);
  wrapSetting('pki.cert', () => checkHostCert(cert, now));
  wrapSetting('pki.key', () => verifyPrivateKey(cert, privateKey));
  return { cert, privateKey };
}

function checkHostCert(cert: NebulaCertificate, now: Date | number): void {
  if (cert.details.isCA) throw new CertError('is-ca', 'certificate is a CA certificate, not a host certificate');
  if (cert.details.ips.length === 0) throw new CertError('no-ip', 'certificate does not contain any ip');
  if (cert.expired(now)) throw new CertError('expired', 'certificate is expired');
}

function wrapSetting<T>(setting: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CertError) throw new CertError(err.code, `${setting}: ${err.message}`);
    throw err;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Every problem a start would meet with these PKI settings, one message each (empty when none): unreadable or
 * invalid files, a cert that is expired, a CA, without IP, blocklisted or not signed by the pool, a key that does
 * not match. Used by `nebula-ts -test`.
 */
export function checkHostPki(values: { ca: string; cert: string; key: string; blocklist?: readonly string[] }, now: Date | number = new Date()): string[] {
  const problems: string[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      problems.push(messageOf(err));
      return undefined;
    }
  };
  const pool = attempt(() => loadCABundle(values.ca, values.blocklist ?? [], now).caPool);
  const cert = attempt(() => wrapSetting('pki.cert', () => unmarshalCertFromPem(readPemValue(values.cert, 'pki.cert')).cert));
  const key = attempt(() => wrapSetting('pki.key', () => unmarshalX25519PrivateKey(readPemValue(values.key, 'pki.key')).key));
  if (cert) {
    if (cert.details.isCA) problems.push('pki.cert: certificate is a CA certificate, not a host certificate');
    if (cert.details.ips.length === 0) problems.push('pki.cert: certificate does not contain any ip');
    if (cert.expired(now)) problems.push('pki.cert: certificate is expired');
  }
  if (cert && key) attempt(() => wrapSetting('pki.key', () => verifyPrivateKey(cert, key)));
  if (cert && pool && !cert.details.isCA) {
    if (pool.isBlocklisted(cert)) problems.push('pki.cert: certificate is in the block list');
    const signer = pool.cas.get(cert.details.issuer);
    if (!signer) problems.push('pki.cert: certificate is not signed by any CA in pki.ca (could not find ca for the certificate)');
    else if (!cert.checkSignature(signer.details.publicKey)) problems.push('pki.cert: certificate signature did not match its CA in pki.ca');
    else {
      if (signer.expired(now)) problems.push('pki.cert: root certificate is expired');
      attempt(() => wrapSetting('pki.cert', () => checkRootConstraints(cert, signer)));
    }
  }
  return problems;
}

/**
 * Loads and checks a node's PKI: the CA bundle (§4.5 loading rules), its own cert (unexpired, not a CA, at least one
 * IP) and X25519 key (must match the cert). Values are paths or inline PEM. Errors are CertErrors or read errors
 * with a message naming the offending setting.
 */
export function loadHostPki(values: { ca: string; cert: string; key: string }, now: Date | number = new Date()): HostPki {
  const { caPool, expiredCAs } = loadCABundle(values.ca, [], now);
  const { cert, privateKey } = loadHostCertAndKey(values, now);
  return { caPool, expiredCAs, cert, privateKey };
}
