/**
 * X25519 with raw 32-byte keys in and out, on node:crypto KeyObjects. node:crypto (Node 20) has no raw import. A
 * private key gets a fixed PKCS8 DER prefix (platform-notes §8); that import costs most of a millisecond under
 * OpenSSL 3's decoder, which is why a node's static key is imported once (static-keys.ts). A peer's public key goes
 * through JWK instead (the raw bytes base64url-encoded, no decoder): about 8x cheaper than DER.
 *
 * Keys are exported as DER, never as JWK: Node 20 exports a JWK holding the key's mutex while it allocates, and a
 * garbage collection at that moment that frees the generateKeyPairSync job of the same key locks that mutex again
 * (the job's destructor): the process hangs for good. A loop of generate-then-export-JWK hangs within a few thousand
 * keys; the supervisor hung that way under a handshake flood.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, KeyObject } from 'node:crypto';
import { NoiseError } from './errors';

export const DHLEN = 32;

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface X25519KeyPair {
  /** Raw 32-byte private scalar (as stored in a nebula `pki.key` / Noise test vector). */
  readonly privateRaw: Buffer;
  readonly publicRaw: Buffer;
  readonly privateKey: KeyObject;
}

export function x25519PrivateKey(raw: Buffer): KeyObject {
  if (raw.length !== DHLEN) throw new NoiseError(`X25519 private key must be ${DHLEN} bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicKey(raw: Buffer): KeyObject {
  if (raw.length !== DHLEN) throw new NoiseError(`X25519 public key must be ${DHLEN} bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** The last 32 bytes of a DER export: the raw key (fixed-size prefixes for X25519). */
function derTail(der: Buffer): Buffer {
  return Buffer.from(der.subarray(der.length - DHLEN));
}

/** The raw public key of an X25519 KeyObject, private or public. */
export function rawPublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return derTail(publicKey.export({ format: 'der', type: 'spki' }));
}

function rawPrivateKey(key: KeyObject): Buffer {
  return derTail(key.export({ format: 'der', type: 'pkcs8' }));
}

/** A key pair from a raw private key. */
export function x25519KeyPairFromPrivate(privateRaw: Buffer): X25519KeyPair {
  const privateKey = x25519PrivateKey(privateRaw);
  return { privateRaw: Buffer.from(privateRaw), publicRaw: rawPublicKey(privateKey), privateKey };
}

/** u = 9, the X25519 base point: X25519(k, 9) is k's public key (RFC 7748 §6.1). */
let basePoint: KeyObject | undefined;

/**
 * A fresh key pair from the CSPRNG (ephemeral keys, new node keys). Its public key is computed as a DH with the base
 * point: a third of the cost of a DER export (OpenSSL 3's encoder), and no JWK export (see above). The raw private
 * half is exported only if asked for: a handshake never needs it.
 */
export function generateX25519KeyPair(): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  basePoint ??= x25519PublicKey(Buffer.concat([Buffer.from([9]), Buffer.alloc(DHLEN - 1)]));
  let privateRaw: Buffer | undefined;
  return {
    get privateRaw(): Buffer {
      privateRaw ??= rawPrivateKey(privateKey);
      return privateRaw;
    },
    publicRaw: diffieHellman({ privateKey, publicKey: basePoint }),
    privateKey,
  };
}

/**
 * DH(private, peerPublic) → 32-byte shared secret; the peer key raw or already imported (x25519PublicKey) when it
 * serves several DHs. OpenSSL refuses low-order peer points (all-zero result); that is reported as a NoiseError so a
 * hostile handshake is dropped rather than crashing the caller.
 */
export function x25519(privateKey: KeyObject, peerPublic: Buffer | KeyObject): Buffer {
  try {
    const publicKey = peerPublic instanceof KeyObject ? peerPublic : x25519PublicKey(peerPublic);
    return diffieHellman({ privateKey, publicKey });
  } catch (err) {
    if (err instanceof NoiseError) throw err;
    throw new NoiseError(`X25519 failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
