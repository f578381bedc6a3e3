/**
 * The 12-byte AEAD nonce: 4 zero bytes then the 64-bit counter, big-endian for AES-GCM and little-endian for
 * ChaCha20-Poly1305 (nebula-spec §2.2; the same rule as Noise's own nonces, so the handshake uses it too).
 */
import { CipherName, NONCE_LEN } from './types';
import { splitCounter } from '../util/counter64';


/**
 * Writes the nonce for `counter` into `nonce[0..12)` without allocating for number counters.
 * Number counters must be non-negative integers <= 2^53 - 1 (what a JS number represents exactly); bigint
 * counters cover the full uint64 range.
 */
export function writeNonce(nonce: Buffer, cipher: CipherName, counter: number | bigint): void {
  const { hi, lo } = splitCounter(counter);
  nonce.writeUInt32LE(0, 0);
  if (cipher === 'aes') {
    nonce.writeUInt32BE(hi, 4);
    nonce.writeUInt32BE(lo, 8);
  } else {
    nonce.writeUInt32LE(lo, 4);
    nonce.writeUInt32LE(hi, 8);
  }
}

export function makeNonce(cipher: CipherName, counter: number | bigint): Buffer {
  const n = Buffer.alloc(NONCE_LEN);
  writeNonce(n, cipher, counter);
  return n;
}
