/**
 * Noise HandshakeState for pattern IX only (Noise spec §5.3, §7.5), as Nebula uses it (nebula-spec §3.1), with the
 * DH function of the node's curve (25519, or P256 for P256 certificates: dh-functions.ts):
 *
 *   -> e, s
 *   <- e, ee, se, s, es
 *
 * No PSK (Nebula's "ix_psk0" subtype name notwithstanding), prologue configurable (Nebula: empty). Message 1 carries
 * the initiator's static key and payload in clear (no key yet); message 2 encrypts the responder's static key and
 * payload. A read that fails leaves the state exactly as before it, so a forged or corrupted message cannot kill a
 * pending handshake (flynn/noise rolls back the same way).
 */
import type { CipherName } from '../crypto/types';
import { CipherState } from './cipher-state';
import { DHLEN } from './dh';
import { dhFor, type DHCurve, type DHKeyPair, type DHPublicKey, type NoiseDH } from './dh-functions';
import { NoiseError } from './errors';
import { staticKeys } from './static-keys';
import { SymmetricState } from './symmetric-state';

const TAGLEN = 16;

/** Minimum sizes (25519): message 1 = e + s; message 2 = e + encrypted s + the (possibly empty) payload's tag. */
export const MESSAGE1_MIN = DHLEN + DHLEN;
export const MESSAGE2_MIN = DHLEN + DHLEN + TAGLEN + TAGLEN;

export function noiseProtocolName(cipher: CipherName, curve: DHCurve = 'CURVE25519'): string {
  return `Noise_IX_${dhFor(curve).name}_${cipher === 'aes' ? 'AESGCM' : 'ChaChaPoly'}_SHA256`;
}

export interface NoiseHandshakeOptions {
  cipher: CipherName;
  /**
   * Raw 32-byte private key of `curve` (the node's `pki.key`). Prepared once per key and kept (static-keys.ts): a
   * new key, after a reload, is prepared on its first handshake.
   */
  staticPrivate: Buffer;
  /** The curve of the node's certificate; default CURVE25519. */
  curve?: DHCurve;
  /** Defaults to empty, which is what Nebula uses. */
  prologue?: Buffer;
  /** Fixed ephemeral private key, for test vectors only; otherwise one is generated. */
  ephemeralPrivate?: Buffer;
}

export interface NoiseReadResult {
  payload: Buffer;
  /** The peer's raw static public key (32 bytes, 65 for P256), as learnt from the message. */
  peerStatic: Buffer;
}

/** The transport keys, already oriented for this side's role (nebula-spec §2.4). */
export interface NoiseTransportKeys {
  sendKey: Buffer;
  recvKey: Buffer;
}

export type NoiseRole = 'initiator' | 'responder';

type Step = 'message1' | 'message2' | 'done' | 'failed';

export class NoiseIXHandshake {
  private readonly ss: SymmetricState;
  private readonly dh: NoiseDH;
  private readonly s: DHKeyPair;
  private readonly fixedEphemeral: Buffer | undefined;
  private e: DHKeyPair | undefined;
  /** The peer's keys, each imported at most once however many DHs use it. */
  private rs: DHPublicKey | undefined;
  private re: DHPublicKey | undefined;
  private step: Step = 'message1';

  constructor(
    readonly role: NoiseRole,
    opts: NoiseHandshakeOptions,
  ) {
    if (opts.cipher !== 'aes' && opts.cipher !== 'chachapoly') {
      throw new NoiseError(`unknown cipher ${String(opts.cipher)}`);
    }
    const curve = opts.curve ?? 'CURVE25519';
    this.dh = dhFor(curve);
    this.ss = new SymmetricState(opts.cipher, noiseProtocolName(opts.cipher, curve));
    this.s = staticKeys.get(curve, opts.staticPrivate);
    if (opts.ephemeralPrivate && opts.ephemeralPrivate.length !== this.dh.privateLen) {
      throw new NoiseError(`ephemeral private key must be ${this.dh.privateLen} bytes`);
    }
    this.fixedEphemeral = opts.ephemeralPrivate ? Buffer.from(opts.ephemeralPrivate) : undefined;
    this.ss.mixHash(opts.prologue ?? Buffer.alloc(0));
  }

  get cipher(): CipherName {
    return this.ss.cipher;
  }

  get protocolName(): string {
    return `Noise_IX_${this.dh.name}_${this.ss.cipher === 'aes' ? 'AESGCM' : 'ChaChaPoly'}_SHA256`;
  }

  /** Our raw static public key. */
  get localStatic(): Buffer {
    return Buffer.from(this.s.publicRaw);
  }

  /** The peer's raw static public key, once a message carrying it has been read. */
  get peerStatic(): Buffer | undefined {
    return this.rs ? Buffer.from(this.rs.raw) : undefined;
  }

  get complete(): boolean {
    return this.step === 'done';
  }

  /** h: after completion, a unique identifier of this handshake (channel binding). */
  get handshakeHash(): Buffer {
    return this.ss.handshakeHash;
  }

  private expect(role: NoiseRole, step: Step, what: string): void {
    if (this.role !== role) throw new NoiseError(`${what} is for the ${role}, this is the ${this.role}`);
    if (this.step !== step) throw new NoiseError(`${what} called in state ${this.step}`);
  }

