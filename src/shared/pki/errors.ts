/**
 * Typed PKI errors. Messages mirror nebula 1.6.1's wording (cert/errors.go, cert/ca.go) so logs and
 * nebula-ts-cert output read the same as Go nebula's; `code` lets callers branch without string matching.
 */

export type CertErrorCode =
  | 'malformed' // PEM / protobuf / field-level decoding problems
  | 'expired'
  | 'root-expired'
  | 'blocklisted'
  | 'no-issuer'
  | 'unknown-ca'
  | 'signature-mismatch'
  | 'constraints'
  | 'not-ca'
  | 'not-self-signed'
  | 'is-ca'
  | 'no-ip'
  | 'key-mismatch'
  | 'no-valid-ca';

export class CertError extends Error {
  constructor(
    readonly code: CertErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CertError';
  }
}

export const malformed = (message: string): CertError => new CertError('malformed', message);
