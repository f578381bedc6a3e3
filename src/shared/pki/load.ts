/**
 * Loading the node's PKI material from config values (`pki.ca`, `pki.cert`, `pki.key`), each either a file path
 * or inline PEM, and checking that a private key belongs to a certificate (nebula's VerifyPrivateKey). `pki.cert`
 * may hold a v1 and a v2 certificate (Go 1.11's newCertStateFromConfig); `pki.ca` v1 and v2 CAs.
 */
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { CertError } from './errors';
import { NebulaCertificate, type CertDetails } from './cert';
import { CertificateV2View, requireIPv4Network, unmarshalCertificateFromPem, type Certificate } from './certificate';
import { CertState } from './cert-state';
import { ed25519PublicFromPrivate, x25519PublicFromPrivate } from './keys';
import { pemDecode, unmarshalX25519PrivateKey } from './pem';
import { CAPool, loadCAPool } from './ca-pool';
import { P256_PRIVATE_BANNER, unmarshalPrivateKeyPem } from './v2/pem-v2';
import type { Curve } from './v2/cert-v2';

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
export function verifyPrivateKey(cert: { details: Readonly<CertDetails> }, privateKey: Buffer): void {
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
  expiredCAs: Certificate[];
  /** Our certificate(s); reads as the default (initiating-version) one. */
  cert: CertState;
  privateKey: Buffer;
}

/** The CA bundle of `pki.ca` (path or inline PEM) with `pki.blocklist` applied; errors name `pki.ca`. */
export function loadCABundle(value: string, blocklist: readonly string[] = [], now: Date | number = new Date()): { caPool: CAPool; expiredCAs: Certificate[] } {
  const { pool, expired } = wrapSetting('pki.ca', () => loadCAPool(readPemValue(value, 'pki.ca'), now));
  for (const fp of blocklist) pool.blocklistFingerprint(fp);
  return { caPool: pool, expiredCAs: expired };
}

/** Every certificate of `pki.cert`, at most one per version (Go's wording for a second one). */
function readHostCerts(text: string): { v1?: Certificate; v2?: Certificate } {
  const found: { v1?: Certificate; v2?: Certificate } = {};
  let rest = text;
  do {
    const r = unmarshalCertificateFromPem(rest);
    const slot = r.cert.version === 1 ? 'v1' : 'v2';
    if (found[slot]) throw new CertError('malformed', `${slot} certificate already found in pki.cert`);
    found[slot] = r.cert;
    rest = r.rest;
  } while (rest.trim() !== '');
  return found;
}

/** `pki.key`: an X25519 key (1.6.1's banner and errors) or, by its banner, a P256 one. */
function readHostKey(text: string): { key: Buffer; curve: Curve } {
  if (pemDecode(text)?.block.type === P256_PRIVATE_BANNER) return unmarshalPrivateKeyPem(text);
  return { key: unmarshalX25519PrivateKey(text).key, curve: 'CURVE25519' };
}

/** Throws unless `key` (of `curve`) is the pair of `cert`'s public key. */
function verifyHostKey(cert: Certificate, curve: Curve, key: Buffer): void {
  if (cert instanceof CertificateV2View) cert.v2.verifyPrivateKey(curve, key);
  else if (curve !== cert.curve) throw new CertError('key-mismatch', 'public key does not match private key curve');
  else if (cert instanceof NebulaCertificate) cert.verifyPrivateKey(curve, key); // v1 of either curve
  else verifyPrivateKey(cert, key);
}

/**
 * The node's own cert(s) and key: unexpired, not a CA, with an IPv4 network, the key matching each; a v1 and a v2
 * certificate must share key, curve and first network. `initiatingVersion` is `pki.initiating_version` (default: 1
 * when a v1 certificate is present, else 2). Errors name the setting.
 */
