/**
 * Noise CipherState (Noise spec §5.1): a key plus Noise's own 64-bit nonce counter, used for the handshake's
 * encrypted fields. Nebula's data path does not use this counter (it takes the nonce from the packet header, see
 * src/shared/crypto); after Split() only the keys are handed on. Kept usable as a transport for the test vectors.
 */
import { aeadOpen, aeadSeal } from '../crypto/aead-node';
import { makeNonce } from '../crypto/nonce';
import type { CipherName } from '../crypto/types';
import { NoiseError } from './errors';

/** 2^64 - 1 is reserved by the Noise spec; the nonce must stay below it. */
const MAX_NONCE = 0xffffffffffffffffn;

export interface CipherSnapshot {
  k: Buffer | undefined;
  n: bigint;
}

export class CipherState {
  private k: Buffer | undefined;
  private n = 0n;

  constructor(
    readonly cipher: CipherName,
    key?: Buffer,
  ) {
    if (key) this.initializeKey(key);
  }

  initializeKey(key: Buffer): void {
    if (key.length !== 32) throw new NoiseError(`cipher key must be 32 bytes, got ${key.length}`);
    this.k = Buffer.from(key);
    this.n = 0n;
  }

  hasKey(): boolean {
    return this.k !== undefined;
  }

  /** The current key (for Split()); throws when none is set. */
  key(): Buffer {
    if (!this.k) throw new NoiseError('cipher state has no key');
    return Buffer.from(this.k);
  }

  get nonce(): bigint {
    return this.n;
  }

  snapshot(): CipherSnapshot {
    return { k: this.k, n: this.n };
  }

  restore(s: CipherSnapshot): void {
    this.k = s.k;
    this.n = s.n;
  }

  /** Without a key the plaintext is returned unchanged, as Noise specifies. */
  encryptWithAd(ad: Buffer, plaintext: Buffer): Buffer {
    if (!this.k) return Buffer.from(plaintext);
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce exhausted');
    const out = aeadSeal(this.cipher, this.k, makeNonce(this.cipher, this.n), ad, plaintext);
    this.n++;
    return out;
  }

  decryptWithAd(ad: Buffer, ciphertext: Buffer): Buffer {
    if (!this.k) return Buffer.from(ciphertext);
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce exhausted');
    const out = aeadOpen(this.cipher, this.k, makeNonce(this.cipher, this.n), ad, ciphertext);
    if (!out) throw new NoiseError('decryption failed');
    // The nonce only advances on success (Noise spec §5.1).
    this.n++;
    return out;
  }
}
