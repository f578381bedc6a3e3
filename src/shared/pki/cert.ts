/**
 * The v1 Nebula certificate (nebula-spec §4.1-4.3) and its protobuf codec.
 *
 * Signatures and fingerprints are computed over a *re-encoding* of the parsed values, never over the received
 * bytes, exactly as Go does; so the encoder here must be Go's canonical one (ascending field numbers, zero values
 * omitted, packed uint32). Unknown fields are accepted and dropped, like Go's conversion to NebulaCertificate.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import {
  ProtoReader,
  ProtoWriter,
  ProtobufError,
  WIRE_BYTES,
  WIRE_VARINT,
  asBytes,
  asInt64,
  readPackedUint32,
  type ProtoField,
} from '../protobuf';
import { prefixFromMask, type IPv4Net } from '../util/ipv4';
import type { Certificate } from './certificate';
import { malformed } from './errors';
import { ed25519Sign, ed25519Verify } from './keys';
import { CERT_BANNER, pemDecodeExpect, pemEncode } from './pem';
import type { Curve } from './v2/cert-v2';
import type { IpPrefix } from './v2/prefix';

export const PUBLIC_KEY_LEN = 32;

export interface CertDetails {
  name: string;
  /** (address, mask) pairs; the address keeps its host bits (a host's VPN IP, e.g. 10.1.2.3/16). */
  ips: IPv4Net[];
  subnets: IPv4Net[];
  groups: string[];
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds. */
  notAfter: number;
  /** X25519 key (hosts) or Ed25519 key (CAs). */
  publicKey: Buffer;
  isCA: boolean;
  /** Lowercase hex fingerprint of the signing CA; '' for a self-signed CA. */
  issuer: string;
}

export class NebulaCertificate implements Certificate {
  readonly version = 1;
  /** The v1 codec here reads no curve field (1.11's field 100): every v1 certificate it reads is 25519. */
  readonly curve: Curve = 'CURVE25519';
  private cachedFingerprint: string | undefined;

  constructor(
    readonly details: Readonly<CertDetails>,
    readonly signature: Buffer,
  ) {}

  /** Canonical bytes of the full RawNebulaCertificate (what PEM holds and what the fingerprint hashes). */
  marshal(): Buffer {
    return marshalRawCert(marshalDetails(this.details), this.signature);
  }

  /** Lowercase hex SHA-256 of the canonical full encoding (Go's Sha256Sum). */
  fingerprint(): string {
    this.cachedFingerprint ??= createHash('sha256').update(this.marshal()).digest('hex');
    return this.cachedFingerprint;
  }

  toPem(): string {
    return pemEncode(CERT_BANNER, this.marshal());
  }

  /** Go's Expired: valid from NotBefore to NotAfter inclusive. `now` is a Date or Unix seconds. */
  expired(now: Date | number = new Date()): boolean {
    const t = toUnixSeconds(now);
    return this.details.notBefore > t || this.details.notAfter < t;
  }

  /** Ed25519 signature over the canonical details bytes, checked with `signerKey`. */
  checkSignature(signerKey: Uint8Array): boolean {
    return ed25519Verify(signerKey, marshalDetails(this.details), this.signature);
  }

  /** The first IP is the node's VPN address. */
  get vpnIp(): number | undefined {
    return this.details.ips[0]?.ip;
  }

  get networks(): IpPrefix[] {
    return this.details.ips.map(v1NetToPrefix);
  }

  get unsafeNetworks(): IpPrefix[] {
    return this.details.subnets.map(v1NetToPrefix);
  }

  /** Only P256 signatures have a second form. */
  alternateFingerprint(): string {
    return '';
  }

  marshalForHandshake(): Buffer {
    return marshalCertForHandshake(this);
  }
}

/** A v1 network as 1.11 reads it (netip.PrefixFrom(ip, ones); a non-contiguous mask counts as 0 bits). */
export function v1NetToPrefix(net: IPv4Net): IpPrefix {
  const addr = Buffer.alloc(4);
  addr.writeUInt32BE(net.ip >>> 0, 0);
  return { addr, bits: prefixFromMask(net.mask) ?? 0 };
}

