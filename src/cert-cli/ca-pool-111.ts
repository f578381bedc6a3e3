/**
 * The CA pool of `nebula-cert verify` 1.11 (cert/ca_pool.go): v1 and v2 CAs side by side, loaded from a PEM
 * bundle the way NewCAPoolFromPEMReader splits it, and VerifyCertificate's checks in Go's order with Go's wording.
 * The node's own pool (src/shared/pki/ca-pool.ts) is v1-only; this one serves the CLI.
 */
import { CertError, checkCAConstraintsV2, pemDecode } from '../shared/pki';
import { readCertFromPem, type CertView } from './any-cert';

const INVALID_PEM = 'input did not contain a valid PEM encoded block';

const fail = (code: ConstructorParameters<typeof CertError>[0], message: string): never => {
  throw new CertError(code, message);
};

/**
 * Go's SplitPEM over the whole input: each chunk runs from "-----BEGIN " to the end of the next "-----END " line.
 * Text before a BEGIN is skipped; non-blank text with no block after it, or a BEGIN without an END, is an error.
 */
export function splitPem(text: string): string[] {
  const blocks: string[] = [];
  let rest = text;
  for (;;) {
    const start = rest.indexOf('-----BEGIN ');
    if (start < 0) {
      if (rest.trim() !== '') fail('malformed', INVALID_PEM);
      return blocks;
    }
    const endMarker = rest.indexOf('-----END ', start);
    if (endMarker < 0) fail('malformed', INVALID_PEM);
    const newline = rest.indexOf('\n', endMarker);
    const end = newline < 0 ? rest.length : newline + 1;
    blocks.push(rest.slice(start, end));
    rest = rest.slice(end);
  }
}

export class CAPool111 {
  /** CAs by fingerprint. */
  readonly cas = new Map<string, CertView>();

  /** Go's AddCA: must be a CA and self-signed; an expired CA is kept and reported by the return value. */
  addCA(ca: CertView, now: Date): { expired: boolean } {
    if (!ca.isCA) fail('not-ca', `${ca.name}: certificate is not a CA`);
    if (!ca.checkSignature(ca.publicKey)) fail('not-self-signed', `${ca.name}: certificate is not self-signed`);
    this.cas.set(ca.fingerprint(), ca);
    return { expired: ca.expired(now) };
  }

  /** NewCAPoolFromPEMReader: every block must be a certificate and a valid CA; expired CAs are not an error here. */
  static fromPem(text: string, now: Date): CAPool111 {
    const pool = new CAPool111();
    for (const chunk of splitPem(text)) {
      const decoded = pemDecode(chunk);
      if (!decoded || decoded.rest.trim() !== '') fail('malformed', INVALID_PEM);
      pool.addCA(readCertFromPem(chunk).view, now);
    }
    return pool;
  }

  /**
   * VerifyCertificate: issuer known, same curve, root and certificate unexpired, signature, the CA's constraints,
   * then the P256 alternate fingerprint. Beyond Go, a CA certificate is refused as a leaf (spec §3.4), checked
   * last so that every case Go refuses gets Go's message.
   */
  verify(cert: CertView, now: Date): CertView {
    if (cert.issuer === '') fail('no-issuer', 'no issuer in certificate');
    const signer = this.cas.get(cert.issuer) ?? fail('unknown-ca', 'could not find ca for the certificate');
    if (signer.curve !== cert.curve) fail('constraints', 'certificate curve does not match CA');
    if (signer.expired(now)) fail('root-expired', 'root certificate is expired');
    if (cert.expired(now)) fail('expired', 'certificate is expired');
    if (!cert.checkSignature(signer.publicKey)) fail('signature-mismatch', 'certificate signature did not match');
    checkCAConstraintsV2(signer, cert);
    try {
      cert.alternateFingerprint();
    } catch (err) {
      fail('malformed', `could not calculate alternate fingerprint to verify: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (cert.isCA) fail('is-ca', 'certificate is a CA certificate, not a host certificate');
    return signer;
  }
}
