/**
 * Passphrase-encrypted CA keys as nebula 1.11 writes them (cert/crypto.go): the signing key sealed with
 * AES-256-GCM (12-byte random nonce prepended, tag appended) under a key derived by Argon2id (version 0x13, 32-byte
 * random salt, 32-byte output), wrapped in the RawNebulaEncryptedData protobuf under the
 * "NEBULA ED25519 ENCRYPTED PRIVATE KEY" / "NEBULA ECDSA P256 ENCRYPTED PRIVATE KEY" banners. Errors carry Go's
 * wording. Node 20 has no Argon2, hence @noble/hashes' audited pure-TypeScript argon2id.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { argon2id } from '@noble/hashes/argon2';
import {
  CertError,
  ENCRYPTED_ECDSA_P256_PRIVATE_BANNER,
  ENCRYPTED_ED25519_PRIVATE_BANNER,
  pemDecode,
  pemEncode,
  type Curve,
} from '../shared/pki';
import { ProtoReader, ProtoWriter, ProtobufError, asBytes, asUint32, type ProtoField } from '../shared/protobuf';

/** golang.org/x/crypto/argon2.Version. */
const ARGON2_VERSION = 0x13;
const ALGORITHM = 'AES-256-GCM';
const NONCE_LEN = 12;
const TAG_LEN = 16;
const SALT_LEN = 32;
const MAX_UINT32 = 0xffffffff;

export interface Argon2Params {
  /** KiB. */
  memory: number;
  parallelism: number;
  iterations: number;
}

const BANNER: Record<Curve, string> = { CURVE25519: ENCRYPTED_ED25519_PRIVATE_BANNER, P256: ENCRYPTED_ECDSA_P256_PRIVATE_BANNER };
const KEY_LEN: Record<Curve, { len: number; what: string }> = {
  CURVE25519: { len: 64, what: 'ed25519 private key' },
  P256: { len: 32, what: 'ECDSA P256 private key' },
};

/** From this much work (KiB x iterations) on, the derivation takes seconds here (about 30 ms per MiB and pass). */
const SLOW_WORK_KIB = 256 * 1024;

/** Told before a derivation that will take long, so a user at a prompt knows the tool is working. */
export type SlowNotice = (text: string) => void;

const fail = (message: string): never => {
  throw new CertError('malformed', message);
};

/**
 * x/crypto's argon2.IDKey. Go raises a memory below 8 KiB per lane to that floor after hashing the parameters;
 * that combination cannot be reproduced with a standard Argon2 implementation, so it is refused rather than
 * silently deriving a different key.
 */
