/**
 * The v2 Nebula certificate (nebula 1.10+, cert/cert_v2.go): an ASN.1 DER envelope
 *   SEQUENCE { details [0] Details, curve [1] DEFAULT curve25519, publicKey [2], signature [3] }
 * where the signature covers rawDetails || curve byte || publicKey and the fingerprint is SHA-256 of
 * rawDetails || curve byte || publicKey || signature. Unlike v1, both are computed over the Details bytes as
 * received (kept in `rawDetails`), never over a re-encoding, so unknown future Details fields survive.
 *
 * Decoding follows nebula 1.11's unmarshalCertificateV2 (bytes after the signature, or after the outer SEQUENCE,
 * are ignored as Go ignores them), with one deliberate difference: a curve other than CURVE25519 or P256 is refused
 * at decode time (Go would decode it and then fail every signature check).
 */
import { createHash } from 'node:crypto';
import { toUnixSeconds } from '../cert';
import { CertError, malformed } from '../errors';
import { ed25519PublicFromPrivate, ed25519Verify, x25519PublicFromPrivate } from '../keys';
import { DerError, DerReader, TAG_SEQUENCE, derElement } from './der';
import {
  MAX_CERTIFICATE_SIZE,
  TAG_CERT_CURVE,
  TAG_CERT_DETAILS,
  TAG_CERT_PUBLIC_KEY,
  TAG_CERT_SIGNATURE,
  decodeDetailsV2,
  validateDetailsV2,
  type CertV2Details,
} from './details-v2';
import { P256Error, p256PublicFromPrivate, p256Verify, swapP256Signature } from './p256';

/** Curve names as Go's Curve.String() prints them. */
export type Curve = 'CURVE25519' | 'P256';

export function curveToByte(curve: Curve): number {
  return curve === 'P256' ? 1 : 0;
}

export function curveFromByte(b: number): Curve {
  if (b === 0) return 'CURVE25519';
  if (b === 1) return 'P256';
  throw malformed(`bad wire format: unknown curve ${b}`);
}

export class NebulaCertificateV2 {
  readonly version = 2;
  private cachedFingerprint: string | undefined;

  /** Use unmarshalCertV2, certV2FromHandshake or signCertV2 rather than this constructor. */
  constructor(
    /** Decoded from `rawDetails` and validated; network lists sorted. */
    readonly details: Readonly<CertV2Details>,
    /** The DER Details element (tag, length, value) the signature covers. */
    readonly rawDetails: Buffer,
    readonly curve: Curve,
    /** X25519/P256 key of a host, Ed25519/ECDSA P256 key of a CA. P256 keys are 65-byte uncompressed points. */
    readonly publicKey: Buffer,
    readonly signature: Buffer,
  ) {}

  /** The bytes the CA signs: rawDetails || curve byte || publicKey (Go's marshalForSigning). */
  signedBytes(): Buffer {
    return Buffer.concat([this.rawDetails, Buffer.from([curveToByte(this.curve)]), this.publicKey]);
  }

  /** The certificate as Go's Marshal writes it (what PEM holds); the curve is omitted when CURVE25519. */
  marshal(): Buffer {
    const curve = this.curve === 'CURVE25519' ? [] : [derElement(TAG_CERT_CURVE, Buffer.from([curveToByte(this.curve)]))];
    return derElement(
      TAG_SEQUENCE,
      this.rawDetails,
      ...curve,
      derElement(TAG_CERT_PUBLIC_KEY, this.publicKey),
      derElement(TAG_CERT_SIGNATURE, this.signature),
    );
  }

  /** The handshake form (Go's MarshalForHandshakes): no curve and no public key, they travel in the Noise handshake. */
  marshalForHandshake(): Buffer {
    return derElement(TAG_SEQUENCE, this.rawDetails, derElement(TAG_CERT_SIGNATURE, this.signature));
  }

  /** Lowercase hex SHA-256 of rawDetails || curve byte || publicKey || signature (Go's Fingerprint). */
  fingerprint(): string {
    this.cachedFingerprint ??= fingerprintOf(this.signedBytes(), this.signature);
    return this.cachedFingerprint;
  }

  /**
   * The fingerprint of the same certificate with the other form of its P256 signature (Go's
   * CalculateAlternateFingerprint); '' for CURVE25519. A blocklist must be checked against both (GHSA-69x3-g4r3-p962).
   * Throws CertError when the signature is not a well-formed ECDSA signature.
   */
  alternateFingerprint(): string {
    if (this.curve !== 'P256') return '';
    try {
      return fingerprintOf(this.signedBytes(), swapP256Signature(this.signature));
    } catch (err) {
      if (err instanceof P256Error) throw malformed(`could not calculate alternate fingerprint: ${err.message}`);
      throw err;
    }
  }

