/**
 * Noise's hash functions for SHA-256 (Noise spec §4.3 and §5.2): HASH, HMAC-HASH and the Noise HKDF, which is
 * RFC 5869 with an empty `info` and 2 or 3 outputs chained as out_i = HMAC(temp_key, out_{i-1} || byte(i)).
 */
import { createHash, createHmac, hkdfSync } from 'node:crypto';

export const HASHLEN = 32;

export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmacSha256(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const EMPTY = Buffer.alloc(0);
const BYTE1 = Buffer.from([1]);
const BYTE2 = Buffer.from([2]);
const BYTE3 = Buffer.from([3]);

/**
 * Noise's HKDF with two outputs is RFC 5869 HKDF-SHA256 (salt = chaining key, info empty, 64 bytes): one native call
 * instead of three HMACs, each of which pays OpenSSL 3's per-context setup.
 */
export function hkdf2(chainingKey: Buffer, ikm: Buffer): [Buffer, Buffer] {
  const okm = Buffer.from(hkdfSync('sha256', ikm, chainingKey, EMPTY, 2 * HASHLEN));
  return [okm.subarray(0, HASHLEN), okm.subarray(HASHLEN)];
}

export function hkdf3(chainingKey: Buffer, ikm: Buffer): [Buffer, Buffer, Buffer] {
  const temp = hmacSha256(chainingKey, ikm);
  const out1 = hmacSha256(temp, BYTE1);
  const out2 = hmacSha256(temp, out1, BYTE2);
  const out3 = hmacSha256(temp, out2, BYTE3);
  return [out1, out2, out3];
}
