/**
 * Signature-check keys (CA public keys) as node:crypto KeyObjects, kept from one check to the next. Under OpenSSL 3,
 * importing a raw key (DER decoder) costs about as much as the Ed25519 check itself, and a node checks every peer's
 * certificate against the same few CAs. Public keys only, so nothing secret is kept; bounded, oldest dropped first.
 */
import type { KeyObject } from 'node:crypto';

export const VERIFY_KEY_CACHE_SIZE = 64;

const keys = new Map<string, KeyObject>();

/** The KeyObject of public key `raw` of `kind`, made by `load` (which may throw: nothing is kept then) on first use. */
export function cachedVerifyKey(kind: 'ed25519' | 'p256', raw: Uint8Array, load: (raw: Uint8Array) => KeyObject): KeyObject {
  const id = `${kind}:${Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex')}`;
  let key = keys.get(id);
  if (key === undefined) {
    key = load(raw);
    keys.set(id, key);
    if (keys.size > VERIFY_KEY_CACHE_SIZE) keys.delete(keys.keys().next().value!);
  }
  return key;
}

/** How many keys are held (tests: the cache stays bounded). */
export function verifyKeyCacheSize(): number {
  return keys.size;
}
