/**
 * NIST P-256 with raw keys, as nebula stores them: private keys are the 32-byte scalar, public keys the 65-byte
 * uncompressed point 04||X||Y (Go's ecdh/ecdsa only take that form: ParseUncompressedPublicKey for CA keys,
 * ecdh.NewPublicKey for Noise keys, so a compressed key is refused here too even though OpenSSL would take it).
 * Signatures are ASN.1 DER SEQUENCE{r, s} over SHA-256 of the message, parsed as strictly as Go's crypto/ecdsa.
 *
 * Malleability (GHSA-69x3-g4r3-p962): (r, s) and (r, n-s) both verify, and nebula fingerprints cover the signature,
 * so one certificate has two fingerprints. nebula >= 1.10.3 signs low-s only (s <= n/2) but still accepts both
 * forms, blocklisting a certificate under either fingerprint; `swapP256Signature` gives the other form.
 */
import { createECDH, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type ECDH, type KeyObject } from 'node:crypto';
import { cachedVerifyKey } from '../verify-key-cache';
import { DerError, DerReader, TAG_INTEGER, TAG_SEQUENCE, derElement, derUnsignedInteger } from './der';

export const P256_PRIVATE_KEY_LEN = 32;
export const P256_PUBLIC_KEY_LEN = 65;

/** The order n of the P-256 group. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = P256_N >> 1n;

// Fixed DER wrappers (RFC 5480 id-ecPublicKey + prime256v1), like keys.ts does for the 25519 keys.
const SPKI_P256 = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const PKCS8_P256 = Buffer.from('308141020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex');

export class P256Error extends Error {
  override name = 'P256Error';
}

/** True for a 65-byte 04||X||Y encoding (the point itself is checked when the key is used). */
export const isUncompressedPoint = (key: Uint8Array): boolean => key.length === P256_PUBLIC_KEY_LEN && key[0] === 0x04;

export function p256PublicKeyObject(pub: Uint8Array): KeyObject {
  if (!isUncompressedPoint(pub)) throw new P256Error(`P256 public key must be 65 bytes 04||X||Y, got ${pub.length} bytes`);
  return createPublicKey({ key: Buffer.concat([SPKI_P256, pub]), format: 'der', type: 'spki' });
}

function checkPrivate(priv: Uint8Array): void {
  if (priv.length !== P256_PRIVATE_KEY_LEN) throw new P256Error(`P256 private key must be 32 bytes, got ${priv.length}`);
  const d = BigInt(`0x${Buffer.from(priv).toString('hex')}`);
  if (d === 0n || d >= P256_N) throw new P256Error('P256 private key is out of range');
}

export function p256PrivateKeyObject(priv: Uint8Array): KeyObject {
  checkPrivate(priv);
  return createPrivateKey({ key: Buffer.concat([PKCS8_P256, priv]), format: 'der', type: 'pkcs8' });
}

/** The uncompressed public key of a 32-byte scalar (Go's ecdh.P256().NewPrivateKey(k).PublicKey().Bytes()). */
export function p256PublicFromPrivate(priv: Uint8Array): Buffer {
  return p256KeyAgreement(priv).publicKey;
}

export function generateP256KeyPair(): { publicKey: Buffer; privateKey: Buffer } {
  const { publicKey, privateKey } = generateP256KeyAgreement();
  return { publicKey, privateKey };
}

/**
 * A P-256 key-agreement key set up once (the ECDH object holds the scalar), so a key used for several DHs, a node's
 * static key above all, is not parsed again for each. `sharedSecret` is the 32-byte X coordinate of priv·peer, as
 * Go's ecdh returns it; it throws on a peer key that is not an uncompressed point on the curve.
 */
export interface P256KeyAgreement {
  privateKey: Buffer;
  publicKey: Buffer;
  sharedSecret(peerPub: Uint8Array): Buffer;
}

export function p256KeyAgreement(priv: Uint8Array): P256KeyAgreement {
  checkPrivate(priv);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(priv));
  return keyAgreement(ecdh, Buffer.from(priv));
}

export function generateP256KeyAgreement(): P256KeyAgreement {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const privateKey = Buffer.alloc(P256_PRIVATE_KEY_LEN);
  const d = ecdh.getPrivateKey();
  d.copy(privateKey, P256_PRIVATE_KEY_LEN - d.length); // OpenSSL may drop leading zero bytes
  return keyAgreement(ecdh, privateKey);
}

function keyAgreement(ecdh: ECDH, privateKey: Buffer): P256KeyAgreement {
  return {
    privateKey,
    publicKey: ecdh.getPublicKey(),
    sharedSecret: (peerPub) => {
      if (!isUncompressedPoint(peerPub)) throw new P256Error('P256 peer public key must be 65 bytes 04||X||Y');
      return ecdh.computeSecret(Buffer.from(peerPub));
    },
  };
}

