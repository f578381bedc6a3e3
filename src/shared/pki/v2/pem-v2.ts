/**
 * The PEM banners of nebula 1.11 (cert/pem.go) for v2 certificates and for keys of both curves, with Go's wording
 * for errors. PEM framing itself is pem.ts's (Go's encoding/pem rules). The 1.6.1 banners for v1 certificates and
 * 25519 keys keep their functions in pem.ts; the functions here return the curve a key block is for.
 */
import { malformed } from '../errors';
import { NebulaCertificate, unmarshalCert } from '../cert';
import {
  CERT_BANNER,
  ED25519_PRIVATE_BANNER,
  ED25519_PUBLIC_BANNER,
  X25519_PRIVATE_BANNER,
  X25519_PUBLIC_BANNER,
  pemDecode,
  pemEncode,
  type PemBlock,
} from '../pem';
import { NebulaCertificateV2, unmarshalCertV2, type Curve } from './cert-v2';

export const CERT_V2_BANNER = 'NEBULA CERTIFICATE V2';
export const P256_PRIVATE_BANNER = 'NEBULA P256 PRIVATE KEY';
export const P256_PUBLIC_BANNER = 'NEBULA P256 PUBLIC KEY';
export const ECDSA_P256_PRIVATE_BANNER = 'NEBULA ECDSA P256 PRIVATE KEY';
export const ECDSA_P256_PUBLIC_BANNER = 'NEBULA ECDSA P256 PUBLIC KEY';
export const ENCRYPTED_ECDSA_P256_PRIVATE_BANNER = 'NEBULA ECDSA P256 ENCRYPTED PRIVATE KEY';
export const ENCRYPTED_ED25519_PRIVATE_BANNER = 'NEBULA ED25519 ENCRYPTED PRIVATE KEY';

export function certV2ToPem(cert: NebulaCertificateV2): string {
  return pemEncode(CERT_V2_BANNER, cert.marshal());
}

function firstBlock(text: string): { block: PemBlock; rest: string } {
  const d = pemDecode(text);
  if (!d) throw malformed('input did not contain a valid PEM encoded block');
  return d;
}

/** Reads the first PEM block as a v1 or v2 certificate by its banner (Go 1.11's UnmarshalCertificateFromPEM). */
export function unmarshalAnyCertFromPem(text: string): { cert: NebulaCertificate | NebulaCertificateV2; rest: string } {
  const { block, rest } = firstBlock(text);
  if (block.type === CERT_BANNER) return { cert: unmarshalCert(block.bytes), rest };
  if (block.type === CERT_V2_BANNER) return { cert: unmarshalCertV2(block.bytes), rest };
  throw malformed('bytes did not contain a proper certificate banner');
}

/** Reads the first PEM block, which must be a v2 certificate. */
export function unmarshalCertV2FromPem(text: string): { cert: NebulaCertificateV2; rest: string } {
  const { block, rest } = firstBlock(text);
  if (block.type !== CERT_V2_BANNER) throw malformed('bytes did not contain a proper nebula certificate v2 banner');
  return { cert: unmarshalCertV2(block.bytes), rest };
}

