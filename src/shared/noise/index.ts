/** Noise IX (25519 or P256, AESGCM|ChaChaPoly, SHA256) as Nebula uses it; see handshake.ts. */
export { NoiseError } from './errors';
export {
  createInitiator,
  createResponder,
  noiseProtocolName,
  NoiseIXHandshake,
  NoiseHandshakeOptions,
  NoiseReadResult,
  NoiseRole,
  NoiseTransportKeys,
  MESSAGE1_MIN,
  MESSAGE2_MIN,
} from './handshake';
export { CipherState } from './cipher-state';
export { dhFor, DH_25519, DH_P256, type DHCurve, type DHKeyPair, type DHPublicKey, type NoiseDH } from './dh-functions';
export { StaticKeyCache, staticKeys, STATIC_KEY_CACHE_SIZE } from './static-keys';
export {
  DHLEN,
  X25519KeyPair,
  generateX25519KeyPair,
  x25519,
  x25519KeyPairFromPrivate,
  x25519PrivateKey,
  x25519PublicKey,
  rawPublicKey,
} from './dh';
export { hkdf2, hkdf3, hmacSha256, sha256, HASHLEN } from './hash';