  /** Checks the signature with the signer's public key (Ed25519, or uncompressed P256 with either s form). */
  checkSignature(signerKey: Uint8Array): boolean {
    const message = this.signedBytes();
    return this.curve === 'P256' ? p256Verify(signerKey, message, this.signature) : ed25519Verify(signerKey, message, this.signature);
  }

  /** Go's Expired: valid from NotBefore to NotAfter inclusive. `now` is a Date or Unix seconds. */
  expired(now: Date | number = new Date()): boolean {
    const t = toUnixSeconds(now);
    return this.details.notBefore > t || this.details.notAfter < t;
  }

  /**
   * Go's VerifyPrivateKey: `privateKey` (of `curve`) must be the pair of the certificate's public key. CAs hold a
   * signing key (64-byte Ed25519 seed||public, or a 32-byte P256 scalar), hosts a key-agreement key (32 bytes).
   */
  verifyPrivateKey(curve: Curve, privateKey: Uint8Array): void {
    if (curve !== this.curve) throw new CertError('key-mismatch', 'public key does not match private key curve');
    const mismatch = (): CertError => new CertError('key-mismatch', 'public key and private key are not a pair');
    let pub: Buffer;
    try {
      if (curve === 'P256') pub = p256PublicFromPrivate(privateKey);
      else if (this.details.isCA) pub = ed25519PublicFromPrivate(privateKey);
      else pub = x25519PublicFromPrivate(privateKey);
    } catch {
      throw new CertError('key-mismatch', 'invalid private key');
    }
    if (!pub.equals(this.publicKey)) throw mismatch();
    // Go compares the public half stored in a 64-byte Ed25519 key; the derived one must match it too.
    if (curve === 'CURVE25519' && this.details.isCA && !this.publicKey.equals(privateKey.subarray(32))) throw mismatch();
  }
}

function fingerprintOf(signed: Buffer, signature: Buffer): string {
  return createHash('sha256').update(signed).update(signature).digest('hex');
}

function decode(raw: Uint8Array, handshakeKey: Uint8Array | undefined, defaultCurve: Curve): NebulaCertificateV2 {
  if (raw.length === 0 || raw.length > MAX_CERTIFICATE_SIZE) {
    throw malformed(`bad wire format: certificate of ${raw.length} bytes (1..${MAX_CERTIFICATE_SIZE} allowed)`);
  }
  try {
    const body = new DerReader(Buffer.from(raw), 'certificate').read(TAG_SEQUENCE, 'envelope');
    if (body.length === 0) throw new DerError('certificate: empty envelope');
    const r = new DerReader(body, 'certificate');
    const rawDetails = r.readElement(TAG_CERT_DETAILS, 'details').element;
    const curveField = r.readOptional(TAG_CERT_CURVE, 'curve');
    if (curveField !== undefined && curveField.length !== 1) throw new DerError(`certificate: curve of ${curveField.length} bytes (1 allowed)`);
    const curve = curveFromByte(curveField?.[0] ?? curveToByte(defaultCurve));
    let publicKey: Buffer;
    if (handshakeKey !== undefined && handshakeKey.length > 0) {
      if (r.peekTag(TAG_CERT_PUBLIC_KEY)) throw malformed('certificate has unexpected pubkey present');
      publicKey = Buffer.from(handshakeKey);
    } else {
      publicKey = Buffer.from(r.readOptional(TAG_CERT_PUBLIC_KEY, 'public key') ?? Buffer.alloc(0));
    }
    if (publicKey.length === 0) throw new DerError('certificate: missing public key');
    const signature = r.read(TAG_CERT_SIGNATURE, 'signature');
    if (signature.length === 0) throw new DerError('certificate: empty signature');
    const details = validateDetailsV2(decodeDetailsV2(rawDetails), publicKey);
    return new NebulaCertificateV2(details, Buffer.from(rawDetails), curve, publicKey, Buffer.from(signature));
  } catch (err) {
    if (err instanceof DerError) throw malformed(`bad wire format: ${err.message}`);
    throw err;
  }
}

/** Parses a marshalled v2 certificate (what a `NEBULA CERTIFICATE V2` PEM block holds). Throws CertError. */
export function unmarshalCertV2(raw: Uint8Array): NebulaCertificateV2 {
  return decode(raw, undefined, 'CURVE25519');
}

/**
 * Rebuilds a peer's v2 certificate from its handshake form and the Noise static key (Go's Recombine for
 * Version2): the handshake's curve applies unless the bytes name one, and the two must agree. The result still has
 * to be verified against the CA pool, whose signature check is what binds the static key to the certificate.
 */
export function certV2FromHandshake(raw: Uint8Array, staticKey: Uint8Array, curve: Curve): NebulaCertificateV2 {
  if (staticKey.length === 0) throw malformed('no peer static key was present');
  if (raw.length === 0) throw malformed('provided payload was empty');
  const cert = decode(raw, staticKey, curve);
  if (cert.curve !== curve) throw malformed(`certificate curve ${cert.curve} does not match expected ${curve}`);
  return cert;
}
