/**
 * X25519 with raw 32-byte keys in and out, on node:crypto KeyObjects. node:crypto only imports DER/JWK, so raw keys
 * get a fixed DER prefix (PKCS8 for private, SPKI for public; platform-notes §8) and exports take the DER's last 32
 * bytes.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, KeyObject } from 'node:crypto';
import { NoiseError } from './errors';

export const DHLEN = 32;

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  /** Raw 32-byte private scalar (as stored in a nebula `pki.key` / Noise test vector). */
  privateRaw: Buffer;
  publicRaw: Buffer;
  privateKey: KeyObject;
}

export function x25519PrivateKey(raw: Buffer): KeyObject {
  if (raw.length !== DHLEN) throw new NoiseError(`X25519 private key must be ${DHLEN} bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicKey(raw: Buffer): KeyObject {
  if (raw.length !== DHLEN) throw new NoiseError(`X25519 public key must be ${DHLEN} bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - DHLEN));
}

function rawPrivateKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - DHLEN));
}

/** A key pair from a raw private key. */
export function x25519KeyPairFromPrivate(privateRaw: Buffer): X25519KeyPair {
  const privateKey = x25519PrivateKey(privateRaw);
  return { privateRaw: Buffer.from(privateRaw), publicRaw: rawPublicKey(privateKey), privateKey };
}

/** A fresh key pair from the CSPRNG (ephemeral keys, new node keys). */
export function generateX25519KeyPair(): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateRaw: rawPrivateKey(privateKey), publicRaw: rawPublicKey(privateKey), privateKey };
}

/**
 * DH(private, peerPublic) → 32-byte shared secret. OpenSSL refuses low-order peer points (all-zero result); that is
 * reported as a NoiseError so a hostile handshake is dropped rather than crashing the caller.
 */
export function x25519(privateKey: KeyObject, peerPublicRaw: Buffer): Buffer {
  try {
    return diffieHellman({ privateKey, publicKey: x25519PublicKey(peerPublicRaw) });
  } catch (err) {
    if (err instanceof NoiseError) throw err;
    throw new NoiseError(`X25519 failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