export function toUnixSeconds(now: Date | number): number {
  return typeof now === 'number' ? now : Math.floor(now.getTime() / 1000);
}

function pairs(nets: readonly IPv4Net[]): number[] {
  const out: number[] = [];
  for (const n of nets) out.push(n.ip >>> 0, n.mask >>> 0);
  return out;
}

/** Canonical RawNebulaCertificateDetails. `withPublicKey: false` omits field 7 (the handshake form, §3.2). */
export function marshalDetails(d: Readonly<CertDetails>, withPublicKey = true): Buffer {
  const w = new ProtoWriter()
    .bytes(1, d.name)
    .packedUint32(2, pairs(d.ips))
    .packedUint32(3, pairs(d.subnets));
  for (const g of d.groups) writeRepeatedString(w, 4, g);
  w.uint(5, BigInt(d.notBefore)).uint(6, BigInt(d.notAfter));
  if (withPublicKey) w.bytes(7, d.publicKey);
  w.uint(8, d.isCA).bytes(9, Buffer.from(d.issuer, 'hex'));
  return w.finish();
}

/** A repeated string element is written even when empty (only singular proto3 fields omit zero values). */
function writeRepeatedString(w: ProtoWriter, field: number, value: string): void {
  if (value.length > 0) w.bytes(field, value);
  else w.message(field, Buffer.alloc(0), true);
}

function marshalRawCert(details: Buffer, signature: Buffer): Buffer {
  return new ProtoWriter().message(1, details).bytes(2, signature).finish();
}

/** The certificate as sent in a handshake: RawNebulaCertificate with Details.PublicKey (field 7) omitted. */
export function marshalCertForHandshake(cert: NebulaCertificate): Buffer {
  return marshalRawCert(marshalDetails(cert.details, false), cert.signature);
}

