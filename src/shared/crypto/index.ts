/**
 * Per-packet AEAD entry point: `createPacketCipher` picks the OpenSSL-EVP backend when koffi can reach the symbols
 * in the node binary and falls back to node:crypto otherwise. Both produce byte-identical packets.
 */
import { NodePacketCipher } from './aead-node';
import { EvpPacketCipher } from './aead-evp';
import { evpBindings } from './evp';
import { CipherName, CryptoError, PacketCipher } from './types';

export { CipherName, CryptoError, KEY_LEN, NONCE_LEN, PacketCipher, TAG_LEN } from './types';
export { writeNonce, makeNonce } from './nonce';
export { NodePacketCipher, aeadSeal, aeadOpen } from './aead-node';
export { EvpPacketCipher } from './aead-evp';
export { evpLoadError } from './evp';

export type PacketCipherImpl = 'evp' | 'node';

/** True when the EVP backend can be used in this process. */
export function evpAvailable(): boolean {
  return evpBindings() !== null;
}

/**
 * A cipher for one direction of one tunnel. `impl` forces a backend; 'evp' silently falls back to node:crypto when
 * EVP is unavailable (check `.impl` on the result to see which one you got).
 */
export function createPacketCipher(cipher: CipherName, key: Buffer, impl: PacketCipherImpl = 'evp'): PacketCipher {
  if (cipher !== 'aes' && cipher !== 'chachapoly') throw new CryptoError(`unknown cipher ${String(cipher)}`);
  if (impl === 'evp') {
    const evp = evpBindings();
    if (evp) return new EvpPacketCipher(cipher, key, evp);
  }
  return new NodePacketCipher(cipher, key);
}
