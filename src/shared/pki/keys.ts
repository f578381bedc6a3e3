/**
 * Raw 32-byte Ed25519/X25519 keys on top of node:crypto KeyObjects. node:crypto has no raw import, so keys are
 * wrapped in a fixed DER prefix (PKCS8 for private, SPKI for public) and exported by taking the DER tail
 * (platform-notes §8). Nebula stores Ed25519 private keys Go-style as seed(32) || public(32).
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { cachedVerifyKey } from './verify-key-cache';

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function expectLength(buf: Uint8Array, len: number, what: string): void {
  if (buf.length !== len) throw new Error(`${what} must be ${len} bytes, got ${buf.length}`);
}

function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

function rawPrivate(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - 32));
}

export function x25519PrivateKeyObject(priv: Uint8Array): KeyObject {
  expectLength(priv, 32, 'X25519 private key');
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, priv]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicKeyObject(pub: Uint8Array): KeyObject {
  expectLength(pub, 32, 'X25519 public key');
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: 'der', type: 'spki' });
}

export function ed25519PrivateKeyObject(seed: Uint8Array): KeyObject {
  expectLength(seed, 32, 'Ed25519 seed');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

export function ed25519PublicKeyObject(pub: Uint8Array): KeyObject {
  expectLength(pub, 32, 'Ed25519 public key');
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
}

export interface RawKeyPair {
  publicKey: Buffer;
  /** X25519: 32 raw bytes. Ed25519: 64 bytes seed || public (Go's ed25519.PrivateKey layout). */
  privateKey: Buffer;
}

export function generateX25519KeyPair(): RawKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublic(publicKey), privateKey: rawPrivate(privateKey) };
}

export function generateEd25519KeyPair(): RawKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = rawPublic(publicKey);
  return { publicKey: pub, privateKey: Buffer.concat([rawPrivate(privateKey), pub]) };
}

/** X25519 base-point multiplication: the public key belonging to a 32-byte private key. */
export function x25519PublicFromPrivate(priv: Uint8Array): Buffer {
  return rawPublic(createPublicKey(x25519PrivateKeyObject(priv)));
}

/** The public key derived from the seed half of a 64-byte Go-style Ed25519 private key. */
export function ed25519PublicFromPrivate(priv: Uint8Array): Buffer {
  expectLength(priv, 64, 'Ed25519 private key');
  return rawPublic(createPublicKey(ed25519PrivateKeyObject(priv.subarray(0, 32))));
}

/** X25519 Diffie-Hellman with raw keys. */
export function x25519SharedSecret(priv: Uint8Array, peerPub: Uint8Array): Buffer {
  return diffieHellman({ privateKey: x25519PrivateKeyObject(priv), publicKey: x25519PublicKeyObject(peerPub) });
}

/** Pure Ed25519 signature (no pre-hash) with a 64-byte Go-style private key. */
export function ed25519Sign(priv: Uint8Array, message: Uint8Array): Buffer {
  expectLength(priv, 64, 'Ed25519 private key');
  return cryptoSign(null, message, ed25519PrivateKeyObject(priv.subarray(0, 32)));
}

/** Verifies a pure Ed25519 signature. Wrong-sized keys or signatures simply fail verification. */
export function ed25519Verify(pub: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (pub.length !== 32 || signature.length !== 64) return false;
  try {
    return cryptoVerify(null, message, cachedVerifyKey('ed25519', pub, ed25519PublicKeyObject), signature);
  } catch {
    return false;
  }
}
