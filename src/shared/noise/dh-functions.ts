/**
 * The Noise DH functions Nebula uses, picked by the curve of the node's certificate (Go 1.11's newCipherSuite):
 * 25519 (X25519, 32-byte keys) and P256 (noiseutil.DHP256: 65-byte uncompressed public keys 04||X||Y, the shared
 * secret being the 32-byte X coordinate, as Go's crypto/ecdh returns it). Noise's DHLEN is the public key size here,
 * as flynn/noise uses it (noiseutil/nist.go explains the two meanings).
 *
 * Keys are prepared once and then used for every DH they take part in: a key pair holds its private key ready (an
 * X25519 KeyObject, a P256 ECDH object), and a peer's public key read from a message is a DHPublicKey that imports
 * itself on its first DH only (a responder uses the initiator's ephemeral key twice).
 */
import type { KeyObject } from 'node:crypto';
import { generateP256KeyAgreement, p256KeyAgreement, P256Error, type P256KeyAgreement } from '../pki/v2/p256';
import { generateX25519KeyPair, x25519, x25519KeyPairFromPrivate, x25519PublicKey, type X25519KeyPair } from './dh';
import { NoiseError } from './errors';

export type DHCurve = 'CURVE25519' | 'P256';

/** A peer's public key as read from a message; `raw` is its wire form. */
export interface DHPublicKey {
  readonly raw: Buffer;
}

export interface DHKeyPair {
  readonly privateRaw: Buffer;
  readonly publicRaw: Buffer;
  /** DH(this private key, peer public key). Throws NoiseError on a key the curve refuses. */
  dh(peer: DHPublicKey): Buffer;
}

export interface NoiseDH {
  /** The name in the Noise protocol name ("Noise_IX_<name>_..."). */
  readonly name: '25519' | 'P256';
  /** Size of a public key on the wire. */
  readonly publicLen: number;
  readonly privateLen: number;
  fromPrivate(privateRaw: Buffer): DHKeyPair;
  generate(): DHKeyPair;
  /** A peer's public key (a copy of `raw`), for the DHs of this curve. Checked when first used. */
  publicKey(raw: Buffer): DHPublicKey;
}

/** An X25519 peer key, imported into node:crypto at its first DH and kept for the next ones. */
class X25519PublicKey implements DHPublicKey {
  private imported: KeyObject | undefined;

  constructor(readonly raw: Buffer) {}

  get keyObject(): KeyObject {
    this.imported ??= x25519PublicKey(this.raw);
    return this.imported;
  }
}

/** P256 peer keys stay raw: ECDH.computeSecret decodes a point for less than importing it as a KeyObject costs. */
class P256PublicKey implements DHPublicKey {
  constructor(readonly raw: Buffer) {}
}

function x25519Pair(kp: X25519KeyPair): DHKeyPair {
  return {
    get privateRaw(): Buffer {
      return kp.privateRaw; // exported on demand (tests): a handshake never reads it
    },
    publicRaw: kp.publicRaw,
    dh: (peer) => x25519(kp.privateKey, peer instanceof X25519PublicKey ? peer.keyObject : peer.raw),
  };
}

function p256Pair(ka: P256KeyAgreement): DHKeyPair {
  return {
    privateRaw: ka.privateKey,
    publicRaw: ka.publicKey,
    dh: (peer) => {
      try {
        return ka.sharedSecret(peer.raw);
      } catch (err) {
        throw new NoiseError(`P256 ECDH failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

export const DH_25519: NoiseDH = {
  name: '25519',
  publicLen: 32,
  privateLen: 32,
  fromPrivate: (raw) => x25519Pair(x25519KeyPairFromPrivate(raw)),
  generate: () => x25519Pair(generateX25519KeyPair()),
  publicKey: (raw) => new X25519PublicKey(Buffer.from(raw)),
};

export const DH_P256: NoiseDH = {
  name: 'P256',
  publicLen: 65,
  privateLen: 32,
  fromPrivate: (raw) => {
    try {
      return p256Pair(p256KeyAgreement(raw));
    } catch (err) {
      if (err instanceof P256Error) throw new NoiseError(err.message);
      throw err;
    }
  },
  generate: () => p256Pair(generateP256KeyAgreement()),
  publicKey: (raw) => new P256PublicKey(Buffer.from(raw)),
};

export function dhFor(curve: DHCurve): NoiseDH {
  return curve === 'P256' ? DH_P256 : DH_25519;
}
