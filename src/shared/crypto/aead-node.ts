/**
 * AEAD through node:crypto: the portable reference implementation. node:crypto has no way to reuse a cipher
 * context, so each packet creates one (~3-4 µs, platform-notes §8); the EVP backend exists for speed.
 * Also provides the one-shot seal/open used by Noise's CipherState during the handshake.
 */
import { createCipheriv, createDecipheriv, type CipherGCMTypes, type CipherChaCha20Poly1305Types } from 'node:crypto';
import { CipherName, CryptoError, KEY_LEN, NONCE_LEN, PacketCipher, TAG_LEN } from './types';
import { writeNonce } from './nonce';

type NodeAlgorithm = CipherGCMTypes | CipherChaCha20Poly1305Types;

function algorithm(cipher: CipherName): NodeAlgorithm {
  return cipher === 'aes' ? 'aes-256-gcm' : 'chacha20-poly1305';
}

/** One-shot AEAD encryption; returns ciphertext || tag. */
export function aeadSeal(cipher: CipherName, key: Buffer, nonce: Buffer, ad: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv(algorithm(cipher) as CipherGCMTypes, key, nonce, { authTagLength: TAG_LEN });
  c.setAAD(ad);
  const head = c.update(plaintext);
  const tail = c.final();
  return Buffer.concat([head, tail, c.getAuthTag()]);
}

/** One-shot AEAD decryption of ciphertext || tag; returns undefined when authentication fails. */
export function aeadOpen(
  cipher: CipherName,
  key: Buffer,
  nonce: Buffer,
  ad: Buffer,
  sealed: Buffer,
): Buffer | undefined {
  if (sealed.length < TAG_LEN) return undefined;
  const d = createDecipheriv(algorithm(cipher) as CipherGCMTypes, key, nonce, { authTagLength: TAG_LEN });
  d.setAAD(ad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  const head = d.update(sealed.subarray(0, sealed.length - TAG_LEN));
  try {
    const tail = d.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return undefined;
  }
}

export class NodePacketCipher implements PacketCipher {
  readonly impl = 'node' as const;
  private readonly key: Buffer;
  private readonly algo: NodeAlgorithm;
  // One nonce buffer per cipher; node copies it into its own context so reusing it is safe.
  private readonly nonce = Buffer.alloc(NONCE_LEN);

  constructor(
    readonly cipher: CipherName,
    key: Buffer,
  ) {
    if (key.length !== KEY_LEN) throw new CryptoError(`AEAD key must be ${KEY_LEN} bytes, got ${key.length}`);
    this.key = Buffer.from(key);
    this.algo = algorithm(cipher);
  }

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
  ): number {
    writeNonce(this.nonce, this.cipher, counter);
    const c = createCipheriv(this.algo as CipherGCMTypes, this.key, this.nonce, { authTagLength: TAG_LEN });
    c.setAAD(ad.subarray(adOffset, adOffset + adLen));
    // update() returns a new Buffer; copy it out before (possibly) overwriting src in the in-place case is fine
    // because update() has already consumed the whole input.
    const body = c.update(src.subarray(srcOffset, srcOffset + len));
    body.copy(dst, dstOffset);
    c.final();
    c.getAuthTag().copy(dst, dstOffset + len);
    return len + TAG_LEN;
  }

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
  ): number {
    if (len < TAG_LEN) return -1;
    const ptLen = len - TAG_LEN;
    writeNonce(this.nonce, this.cipher, counter);
    const d = createDecipheriv(this.algo as CipherGCMTypes, this.key, this.nonce, { authTagLength: TAG_LEN });
    d.setAAD(ad.subarray(adOffset, adOffset + adLen));
    d.setAuthTag(src.subarray(srcOffset + ptLen, srcOffset + len));
    const body = d.update(src.subarray(srcOffset, srcOffset + ptLen));
    try {
      d.final();
    } catch {
      return -1;
    }
    body.copy(dst, dstOffset);
    return ptLen;
  }

  dispose(): void {
    // Nothing native to release.
  }
}
