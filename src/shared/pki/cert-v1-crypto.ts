/**
 * The signature algorithms of v1 certificates, by curve (nebula 1.7+ cert.go, 1.11's cert_v1.go and sign.go):
 * CURVE25519 certificates are signed with Ed25519 over the canonical details bytes; P256 ones with ECDSA P-256 over
 * SHA-256 of those bytes, ASN.1 DER (r, s), the CA key a 65-byte uncompressed point. Signing is low-s, as 1.11 signs
 * (1.7-1.9 sign either form); verification takes both forms, and the blocklist must hold both fingerprints
 * (GHSA-69x3-g4r3-p962). The P256 primitives are the v2 codec's (v2/p256.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { CertError } from './errors';
import { ed25519PublicFromPrivate, ed25519Sign, ed25519Verify, x25519PublicFromPrivate } from './keys';
import type { Curve } from './v2/cert-v2';
import { P256Error, p256PublicFromPrivate, p256Sign, p256Verify, swapP256Signature } from './v2/p256';

/** Signs the canonical details bytes with the CA's key: 64-byte Ed25519 (seed || public) or 32-byte P256 scalar. */
export function signV1Details(curve: Curve, caPrivateKey: Uint8Array, detailsBytes: Uint8Array): Buffer {
  return curve === 'P256' ? p256Sign(caPrivateKey, detailsBytes) : ed25519Sign(caPrivateKey, detailsBytes);
}

/** Go's CheckSignature for v1: never throws; a key or signature of the wrong shape fails. */
export function verifyV1Details(curve: Curve, signerKey: Uint8Array, detailsBytes: Uint8Array, signature: Uint8Array): boolean {
  return curve === 'P256' ? p256Verify(signerKey, detailsBytes, signature) : ed25519Verify(signerKey, detailsBytes, signature);
}

/** The other valid form of a P256 signature (Go's p256.Swap); throws CertError on a malformed one. */
export function otherSignatureForm(signature: Uint8Array): Buffer {
  try {
    return swapP256Signature(signature);
  } catch (err) {
    if (err instanceof P256Error) throw new CertError('malformed', `could not calculate alternate fingerprint: ${err.message}`);
    throw err;
  }
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const mismatch = (): CertError => new CertError('key-mismatch', "public key in cert and private key supplied don't match");

/**
 * Go's VerifyPrivateKey for v1 (1.11's cert_v1.go): `privateKey`, of `curve`, must be the pair of `publicKey`. A CA
 * holds a signing key (64-byte Ed25519 seed || public, both halves checked; or a 32-byte P256 scalar), a host a
 * key-agreement key (32-byte X25519 or P256 scalar). Throws CertError('key-mismatch') with Go's wording.
 */
export function checkV1PrivateKey(cert: { curve: Curve; isCA: boolean; publicKey: Buffer }, curve: Curve, privateKey: Buffer): void {
  if (curve !== cert.curve) throw new CertError('key-mismatch', "curve in cert and private key supplied don't match");
  if (curve === 'P256') {
    let derived: Buffer;
    try {
      derived = p256PublicFromPrivate(privateKey);
    } catch (err) {
      throw new CertError('key-mismatch', `cannot parse private key as P256: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!equal(derived, cert.publicKey)) throw mismatch();
    return;
  }
  if (cert.isCA) {
    if (privateKey.length !== 64) throw new CertError('key-mismatch', 'key was not 64 bytes, is invalid ed25519 private key');
    if (!equal(ed25519PublicFromPrivate(privateKey), cert.publicKey) || !equal(privateKey.subarray(32), cert.publicKey)) throw mismatch();
    return;
  }
  if (privateKey.length !== 32) throw new CertError('key-mismatch', 'key was not 32 bytes, is invalid X25519 private key');
  if (!equal(x25519PublicFromPrivate(privateKey), cert.publicKey)) throw mismatch();
}
