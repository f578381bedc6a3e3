/**
 * One view of a v1 or v2 certificate, as nebula 1.11's cert.Certificate interface gives the CLI: name, version,
 * curve, networks as IP prefixes, fingerprints, signature and key checks. The v1 codec is 1.6.1's (lenient, plus the curve
 * field of 1.7+), so a v1 certificate read here also gets the checks 1.11's v1 decoder adds (certificateV1.validate), which is what
 * nebula-cert 1.11 applies to every certificate it reads.
 */
import {
  CertError,
  NebulaCertificate,
  NebulaCertificateV2,
  certV2ToPem,
  formatPrefix,
  unmarshalAnyCertFromPem,
  type Curve,
  type IpPrefix,
} from '../shared/pki';

const malformed = (message: string): CertError => new CertError('malformed', message);

export type AnyCert = NebulaCertificate | NebulaCertificateV2;

export interface CertView {
  readonly cert: AnyCert;
  readonly version: 1 | 2;
  readonly name: string;
  readonly issuer: string;
  readonly isCA: boolean;
  readonly curve: Curve;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly groups: readonly string[];
  readonly networks: readonly IpPrefix[];
  readonly unsafeNetworks: readonly IpPrefix[];
  readonly publicKey: Buffer;
  fingerprint(): string;
  /** The P256 twin's fingerprint ('' for CURVE25519): what a blocklist must also hold. */
  alternateFingerprint(): string;
  checkSignature(signerKey: Buffer): boolean;
  expired(now: Date): boolean;
  /** Go's VerifyPrivateKey: throws CertError when `key` (of `curve`) is not this certificate's pair. */
  verifyPrivateKey(curve: Curve, key: Buffer): void;
  toPem(): string;
}


function v1View(cert: NebulaCertificate): CertView {
  const d = cert.details;
  return {
    cert,
    version: 1,
    name: d.name,
    issuer: d.issuer,
    isCA: d.isCA,
    curve: cert.curve,
    notBefore: d.notBefore,
    notAfter: d.notAfter,
    groups: d.groups,
    networks: cert.networks,
    unsafeNetworks: cert.unsafeNetworks,
    publicKey: d.publicKey,
    fingerprint: () => cert.fingerprint(),
    alternateFingerprint: () => cert.alternateFingerprint(),
    checkSignature: (key) => cert.checkSignature(key),
    expired: (now) => cert.expired(now),
    verifyPrivateKey: (curve, key) => cert.verifyPrivateKey(curve, key),
    toPem: () => cert.toPem(),
  };
}

function v2View(cert: NebulaCertificateV2): CertView {
  const d = cert.details;
  return {
    cert,
    version: 2,
    name: d.name,
    issuer: d.issuer,
    isCA: d.isCA,
    curve: cert.curve,
    notBefore: d.notBefore,
    notAfter: d.notAfter,
    groups: d.groups,
    networks: d.networks,
    unsafeNetworks: d.unsafeNetworks,
    publicKey: cert.publicKey,
    fingerprint: () => cert.fingerprint(),
    alternateFingerprint: () => cert.alternateFingerprint(),
    checkSignature: (key) => cert.checkSignature(key),
    expired: (now) => cert.expired(now),
    verifyPrivateKey: (curve, key) => cert.verifyPrivateKey(curve, key),
    toPem: () => certV2ToPem(cert),
  };
}

export function viewOf(cert: AnyCert): CertView {
  return cert instanceof NebulaCertificateV2 ? v2View(cert) : v1View(cert);
}

/** nebula 1.11's certificateV1.validate, with its wording (applied to CAs too, whatever the wording says). */
export function validateV1As111(view: Pick<CertView, 'version' | 'publicKey' | 'isCA' | 'networks'>): void {
  if (view.version !== 1) return;
  if (view.publicKey.length === 0) throw malformed('invalid public key');
  if (!view.isCA && view.networks.length === 0) throw malformed('non-CA certificates must contain exactly one network');
  for (const n of view.networks) {
    if (n.addr.every((b) => b === 0)) throw malformed(`non-CA certificates must not use the zero address as a network: ${formatPrefix(n)}`);
  }
}

/** Go 1.11's UnmarshalCertificateFromPEM (first block, v1 or v2 by banner) plus the v1 checks above. */
export function readCertFromPem(text: string): { view: CertView; rest: string } {
  const { cert, rest } = unmarshalAnyCertFromPem(text);
  const view = viewOf(cert);
  validateV1As111(view);
  return { view, rest };
}