function deriveKey(passphrase: Uint8Array, salt: Uint8Array, p: Argon2Params, notice?: SlowNotice): Buffer {
  if (p.memory < 8 * p.parallelism) {
    fail(`Argon2 memory of ${p.memory} KiB is below 8 KiB per lane (${8 * p.parallelism} KiB), which nebula-ts-cert does not support`);
  }
  if (notice && p.memory * p.iterations >= SLOW_WORK_KIB) {
    const passes = p.iterations === 1 ? '1 pass' : `${p.iterations} passes`;
    notice(`Deriving the key with Argon2id (${Math.round(p.memory / 1024)} MiB, ${passes}): this can take a minute or more\n`);
  }
  try {
    return Buffer.from(argon2id(passphrase, salt, { t: p.iterations, m: p.memory, p: p.parallelism, dkLen: 32, version: ARGON2_VERSION }));
  } catch (err) {
    return fail(`argon2: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Go's EncryptAndMarshalSigningPrivateKey: the PEM text of `key` (64-byte Ed25519 or 32-byte P256 scalar). */
export function encryptSigningKeyPem(curve: Curve, key: Uint8Array, passphrase: Uint8Array, params: Argon2Params, notice?: SlowNotice): string {
  const salt = randomBytes(SALT_LEN);
  const nonce = randomBytes(NONCE_LEN);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt, params, notice), nonce);
  const ciphertext = Buffer.concat([nonce, cipher.update(key), cipher.final(), cipher.getAuthTag()]);
  const argon = new ProtoWriter()
    .uint(1, ARGON2_VERSION)
    .uint(2, params.memory)
    .uint(3, params.iterations)
    .uint(4, params.parallelism)
    .bytes(5, salt)
    .finish();
  const metadata = new ProtoWriter().bytes(1, ALGORITHM).message(2, argon).finish();
  const envelope = new ProtoWriter().message(1, metadata).bytes(2, ciphertext).finish();
  return pemEncode(BANNER[curve], envelope);
}

interface Envelope {
  algorithm: string;
  version: number;
  params: Argon2Params;
  salt: Buffer | undefined;
  ciphertext: Buffer;
}

/** One message's fields by number, every occurrence kept in order. */
function readMessage(buf: Buffer): Map<number, ProtoField[]> {
  const out = new Map<number, ProtoField[]>();
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    out.set(f.field, [...(out.get(f.field) ?? []), f]);
  }
  return out;
}

/** A sub-message field: repeated occurrences merge, which for these messages is their concatenation. */
function subMessage(m: Map<number, ProtoField[]>, field: number): Map<number, ProtoField[]> | undefined {
  const parts = m.get(field);
  return parts && readMessage(Buffer.concat(parts.map(asBytes)));
}

/** A scalar field: the last occurrence wins, as in protobuf. */
function last<T>(m: Map<number, ProtoField[]>, field: number, read: (f: ProtoField) => T): T | undefined {
  const parts = m.get(field);
  return parts && read(parts[parts.length - 1]!);
}

/** UnmarshalNebulaEncryptedData, with its checks of the Argon2 parameters. */
function decodeEnvelope(bytes: Buffer): Envelope {
  if (bytes.length === 0) fail('nil byte array');
  let env: Envelope;
  try {
    const top = readMessage(bytes);
    const metadata = subMessage(top, 1) ?? fail('encoded EncryptionMetadata was nil');
    const argon = subMessage(metadata, 2) ?? fail('encoded Argon2Parameters was nil');
    const uint = (field: number): number => last(argon, field, asUint32) ?? 0;
    env = {
      algorithm: last(metadata, 1, (f) => asBytes(f).toString('utf8')) ?? '',
      version: uint(1) | 0, // int32 on the wire
      params: { memory: uint(2), iterations: uint(3), parallelism: uint(4) },
      salt: last(argon, 5, (f) => Buffer.from(asBytes(f))),
      ciphertext: last(top, 2, (f) => Buffer.from(asBytes(f))) ?? Buffer.alloc(0),
    };
  } catch (err) {
    if (err instanceof ProtobufError) fail(`proto: cannot parse invalid wire-format data: ${err.message}`);
    throw err;
  }
  const { memory, parallelism, iterations } = env.params;
  if (memory <= 0) fail(`Argon2Parameters Memory must be be greater than 0 and no more than ${MAX_UINT32} KiB`);
  if (parallelism <= 0 || parallelism > 255) fail('Argon2Parameters Parallelism must be be greater than 0 and no more than 255');
  if (iterations <= 0) fail(`-argon-iterations must be be greater than 0 and no more than ${MAX_UINT32}`);
  return env;
}

/** Go's DecryptAndUnmarshalSigningPrivateKey: the curve and raw signing key of an encrypted PEM key. */
export function decryptSigningKeyPem(passphrase: Uint8Array, text: string, notice?: SlowNotice): { curve: Curve; key: Buffer } {
  const decoded = pemDecode(text);
  if (!decoded) return fail('input did not contain a valid PEM encoded block');
  const curve = (Object.keys(BANNER) as Curve[]).find((c) => BANNER[c] === decoded.block.type);
  if (!curve) return fail('bytes did not contain a proper nebula encrypted Ed25519/ECDSA private key banner');
  const env = decodeEnvelope(decoded.block.bytes);
  if (env.algorithm !== ALGORITHM) fail(`unsupported encryption algorithm: ${env.algorithm}`);
  if (env.version !== ARGON2_VERSION) fail(`incompatible Argon2 version: ${env.version}`);
  // Go draws a fresh random salt when the file has none, so such a file can never be opened.
  const salt = env.salt ?? randomBytes(SALT_LEN);
  if (salt.length < 16) fail('salt must be at least 128  bits');
  const aesKey = deriveKey(passphrase, salt, env.params, notice);
  if (env.ciphertext.length <= NONCE_LEN) fail('invalid ciphertext blob - blob shorter than nonce length');
  let key: Buffer;
  try {
    const body = env.ciphertext.subarray(NONCE_LEN);
    if (body.length < TAG_LEN) throw new Error('short');
    const decipher = createDecipheriv('aes-256-gcm', aesKey, env.ciphertext.subarray(0, NONCE_LEN));
    decipher.setAuthTag(body.subarray(body.length - TAG_LEN));
    key = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LEN)), decipher.final()]);
  } catch {
    return fail('invalid passphrase or corrupt private key');
  }
  const want = KEY_LEN[curve];
  if (key.length !== want.len) fail(`key was not ${want.len} bytes, is invalid ${want.what}`);
  return { curve, key };
}