/** Every certificate (v1 or v2) of a PEM bundle, in order; trailing non-whitespace is an error. */
export function unmarshalAnyCertsFromPem(text: string): Array<NebulaCertificate | NebulaCertificateV2> {
  const out: Array<NebulaCertificate | NebulaCertificateV2> = [];
  let rest = text;
  do {
    const r = unmarshalAnyCertFromPem(rest);
    out.push(r.cert);
    rest = r.rest;
  } while (rest.trim() !== '');
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys. Key-agreement (Noise) keys: X25519 / P256. Signing (CA) keys: Ed25519 / ECDSA P256.

export interface PemKey {
  key: Buffer;
  curve: Curve;
  rest: string;
}

const PRIVATE: Record<Curve, string> = { CURVE25519: X25519_PRIVATE_BANNER, P256: P256_PRIVATE_BANNER };
const PUBLIC: Record<Curve, string> = { CURVE25519: X25519_PUBLIC_BANNER, P256: P256_PUBLIC_BANNER };
const SIGNING_PRIVATE: Record<Curve, string> = { CURVE25519: ED25519_PRIVATE_BANNER, P256: ECDSA_P256_PRIVATE_BANNER };
const SIGNING_PUBLIC: Record<Curve, string> = { CURVE25519: ED25519_PUBLIC_BANNER, P256: ECDSA_P256_PUBLIC_BANNER };

export const marshalPrivateKeyPem = (curve: Curve, key: Uint8Array): string => pemEncode(PRIVATE[curve], key);
export const marshalPublicKeyPem = (curve: Curve, key: Uint8Array): string => pemEncode(PUBLIC[curve], key);
export const marshalSigningPrivateKeyPem = (curve: Curve, key: Uint8Array): string => pemEncode(SIGNING_PRIVATE[curve], key);
export const marshalSigningPublicKeyPem = (curve: Curve, key: Uint8Array): string => pemEncode(SIGNING_PUBLIC[curve], key);

/** The certificate's public key in PEM: a signing banner for a CA, a key-agreement banner for a host. */
export function certV2PublicKeyPem(cert: NebulaCertificateV2): string {
  return cert.details.isCA ? marshalSigningPublicKeyPem(cert.curve, cert.publicKey) : marshalPublicKeyPem(cert.curve, cert.publicKey);
}

/** Expected sizes per banner, and the description Go's errors use. */
interface KeyKind {
  curve: Curve;
  len: number;
  what: string;
}

function readKey(text: string, kinds: Record<string, KeyKind>, bannerError: string): PemKey {
  const { block, rest } = firstBlock(text);
  // Own properties only: a banner such as "constructor" must not find Object.prototype's.
  const kind = Object.hasOwn(kinds, block.type) ? kinds[block.type] : undefined;
  if (!kind) throw malformed(bannerError);
  if (block.bytes.length !== kind.len) throw malformed(`key was not ${kind.len} bytes, is invalid ${kind.what}`);
  return { key: block.bytes, curve: kind.curve, rest };
}

/** Go's UnmarshalPrivateKeyFromPEM: an X25519 or P256 key-agreement private key (32 bytes). */
export function unmarshalPrivateKeyPem(text: string): PemKey {
  return readKey(
    text,
    {
      [X25519_PRIVATE_BANNER]: { curve: 'CURVE25519', len: 32, what: 'CURVE25519 private key' },
      [P256_PRIVATE_BANNER]: { curve: 'P256', len: 32, what: 'P256 private key' },
    },
    'bytes did not contain a proper private key banner',
  );
}

/** Go's UnmarshalPublicKeyFromPEM: an X25519 (32 bytes) or uncompressed P256 (65 bytes) public key. */
export function unmarshalPublicKeyPem(text: string): PemKey {
  return readKey(
    text,
    {
      [X25519_PUBLIC_BANNER]: { curve: 'CURVE25519', len: 32, what: 'CURVE25519 public key' },
      [P256_PUBLIC_BANNER]: { curve: 'P256', len: 65, what: 'P256 public key' },
    },
    'bytes did not contain a proper public key banner',
  );
}

/** Go's UnmarshalSigningPublicKeyFromPEM: an Ed25519 (32 bytes) or ECDSA P256 (65 bytes) public key. */
export function unmarshalSigningPublicKeyPem(text: string): PemKey {
  return readKey(
    text,
    {
      [ED25519_PUBLIC_BANNER]: { curve: 'CURVE25519', len: 32, what: 'CURVE25519 public key' },
      [ECDSA_P256_PUBLIC_BANNER]: { curve: 'P256', len: 65, what: 'P256 public key' },
    },
    'bytes did not contain a proper Ed25519/ECDSA public key banner',
  );
}

/**
 * Go's UnmarshalSigningPrivateKeyFromPEM: an Ed25519 (64 bytes) or ECDSA P256 (32 bytes) CA key. An encrypted key
 * is refused here with Go's "private key must be decrypted"; decrypting it is the caller's business.
 */
export function unmarshalSigningPrivateKeyPem(text: string): PemKey {
  const { block } = firstBlock(text);
  if (block.type === ENCRYPTED_ED25519_PRIVATE_BANNER || block.type === ENCRYPTED_ECDSA_P256_PRIVATE_BANNER) {
    throw malformed('private key must be decrypted');
  }
  return readKey(
    text,
    {
      [ED25519_PRIVATE_BANNER]: { curve: 'CURVE25519', len: 64, what: 'Ed25519 private key' },
      [ECDSA_P256_PRIVATE_BANNER]: { curve: 'P256', len: 32, what: 'ECDSA P256 private key' },
    },
    'bytes did not contain a proper Ed25519/ECDSA private key banner',
  );
}