export function loadHostCertAndKey(
  values: { cert: string; key: string; initiatingVersion?: number },
  now: Date | number = new Date(),
): { cert: CertState; privateKey: Buffer } {
  const certs = wrapSetting('pki.cert', () => readHostCerts(readPemValue(values.cert, 'pki.cert')));
  const { key, curve } = wrapSetting('pki.key', () => readHostKey(readPemValue(values.key, 'pki.key')));
  for (const cert of [certs.v1, certs.v2]) {
    if (!cert) continue;
    wrapSetting('pki.cert', () => checkHostCert(cert, now));
    wrapSetting('pki.key', () => verifyHostKey(cert, curve, key));
  }
  const state = wrapSetting('pki.cert', () => new CertState(certs.v1, certs.v2, values.initiatingVersion));
  return { cert: state, privateKey: key };
}

function checkHostCert(cert: Certificate, now: Date | number): void {
  if (cert.details.isCA) throw new CertError('is-ca', 'certificate is a CA certificate, not a host certificate');
  if (cert.networks.length === 0) throw new CertError('no-ip', 'certificate does not contain any ip');
  if (cert.expired(now)) throw new CertError('expired', 'certificate is expired');
  requireIPv4Network(cert);
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

/** The problems of one host certificate against the pool: blocklisted, unsigned, expired root, constraints. */
function poolProblems(cert: Certificate, pool: CAPool, now: Date | number): string[] {
  if (cert.details.isCA) return [];
  if (pool.isBlocklisted(cert)) return ['pki.cert: certificate is in the block list'];
  const signer = pool.cas.get(cert.details.issuer);
  if (!signer) return ['pki.cert: certificate is not signed by any CA in pki.ca (could not find ca for the certificate)'];
  try {
    pool.verify(cert, now);
    return [];
  } catch (err) {
    if (!(err instanceof CertError)) throw err;
    // Expiry of the cert itself is reported with the cert's own checks.
    if (err.code === 'expired' || err.code === 'no-ip') return [];
    if (err.code === 'signature-mismatch') return ['pki.cert: certificate signature did not match its CA in pki.ca'];
    return [`pki.cert: ${err.message}`];
  }
}

/**
 * Every problem a start would meet with these PKI settings, one message each (empty when none): unreadable or
 * invalid files, a cert that is expired, a CA, without IP, blocklisted or not signed by the pool, a key that does
 * not match. Used by `nebula-ts -test`.
 */
export function checkHostPki(values: { ca: string; cert: string; key: string; blocklist?: readonly string[]; initiatingVersion?: number }, now: Date | number = new Date()): string[] {
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
  const certs = attempt(() => wrapSetting('pki.cert', () => readHostCerts(readPemValue(values.cert, 'pki.cert'))));
  const key = attempt(() => wrapSetting('pki.key', () => readHostKey(readPemValue(values.key, 'pki.key'))));
  const present = certs ? [certs.v1, certs.v2].filter((c): c is Certificate => c !== undefined) : [];
  for (const cert of present) {
    if (cert.details.isCA) problems.push('pki.cert: certificate is a CA certificate, not a host certificate');
    if (cert.networks.length === 0) problems.push('pki.cert: certificate does not contain any ip');
    else attempt(() => wrapSetting('pki.cert', () => requireIPv4Network(cert)));
    if (cert.expired(now)) problems.push('pki.cert: certificate is expired');
    if (key) attempt(() => wrapSetting('pki.key', () => verifyHostKey(cert, key.curve, key.key)));
    if (pool) problems.push(...poolProblems(cert, pool, now));
  }
  if (certs && problems.length === 0) attempt(() => wrapSetting('pki.cert', () => new CertState(certs.v1, certs.v2, values.initiatingVersion)));
  return problems;
}

/**
 * Loads and checks a node's PKI: the CA bundle (§4.5 loading rules), its own cert(s) (unexpired, not a CA, at least
 * one IPv4 network) and key (must match each cert). Values are paths or inline PEM. Errors are CertErrors or read
 * errors with a message naming the offending setting.
 */
export function loadHostPki(values: { ca: string; cert: string; key: string; initiatingVersion?: number }, now: Date | number = new Date()): HostPki {
  const { caPool, expiredCAs } = loadCABundle(values.ca, [], now);
  const { cert, privateKey } = loadHostCertAndKey(values, now);
  return { caPool, expiredCAs, cert, privateKey };
}
