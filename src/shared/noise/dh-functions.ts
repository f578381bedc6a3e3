/**
 * The Noise DH functions Nebula uses, picked by the curve of the node's certificate (Go 1.11's newCipherSuite):
 * 25519 (X25519, 32-byte keys) and P256 (noiseutil.DHP256: 65-byte uncompressed public keys 04||X||Y, the shared
 * secret being the 32-byte X coordinate, as Go's crypto/ecdh returns it). Noise's DHLEN is the public key size here,
 * as flynn/noise uses it (noiseutil/nist.go explains the two meanings).
 */
import { generateP256KeyPair, p256PublicFromPrivate, p256SharedSecret, P256Error } from '../pki/v2/p256';
import { generateX25519KeyPair, x25519, x25519KeyPairFromPrivate, type X25519KeyPair } from './dh';
import { NoiseError } from './errors';

export type DHCurve = 'CURVE25519' | 'P256';

export interface DHKeyPair {
  privateRaw: Buffer;
  publicRaw: Buffer;
  /** DH(this private key, peer public key). Throws NoiseError on a key the curve refuses. */
  dh(peerPublicRaw: Buffer): Buffer;
}

export interface NoiseDH {
  /** The name in the Noise protocol name ("Noise_IX_<name>_..."). */
  readonly name: '25519' | 'P256';
  /** Size of a public key on the wire. */
  readonly publicLen: number;
  readonly privateLen: number;
  fromPrivate(privateRaw: Buffer): DHKeyPair;
  generate(): DHKeyPair;
}

function x25519Pair(kp: X25519KeyPair): DHKeyPair {
  return { privateRaw: kp.privateRaw, publicRaw: kp.publicRaw, dh: (peer) => x25519(kp.privateKey, peer) };
}

function p256Pair(privateRaw: Buffer, publicRaw: Buffer): DHKeyPair {
  return {
    privateRaw,
    publicRaw,
    dh: (peer) => {
      try {
        return p256SharedSecret(privateRaw, peer);
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
};

export const DH_P256: NoiseDH = {
  name: 'P256',
  publicLen: 65,
  privateLen: 32,
  fromPrivate: (raw) => {
    try {
      return p256Pair(Buffer.from(raw), p256PublicFromPrivate(raw));
    } catch (err) {
      if (err instanceof P256Error) throw new NoiseError(err.message);
      throw err;
    }
  },
  generate: () => {
    const kp = generateP256KeyPair();
    return p256Pair(kp.privateKey, kp.publicKey);
  },
};

export function dhFor(curve: DHCurve): NoiseDH {
  return curve === 'P256' ? DH_P256 : DH_25519;
}
