/**
 * CA pool and leaf verification (nebula-spec §4.5). A pool holds v1 and v2 CAs side by side, as nebula 1.11's
 * cert.CAPool does. A v1 leaf signed by a v1 CA is verified as nebula 1.6.1's NebulaCertificate.Verify does, step by
 * step; any other pairing as 1.11's VerifyCertificate (the signer's curve must be the leaf's, constraints compared as
 * IP prefixes, the P256 alternate fingerprint checked against the blocklist too). Two checks 1.6.1 lacks (spec §3.4)
 * apply to both: a CA certificate is refused as a leaf, and so is a leaf without any network.
 */
import { CertError } from './errors';
import type { CertDetails } from './cert';
import { unmarshalCertificateFromPem, type Certificate } from './certificate';
import { CertState } from './cert-state';
import { formatNet } from './format';
import { checkCAConstraintsV2 } from './v2/sign-v2';
import type { IPv4Net } from '../util/ipv4';

/** How many verified leaf fingerprints a pool remembers (see CAPool.verify). */
export const VERIFIED_CACHE_SIZE = 4096;

export class CAPool {
  /** CA certificates keyed by fingerprint. */
  readonly cas = new Map<string, Certificate>();
  /** Blocklisted leaf fingerprints. */
  readonly blocklist = new Set<string>();
  /**
   * Leaves whose signature and CA constraints passed, by fingerprint, with the CA object that signed them. Lives and
   * dies with the pool (a reload of `pki.ca` or `pki.blocklist` makes a new pool); bounded, least recently used dropped.
   */
  private readonly verified = new Map<string, Certificate>();

  constructor(readonly verifiedCacheSize = VERIFIED_CACHE_SIZE) {}

  /**
   * Adds a CA certificate: it must be a CA and self-signed. An expired CA is still added (Go does the same and
   * reports ErrExpired); `expired` tells the caller so it can warn.
   */
  addCA(cert: Certificate, now: Date | number = new Date()): { fingerprint: string; expired: boolean } {
    const name = cert.details.name;
    if (!cert.details.isCA) throw new CertError('not-ca', `${name}: certificate is not a CA`);
    if (!cert.checkSignature(cert.details.publicKey)) {
      throw new CertError('not-self-signed', `${name}: certificate is not self-signed`);
    }
    const fingerprint = cert.fingerprint();
    this.cas.set(fingerprint, cert);
    return { fingerprint, expired: cert.expired(now) };
  }

  /** Adds the first PEM certificate (v1 or v2) of `text` as a CA; returns the remaining text. */
  addCAFromPem(text: string, now: Date | number = new Date()): { cert: Certificate; expired: boolean; rest: string } {
    const { cert, rest } = unmarshalCertificateFromPem(text);
    const { expired } = this.addCA(cert, now);
    return { cert, expired, rest };
  }

  blocklistFingerprint(fingerprint: string): void {
    this.blocklist.add(fingerprint.toLowerCase());
  }

  /** The fingerprint, or for P256 either signature form's (GHSA-69x3-g4r3-p962), is blocklisted. */
  isBlocklisted(cert: Certificate): boolean {
    if (this.blocklist.has(cert.fingerprint())) return true;
    if (cert.curve !== 'P256' || this.blocklist.size === 0) return false;
    try {
      return this.blocklist.has(cert.alternateFingerprint());
    } catch {
      return false; // not a well-formed ECDSA signature: the signature check refuses it anyway
    }
  }

  getCA(fingerprint: string): Certificate | undefined {
    return this.cas.get(fingerprint.toLowerCase());
  }

  getCAForCert(cert: Certificate): Certificate {
    if (cert.details.issuer === '') throw new CertError('no-issuer', 'no issuer in certificate');
    const ca = this.cas.get(cert.details.issuer);
    if (!ca) throw new CertError('unknown-ca', 'could not find ca for the certificate');
    return ca;
  }

  /**
   * Verifies a leaf (host) certificate at `now`; throws a CertError naming the first failed rule. Our own CertState
   * is verified whole (each certificate it holds) and answers with its default certificate's signer.
   */
  verify(cert: Certificate, now: Date | number = new Date()): Certificate {
    if (cert instanceof CertState) {
      for (const c of cert.all()) if (c !== cert.default) this.verify(c, now);
      return this.verify(cert.default, now);
    }
    if (this.isBlocklisted(cert)) throw new CertError('blocklisted', 'certificate is in the block list');
    if (cert.details.isCA) throw new CertError('is-ca', 'certificate is a CA certificate, not a host certificate');
    if (cert.networks.length === 0) throw new CertError('no-ip', 'certificate does not contain any ip');
    const signer = this.getCAForCert(cert);
    if (signer.curve !== cert.curve) throw new CertError('constraints', 'certificate curve does not match CA');
    if (signer.expired(now)) throw new CertError('root-expired', 'root certificate is expired');
    if (cert.expired(now)) throw new CertError('expired', 'certificate is expired');
    // The fingerprint hashes every byte the signature and the constraints are computed from (details, public key,
    // signature): the same fingerprint checked against the same CA object gives the same answer. So, as Go's
    // VerifyCachedCertificate, a known leaf skips only those two; blocklist, CA and expiry were checked above.
    const fingerprint = cert.fingerprint();
    if (this.verified.get(fingerprint) !== signer) {
      if (!cert.checkSignature(signer.details.publicKey)) {
        throw new CertError('signature-mismatch', 'certificate signature did not match');
      }
      if (cert.version === 1 && signer.version === 1) checkRootConstraints(cert, signer);
      else checkCAConstraintsV2(caConstraints(signer), { ...cert.details, networks: cert.networks, unsafeNetworks: cert.unsafeNetworks });
    }
    this.rememberVerified(fingerprint, signer);
    return signer;
  }

  /** How many verified leaves are remembered (tests: bounded). */
  get verifiedCount(): number {
    return this.verified.size;
  }

  /** Remembers (or refreshes: most recently used last) a verified leaf, forgetting the least recently used. */
  private rememberVerified(fingerprint: string, signer: Certificate): void {
    this.verified.delete(fingerprint);
    this.verified.set(fingerprint, signer);
    if (this.verified.size > this.verifiedCacheSize) this.verified.delete(this.verified.keys().next().value!);
  }
}

/** What a CA of either version limits, as 1.11 reads it (networks as prefixes). */
function caConstraints(ca: Certificate): Parameters<typeof checkCAConstraintsV2>[0] {
  const d = ca.details;
  return { notBefore: d.notBefore, notAfter: d.notAfter, groups: d.groups, networks: ca.networks, unsafeNetworks: ca.unsafeNetworks };
}

/**
 * Loads a `pki.ca` bundle the way a node does: every block must be a valid self-signed CA (v1 or v2); expired CAs are
 * kept and reported in `expired` (the caller warns); if every CA is expired the pool is refused.
 */
export function loadCAPool(pemText: string, now: Date | number = new Date()): { pool: CAPool; expired: Certificate[] } {
  const pool = new CAPool();
  const expired: Certificate[] = [];
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
export function checkRootConstraints(cert: { details: Readonly<CertDetails> }, signer: { details: Readonly<CertDetails> }): void {
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