  private newEphemeral(): DHKeyPair {
    return this.fixedEphemeral ? this.dh.fromPrivate(this.fixedEphemeral) : this.dh.generate();
  }

  /** Initiator: `-> e, s` followed by the payload (all in clear). */
  writeMessage1(payload: Buffer): Buffer {
    this.expect('initiator', 'message1', 'writeMessage1');
    const e = (this.e = this.newEphemeral());
    this.ss.mixHash(e.publicRaw);
    const s = this.ss.encryptAndHash(this.s.publicRaw);
    const p = this.ss.encryptAndHash(payload);
    this.step = 'message2';
    return Buffer.concat([e.publicRaw, s, p]);
  }

  /** Responder: reads `-> e, s` and the payload. */
  readMessage1(msg: Buffer): NoiseReadResult {
    this.expect('responder', 'message1', 'readMessage1');
    const len = this.dh.publicLen;
    if (msg.length < 2 * len) throw new NoiseError(`message 1 too short: ${msg.length} bytes`);
    const snap = this.ss.snapshot();
    try {
      const re = this.dh.publicKey(msg.subarray(0, len));
      this.ss.mixHash(re.raw);
      const rs = this.ss.decryptAndHash(msg.subarray(len, 2 * len));
      const payload = this.ss.decryptAndHash(msg.subarray(2 * len));
      this.re = re;
      this.rs = this.dh.publicKey(rs);
      this.step = 'message2';
      return { payload, peerStatic: Buffer.from(rs) };
    } catch (err) {
      this.ss.restore(snap);
      throw asNoiseError(err);
    }
  }

  /** Responder: `<- e, ee, se, s, es` followed by the encrypted payload. Completes the handshake. */
  writeMessage2(payload: Buffer): Buffer {
    this.expect('responder', 'message2', 'writeMessage2');
    const re = this.re!;
    const rs = this.rs!;
    const snap = this.ss.snapshot();
    try {
      const e = (this.e = this.newEphemeral());
      this.ss.mixHash(e.publicRaw);
      this.ss.mixKey(e.dh(re)); // ee
      this.ss.mixKey(e.dh(rs)); // se (responder side: DH(e, rs))
      const s = this.ss.encryptAndHash(this.s.publicRaw);
      this.ss.mixKey(this.s.dh(re)); // es (responder side: DH(s, re))
      const p = this.ss.encryptAndHash(payload);
      this.step = 'done';
      return Buffer.concat([e.publicRaw, s, p]);
    } catch (err) {
      // Only a hostile (low-order) peer key gets here; the handshake cannot proceed.
      this.ss.restore(snap);
      this.step = 'failed';
      throw asNoiseError(err);
    }
  }

  /** Initiator: reads message 2. Completes the handshake. */
  readMessage2(msg: Buffer): NoiseReadResult {
    this.expect('initiator', 'message2', 'readMessage2');
    const len = this.dh.publicLen;
    if (msg.length < len + len + TAGLEN + TAGLEN) throw new NoiseError(`message 2 too short: ${msg.length} bytes`);
    const e = this.e!;
    const snap = this.ss.snapshot();
    try {
      const re = this.dh.publicKey(msg.subarray(0, len));
      this.ss.mixHash(re.raw);
      this.ss.mixKey(e.dh(re)); // ee
      this.ss.mixKey(this.s.dh(re)); // se (initiator side: DH(s, re))
      const rsRaw = this.ss.decryptAndHash(msg.subarray(len, len + len + TAGLEN));
      const rs = this.dh.publicKey(rsRaw);
      this.ss.mixKey(e.dh(rs)); // es (initiator side: DH(e, rs))
      const payload = this.ss.decryptAndHash(msg.subarray(len + len + TAGLEN));
      this.re = re;
      this.rs = rs;
      this.step = 'done';
      return { payload, peerStatic: Buffer.from(rsRaw) };
    } catch (err) {
      this.ss.restore(snap);
      throw asNoiseError(err);
    }
  }

  /** The raw Split() keys: c1 = initiator→responder, c2 = responder→initiator. */
  splitRaw(): [Buffer, Buffer] {
    if (this.step !== 'done') throw new NoiseError('split() before the handshake completed');
    return this.ss.split();
  }

  /** Transport keys oriented for this role: the initiator sends with c1, the responder with c2. */
  split(): NoiseTransportKeys {
    const [c1, c2] = this.splitRaw();
    return this.role === 'initiator' ? { sendKey: c1, recvKey: c2 } : { sendKey: c2, recvKey: c1 };
  }

  /** Noise CipherStates (with Noise's own nonce counters) oriented for this role; Nebula itself does not use these. */
  splitCipherStates(): { send: CipherState; recv: CipherState } {
    const { sendKey, recvKey } = this.split();
    return { send: new CipherState(this.cipher, sendKey), recv: new CipherState(this.cipher, recvKey) };
  }
}

function asNoiseError(err: unknown): NoiseError {
  return err instanceof NoiseError ? err : new NoiseError(err instanceof Error ? err.message : String(err));
}

export function createInitiator(opts: NoiseHandshakeOptions): NoiseIXHandshake {
  return new NoiseIXHandshake('initiator', opts);
}

export function createResponder(opts: NoiseHandshakeOptions): NoiseIXHandshake {
  return new NoiseIXHandshake('responder', opts);
}