/** Signs `details` with a 64-byte Go-style Ed25519 CA private key. */
export function signCert(details: CertDetails, caPrivateKey: Uint8Array): NebulaCertificate {
  const copy: CertDetails = { ...details, ips: [...details.ips], subnets: [...details.subnets], groups: [...details.groups] };
  return new NebulaCertificate(copy, ed25519Sign(caPrivateKey, marshalDetails(copy)));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

const WIRE_ERR = 'proto: cannot parse invalid wire-format data';

interface RawDetails {
  name: string;
  ips: number[];
  subnets: number[];
  groups: string[];
  notBefore: bigint;
  notAfter: bigint;
  publicKey: Buffer;
  isCA: boolean;
  issuer: Buffer;
}

function protoString(f: ProtoField): string {
  const b = asBytes(f);
  if (!isUtf8(b)) throw new ProtobufError(`field ${f.field}: string contains invalid UTF-8`);
  return b.toString('utf8');
}

function readAll(buf: Buffer, each: (f: ProtoField) => void): void {
  const r = new ProtoReader(buf);
  while (!r.done) each(r.next());
}

function decodeDetails(buf: Buffer): RawDetails {
  const d: RawDetails = {
    name: '',
    ips: [],
    subnets: [],
    groups: [],
    notBefore: 0n,
    notAfter: 0n,
    publicKey: Buffer.alloc(0),
    isCA: false,
    issuer: Buffer.alloc(0),
  };
  readAll(buf, (f) => {
    switch (f.field) {
      case 1:
        d.name = protoString(f);
        break;
      case 2:
        d.ips.push(...readPackedUint32(f));
        break;
      case 3:
        d.subnets.push(...readPackedUint32(f));
        break;
      case 4:
        d.groups.push(protoString(f));
        break;
      case 5:
        d.notBefore = asInt64(f);
        break;
      case 6:
        d.notAfter = asInt64(f);
        break;
      case 7:
        d.publicKey = Buffer.from(asBytes(f));
        break;
      case 8:
        if (f.wire !== WIRE_VARINT) throw new ProtobufError('field 8: expected varint');
        d.isCA = f.int !== 0n;
        break;
      case 9:
        d.issuer = Buffer.from(asBytes(f));
        break;
      default:
        break; // unknown fields are dropped, as Go's NebulaCertificate conversion does
    }
  });
  return d;
}

/** Splits a RawNebulaCertificate. Repeated Details occurrences merge, per protobuf semantics. */
function decodeRawCert(raw: Buffer): { details: RawDetails; signature: Buffer } {
  const detailChunks: Buffer[] = [];
  let signature = Buffer.alloc(0);
  try {
    readAll(raw, (f) => {
      if (f.field === 1) {
        if (f.wire !== WIRE_BYTES) throw new ProtobufError('field 1: expected message');
        detailChunks.push(f.data);
      } else if (f.field === 2) {
        signature = Buffer.from(asBytes(f));
      }
    });
    if (detailChunks.length === 0) throw malformed('encoded Details was nil');
    return { details: decodeDetails(Buffer.concat(detailChunks)), signature };
  } catch (err) {
    if (err instanceof ProtobufError) throw malformed(`${WIRE_ERR}: ${err.message}`);
    throw err;
  }
}

function toNets(values: number[], what: string): IPv4Net[] {
  if (values.length % 2 !== 0) throw malformed(`encoded ${what} should be in pairs, an odd number was found`);
  const out: IPv4Net[] = [];
  for (let i = 0; i < values.length; i += 2) out.push({ ip: values[i]! >>> 0, mask: values[i + 1]! >>> 0 });
  return out;
}

function toSeconds(v: bigint, what: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw malformed(`${what} ${v} is out of range`);
  return n;
}

function buildCert(raw: RawDetails, signature: Buffer): NebulaCertificate {
  const details: CertDetails = {
    name: raw.name,
    ips: toNets(raw.ips, 'IPs'),
    subnets: toNets(raw.subnets, 'Subnets'),
    groups: raw.groups,
    notBefore: toSeconds(raw.notBefore, 'NotBefore'),
    notAfter: toSeconds(raw.notAfter, 'NotAfter'),
    publicKey: raw.publicKey,
    isCA: raw.isCA,
    issuer: raw.issuer.toString('hex'),
  };
  if (details.publicKey.length < PUBLIC_KEY_LEN) {
    throw malformed(`Public key was fewer than 32 bytes; ${details.publicKey.length}`);
  }
  return new NebulaCertificate(details, signature);
}

/** Parses a marshalled RawNebulaCertificate (Go's UnmarshalNebulaCertificate). Throws CertError('malformed'). */
export function unmarshalCert(raw: Uint8Array): NebulaCertificate {
  if (raw.length === 0) throw malformed('nil byte array');
  const { details, signature } = decodeRawCert(Buffer.from(raw));
  return buildCert(details, signature);
}

/**
 * Rebuilds a peer's certificate from the handshake form (no PublicKey) and the Noise static key (nebula-spec
 * §3.4). The result still has to be verified against the CA pool: the CA signature covers the public key, so
 * that check is what binds the Noise static key to the certificate.
 */
export function certFromHandshake(raw: Uint8Array, staticKey: Uint8Array): NebulaCertificate {
  if (staticKey.length === 0) throw malformed('no peer static key was present');
  if (raw.length === 0) throw malformed('provided payload was empty');
  const decoded = decodeRawCert(Buffer.from(raw));
  decoded.details.publicKey = Buffer.from(staticKey);
  return buildCert(decoded.details, decoded.signature);
}

/** Reads one certificate from PEM text; returns the text after it (bundles hold several). */
export function unmarshalCertFromPem(text: string): { cert: NebulaCertificate; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, CERT_BANNER, 'certificate');
  return { cert: unmarshalCert(bytes), rest };
}

/** Every certificate in a PEM bundle, in order. Trailing non-whitespace that is not a certificate is an error. */
export function unmarshalCertsFromPem(text: string): NebulaCertificate[] {
  const out: NebulaCertificate[] = [];
  let rest = text;
  do {
    const r = unmarshalCertFromPem(rest);
    out.push(r.cert);
    rest = r.rest;
  } while (rest.trim() !== '');
  return out;
}

