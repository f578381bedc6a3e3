/**
 * The per-packet AEAD contract shared by the node:crypto and OpenSSL-EVP implementations (nebula-spec §2).
 *
 * Everything is offset-based on caller-owned Buffers so a packet loop can keep one receive and one send Buffer and
 * never allocate per packet. Wire layout: header(16, = AD) || ciphertext(len) || tag(16).
 */

/** Nebula's `cipher` config values (nebula-spec §2.1). */
export type CipherName = 'aes' | 'chachapoly';

export const KEY_LEN = 32;
export const TAG_LEN = 16;
export const NONCE_LEN = 12;

export interface PacketCipher {
  readonly cipher: CipherName;
  /** Which backend this is, for logs and the benchmark. */
  readonly impl: 'evp' | 'node';

  /**
   * Encrypts `src[srcOffset, srcOffset+len)` into `dst` at `dstOffset` (ciphertext followed by the 16-byte tag),
   * authenticating `ad[adOffset, adOffset+adLen)`. In-place (same buffer, same offset) is allowed.
   * Returns the bytes written (len + 16).
   */
  encrypt(
    dst: Buffer,
    dstOffset: number,
    ad: Buffer,
    adOffset: number,
    adLen: number,
    src: Buffer,
    srcOffset: number,
    len: number,
    counter: number | bigint,
  ): number;

  /**
   * Decrypts `src[srcOffset, srcOffset+len)` (ciphertext || tag, so len >= 16) into `dst` at `dstOffset`.
   * Returns the plaintext length, or -1 when the tag does not verify or the input is shorter than a tag. On -1 the
   * bytes written to `dst` are garbage (EVP writes plaintext before it checks the tag) and must not be used.
   * In-place is allowed.
   */
  decrypt(
    dst: Buffer,
    dstOffset: number,
    ad: Buffer,
    adOffset: number,
    adLen: number,
    src: Buffer,
    srcOffset: number,
    len: number,
    counter: number | bigint,
  ): number;

  /** Releases native resources (EVP contexts). The cipher must not be used afterwards. Idempotent. */
  dispose(): void;
}

export class CryptoError extends Error {}