/** ECDH on P-256 (the Noise DH for P256): the 32-byte X coordinate of priv·peer, as Go's ecdh returns it. */
export function p256SharedSecret(priv: Uint8Array, peerPub: Uint8Array): Buffer {
  return p256KeyAgreement(priv).sharedSecret(peerPub);
}

// ---------------------------------------------------------------------------------------------------------------
// Signatures

export interface EcdsaSignature {
  r: bigint;
  s: bigint;
}

const toBig = (b: Buffer): bigint => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`));

/** Big-endian bytes of a non-negative integer, at least 32 of them. */
function to32(v: bigint): Buffer {
  const hex = v.toString(16);
  return Buffer.from(hex.padStart(Math.max(64, hex.length + (hex.length & 1)), '0'), 'hex');
}

/** Go's ecdsa parseSignature: SEQUENCE of two minimal, non-negative INTEGERs and nothing after. Throws P256Error. */
export function parseEcdsaSignature(sig: Uint8Array): EcdsaSignature {
  try {
    const outer = new DerReader(Buffer.from(sig), 'ECDSA signature');
    const inner = new DerReader(outer.read(TAG_SEQUENCE, 'SEQUENCE'), 'ECDSA signature');
    if (!outer.empty) throw new DerError('ECDSA signature: trailing data');
    const [r, s] = [inner.read(TAG_INTEGER, 'r'), inner.read(TAG_INTEGER, 's')];
    if (!inner.empty) throw new DerError('ECDSA signature: trailing data in SEQUENCE');
    for (const [name, v] of [['r', r], ['s', s]] as const) {
      if (v.length === 0) throw new DerError(`ECDSA signature: empty ${name}`);
      if (v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) {
        throw new DerError(`ECDSA signature: ${name} not minimally encoded`);
      }
      if (v[0]! & 0x80) throw new DerError(`ECDSA signature: ${name} is negative`);
    }
    return { r: toBig(r), s: toBig(s) };
  } catch (err) {
    if (err instanceof DerError) throw new P256Error(`invalid ASN.1: ${err.message}`);
    throw err;
  }
}

export function encodeEcdsaSignature(sig: EcdsaSignature): Buffer {
  return derElement(TAG_SEQUENCE, derUnsignedInteger(to32(sig.r)), derUnsignedInteger(to32(sig.s)));
}

/** s <= n/2 (the midpoint counts as low, as in nebula's p256.IsNormalized). Throws P256Error on a bad encoding. */
export function isLowS(sig: Uint8Array): boolean {
  return parseEcdsaSignature(sig).s <= HALF_N;
}

/** The other of the two valid forms, (r, n-s) (nebula's p256.Swap). Throws P256Error when s is not in [1, n). */
export function swapP256Signature(sig: Uint8Array): Buffer {
  const { r, s } = parseEcdsaSignature(sig);
  if (r === 0n) throw new P256Error('ECDSA signature: r is zero');
  if (s === 0n || s >= P256_N) throw new P256Error('ECDSA signature: s is out of range');
  return encodeEcdsaSignature({ r, s: P256_N - s });
}

/** The low-s form: `sig` itself when already low (kept byte for byte, as Go's p256.Normalize does), else swapped. */
export function normalizeP256Signature(sig: Uint8Array): Buffer {
  return isLowS(sig) ? Buffer.from(sig) : swapP256Signature(sig);
}

/** ECDSA P-256 / SHA-256 over `message`, DER encoded, always low-s (as nebula >= 1.10.3 signs). */
export function p256Sign(priv: Uint8Array, message: Uint8Array): Buffer {
  const raw = cryptoSign('sha256', message, { key: p256PrivateKeyObject(priv), dsaEncoding: 'ieee-p1363' });
  const r = toBig(raw.subarray(0, 32));
  const s = toBig(raw.subarray(32));
  return encodeEcdsaSignature({ r, s: s > HALF_N ? P256_N - s : s });
}

/**
 * Go's ecdsa.VerifyASN1 over SHA-256(message): an uncompressed on-curve key, a strictly encoded signature with r and
 * s in [1, n), either s form. Never throws; any problem is a failed verification.
 */
export function p256Verify(pub: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  let key: KeyObject;
  let parsed: EcdsaSignature;
  try {
    key = cachedVerifyKey('p256', pub, p256PublicKeyObject);
    parsed = parseEcdsaSignature(sig);
  } catch {
    return false;
  }
  const { r, s } = parsed;
  if (r === 0n || s === 0n || r >= P256_N || s >= P256_N) return false;
  try {
    return cryptoVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([to32(r), to32(s)]));
  } catch {
    return false;
  }
}
