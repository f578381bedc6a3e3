/** Noise SymmetricState (Noise spec §5.2): the chaining key ck, handshake hash h and the current CipherState. */
import type { CipherName } from '../crypto/types';
import { CipherSnapshot, CipherState } from './cipher-state';
import { HASHLEN, hkdf2, sha256 } from './hash';

export interface SymmetricSnapshot {
  ck: Buffer;
  h: Buffer;
  cs: CipherSnapshot;
}

const EMPTY = Buffer.alloc(0);

export class SymmetricState {
  private ck: Buffer;
  private h: Buffer;
  private readonly cs: CipherState;

  constructor(
    readonly cipher: CipherName,
    protocolName: string,
  ) {
    const name = Buffer.from(protocolName, 'ascii');
    // Names of at most HASHLEN bytes are zero-padded, longer ones hashed.
    this.h = name.length <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.length)]) : sha256(name);
    this.ck = Buffer.from(this.h);
    this.cs = new CipherState(cipher);
  }

  get handshakeHash(): Buffer {
    return Buffer.from(this.h);
  }

  hasKey(): boolean {
    return this.cs.hasKey();
  }

  mixKey(ikm: Buffer): void {
    const [ck, tempK] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.cs.initializeKey(tempK);
  }

  mixHash(data: Buffer): void {
    this.h = sha256(this.h, data);
  }

  encryptAndHash(plaintext: Buffer): Buffer {
    const ct = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  decryptAndHash(ciphertext: Buffer): Buffer {
    const pt = this.cs.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /** A copy of the whole state, so a message that fails to decrypt can be undone (see restore()). */
  snapshot(): SymmetricSnapshot {
    return { ck: this.ck, h: this.h, cs: this.cs.snapshot() };
  }

  restore(s: SymmetricSnapshot): void {
    this.ck = s.ck;
    this.h = s.h;
    this.cs.restore(s.cs);
  }

  /** Returns the two transport keys (c1 = initiator→responder, c2 = responder→initiator). */
  split(): [Buffer, Buffer] {
    return hkdf2(this.ck, EMPTY);
  }
}
