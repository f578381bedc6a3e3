/**
 * Signing v2 certificates (nebula 1.11's TBSCertificate.Sign / SignWith and checkCAConstraints): Ed25519 for
 * CURVE25519, ECDSA P-256 with SHA-256 for P256, P256 signatures always in low-s form (GHSA-69x3-g4r3-p962).
 * Beyond Go, a certificate is refused when nebula's own decoder would refuse it (empty or over-long name, empty
 * group), so whatever is signed here can be read back.
 */
import { CertError } from '../errors';
import { ed25519Sign } from '../keys';
import { NebulaCertificateV2, type Curve } from './cert-v2';
import { MAX_NAME_LENGTH, marshalDetailsV2, validateDetailsV2, type CertV2Details } from './details-v2';
import { p256Sign } from './p256';
import { formatPrefix, prefixCovers, type IpPrefix } from './prefix';

/** A certificate to be signed (Go's TBSCertificate for Version2). */
export interface TbsCertV2 {
  name: string;
  networks: readonly IpPrefix[];
  unsafeNetworks: readonly IpPrefix[];
  groups: readonly string[];
  isCA: boolean;
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds. */
  notAfter: number;
  publicKey: Buffer;
  curve: Curve;
}

/** What a signing CA contributes: its fingerprint (the issuer) and the limits it puts on what it signs. */
export interface SigningCA {
  fingerprint(): string;
  readonly details: CAConstraints;
}

export interface CAConstraints {
  readonly notBefore: number;
  readonly notAfter: number;
  readonly groups: readonly string[];
  readonly networks: readonly IpPrefix[];
  readonly unsafeNetworks: readonly IpPrefix[];
}

/** The parts of a certificate the CA's limits apply to. */
export type ConstrainedFields = Pick<CAConstraints, 'notBefore' | 'notAfter' | 'groups' | 'networks' | 'unsafeNetworks'>;

/**
 * Go's checkCAConstraints: validity within the signer's, groups a subset of the signer's (when it lists any),
 * every network and unsafe network inside one of the signer's (when it lists any). Throws CertError('constraints').
 */
export function checkCAConstraintsV2(signer: CAConstraints, sub: ConstrainedFields): void {
  const fail = (msg: string): never => {
    throw new CertError('constraints', msg);
  };
  if (sub.notAfter > signer.notAfter) fail('certificate expires after signing certificate');
  if (sub.notBefore < signer.notBefore) fail('certificate is valid before the signing certificate');
  if (signer.groups.length > 0) {
    for (const g of sub.groups) if (!signer.groups.includes(g)) fail(`certificate contained a group not present on the signing ca: ${g}`);
  }
  if (signer.networks.length > 0) {
    for (const n of sub.networks) {
      if (!signer.networks.some((s) => prefixCovers(s, n))) {
        fail(`certificate contained a network assignment outside the limitations of the signing ca: ${formatPrefix(n)}`);
      }
    }
  }
  if (signer.unsafeNetworks.length > 0) {
    for (const n of sub.unsafeNetworks) {
      if (!signer.unsafeNetworks.some((s) => prefixCovers(s, n))) {
        fail(`certificate contained an unsafe network assignment outside the limitations of the signing ca: ${formatPrefix(n)}`);
      }
    }
  }
}

function refuse(msg: string): never {
  throw new CertError('malformed', msg);
}

/** Checks what Go's decoder (not its signer) insists on, so a signed certificate always decodes. */
function checkDecodable(tbs: TbsCertV2): void {
  const nameLen = Buffer.byteLength(tbs.name, 'utf8');
  if (nameLen === 0 || nameLen > MAX_NAME_LENGTH) refuse(`certificate name must be 1..${MAX_NAME_LENGTH} bytes, got ${nameLen}`);
  if (tbs.groups.some((g) => g === '')) refuse('certificate groups must not be empty strings');
  for (const t of [tbs.notBefore, tbs.notAfter]) if (!Number.isSafeInteger(t)) refuse(`certificate time ${t} is not a whole number of seconds`);
}

/**
 * Signs `tbs` (Go's TBSCertificate.Sign). `signer` is the CA certificate for a host certificate, undefined for a
 * self-signed CA. `curve` and `signingKey` are the CA's key: a 64-byte Ed25519 key (seed || public) or a 32-byte
 * P256 scalar; the curve must be the certificate's. Go does not check here that the key belongs to `signer`; callers
 * do (NebulaCertificateV2.verifyPrivateKey). Throws CertError.
 */
export function signCertV2(tbs: TbsCertV2, signer: SigningCA | undefined, curve: Curve, signingKey: Uint8Array): NebulaCertificateV2 {
  if (curve !== tbs.curve) refuse("curve in cert and private key supplied don't match");
  let issuer = '';
  if (signer) {
    if (tbs.isCA) refuse('can not sign a CA certificate with another');
    checkCAConstraintsV2(signer.details, tbs);
    issuer = signer.fingerprint();
  } else if (!tbs.isCA) {
    refuse('self signed certificates must have IsCA set to true');
  }
  checkDecodable(tbs);
  const unsorted: CertV2Details = {
    name: tbs.name,
    networks: [...tbs.networks],
    unsafeNetworks: [...tbs.unsafeNetworks],
    groups: [...tbs.groups],
    isCA: tbs.isCA,
    notBefore: tbs.notBefore,
    notAfter: tbs.notAfter,
    issuer,
  };
  const details = validateDetailsV2(unsorted, tbs.publicKey);
  const rawDetails = marshalDetailsV2(details);
  const publicKey = Buffer.from(tbs.publicKey);
  const unsigned = new NebulaCertificateV2(details, rawDetails, curve, publicKey, Buffer.alloc(0));
  let signature: Buffer;
  try {
    signature = curve === 'P256' ? p256Sign(signingKey, unsigned.signedBytes()) : ed25519Sign(signingKey, unsigned.signedBytes());
  } catch (err) {
    refuse(`invalid signing key: ${err instanceof Error ? err.message : String(err)}`);
  }
  return new NebulaCertificateV2(details, rawDetails, curve, publicKey, signature);
}
