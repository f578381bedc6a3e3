/**
 * CA pool and leaf verification (nebula-spec §4.5), following nebula 1.6.1's cert.NebulaCAPool and
 * NebulaCertificate.Verify step by step, plus two checks 1.6.1 lacks (spec §3.4): a CA certificate is refused as a
 * leaf, and so is a leaf without any IP (1.6.1 would crash on it later).
 */
import { CertError } from './errors';
import { NebulaCertificate, unmarshalCertFromPem } from './cert';
import { formatNet } from './format';
import type { IPv4Net } from '../util/ipv4';

export class CAPool {
  /** CA certificates keyed by fingerprint. */
  readonly cas = new Map<string, NebulaCertificate>();
  /** Blocklisted leaf fingerprints. */
  readonly blocklist = new Set<string>();

  /**
   * Adds a CA certificate: it must be a CA and self-signed. An expired CA is still added (Go does the same and
   * reports ErrExpired); `expired` tells the caller so it can warn.
   */
  addCA(cert: NebulaCertificate, now: Date | number = new Date()): { fingerprint: string; expired: boolean } {
    const name = cert.details.name;
    if (!cert.details.isCA) throw new CertError('not-ca', `${name}: certificate is not a CA`);
    if (!cert.checkSignature(cert.details.publicKey)) {
      throw new CertError('not-self-signed', `${name}: certificate is not self-signed`);
    }
    const fingerprint = cert.fingerprint();
    this.cas.set(fingerprint, cert);
    return { fingerprint, expired: cert.expired(now) };
  }

  /** Adds the first PEM certificate of `text` as a CA; returns the remaining text. */
  addCAFromPem(text: string, now: Date | number = new Date()): { cert: NebulaCertificate; expired: boolean; rest: string } {
    const { cert, rest } = unmarshalCertFromPem(text);
    const { expired } = this.addCA(cert, now);
    return { cert, expired, rest };
  }

  blocklistFingerprint(fingerprint: string): void {
    this.blocklist.add(fingerprint.toLowerCase());
  }

  isBlocklisted(cert: NebulaCertificate): boolean {
    return this.blocklist.has(cert.fingerprint());
  }

  getCA(fingerprint: string): NebulaCertificate | undefined {
    return this.cas.get(fingerprint.toLowerCase());
  }

  getCAForCert(cert: NebulaCertificate): NebulaCertificate {
    if (cert.details.issuer === '') throw new CertError('no-issuer', 'no issuer in certificate');
    const ca = this.cas.get(cert.details.issuer);
    if (!ca) throw new CertError('unknown-ca', 'could not find ca for the certificate');
    return ca;
  }

  /** Verifies a leaf (host) certificate at `now`; throws a CertError naming the first failed rule. */
  verify(cert: NebulaCertificate, now: Date | number = new Date()): NebulaCertificate {
    if (this.isBlocklisted(cert)) throw new CertError('blocklisted', 'certificate is in the block list');
    if (cert.details.isCA) throw new CertError('is-ca', 'certificate is a CA certificate, not a host certificate');
    if (cert.details.ips.length === 0) throw new CertError('no-ip', 'certificate does not contain any ip');
    const signer = this.getCAForCert(cert);
    if (signer.expired(now)) throw new CertError('root-expired', 'root certificate is expired');
    if (cert.expired(now)) throw new CertError('expired', 'certificate is expired');
    if (!cert.checkSignature(signer.details.publicKey)) {
      throw new CertError('signature-mismatch', 'certificate signature did not match');
    }
    checkRootConstraints(cert, signer);
    return signer;
  }
}

/**
 * Loads a `pki.ca` bundle the way a node does: every block must be a valid self-signed CA; expired CAs are kept
 * and reported in `expired` (the caller warns); if every CA is expired the pool is refused.
 */
export function loadCAPool(pemText: string, now: Date | number = new Date()): { pool: CAPool; expired: NebulaCertificate[] } {
  const pool = new CAPool();
  const expired: NebulaCertificate[] = [];
  let rest = pemText;
  do {
    const r = pool.addCAFromPem(rest, now);
    if (r.expired) expired.push(r.cert);
    rest = r.rest;
  } while (rest.trim() !== '');
  if (expired.length >= pool.cas.size) throw new CertError('no-valid-ca', 'no valid CA certificates present');
  return { pool, expired };
}

/** Go's maskContains: the leaf mask must be at least as specific as the CA's, compared byte by byte. */
function maskContains(caMask: number, certMask: number): boolean {
  for (let shift = 24; shift >= 0; shift -= 8) {
    if (((caMask >>> shift) & 0xff) > ((certMask >>> shift) & 0xff)) return false;
  }
  return true;
}

function netMatch(certNet: IPv4Net, caNets: readonly IPv4Net[]): boolean {
  return caNets.some(
    (n) => ((certNet.ip & n.mask) >>> 0) === ((n.ip & n.mask) >>> 0) && maskContains(n.mask, certNet.mask),
  );
}

/**
 * Go's CheckRootConstrains: the leaf's validity, groups, IPs and subnets must lie within what the signer allows.
 * Also used by `sign` before signing.
 */
export function checkRootConstraints(cert: NebulaCertificate | { details: NebulaCertificate['details'] }, signer: NebulaCertificate): void {
  const d = cert.details;
  const s = signer.details;
  const fail = (msg: string): never => {
    throw new CertError('constraints', msg);
  };
  if (s.notAfter < d.notAfter) fail('certificate expires after signing certificate');
  if (s.notBefore > d.notBefore) fail('certificate is valid before the signing certificate');
  if (s.groups.length > 0) {
    const allowed = new Set(s.groups);
    for (const g of d.groups) if (!allowed.has(g)) fail(`certificate contained a group not present on the signing ca: ${g}`);
  }
  if (s.ips.length > 0) {
    for (const ip of d.ips) {
      if (!netMatch(ip, s.ips)) {
        fail(`certificate contained an ip assignment outside the limitations of the signing ca: ${formatNet(ip)}`);
      }
    }
  }
  if (s.subnets.length > 0) {
    for (const sn of d.subnets) {
      if (!netMatch(sn, s.subnets)) {
        fail(`certificate contained a subnet assignment outside the limitations of the signing ca: ${formatNet(sn)}`);
      }
    }
  }
}

