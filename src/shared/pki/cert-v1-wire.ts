/**
 * The protobuf wire form of v1 certificates (nebula-spec §4.1-4.2; cert.proto's RawNebulaCertificate and
 * RawNebulaCertificateDetails, field 100 `curve` included as nebula >= 1.7 has it).
 *
 * Signatures and fingerprints are computed over a *re-encoding* of the parsed values, never over the received
 * bytes, exactly as Go does; so the encoder here must be Go's canonical one (ascending field numbers, zero values
 * omitted, packed uint32, the curve enum omitted when CURVE25519). Unknown fields are accepted and dropped, like
 * Go's conversion to its certificate struct.
 */
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
import type { IPv4Net } from '../util/ipv4';
import { malformed } from './errors';
import type { Curve } from './v2/cert-v2';

/** 1.6.1's lower bound on a v1 public key (X25519/Ed25519: 32 bytes; a P256 key is a 65-byte point). */
export const PUBLIC_KEY_LEN = 32;

/** RawNebulaCertificateDetails field 100 (enum Curve): its number for each curve. */
const CURVE_FIELD = 100;
const CURVE_NUMBER: Record<Curve, number> = { CURVE25519: 0, P256: 1 };

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
  /** X25519 / P256 key (hosts) or Ed25519 / ECDSA P256 key (CAs). P256 keys are 65-byte uncompressed points. */
  publicKey: Buffer;
  isCA: boolean;
  /** Lowercase hex fingerprint of the signing CA; '' for a self-signed CA. */
  issuer: string;
  /**
   * The certificate's curve (v1 field 100). Absent means CURVE25519, as on the wire (proto3 omits the zero value),
   * so every 1.6.1-era certificate and every caller that predates P256 reads the same as before.
   */
  curve?: Curve;
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
  return w.uint(CURVE_FIELD, CURVE_NUMBER[d.curve ?? 'CURVE25519']).finish();
}

/** A repeated string element is written even when empty (only singular proto3 fields omit zero values). */
function writeRepeatedString(w: ProtoWriter, field: number, value: string): void {
  if (value.length > 0) w.bytes(field, value);
  else w.message(field, Buffer.alloc(0), true);
}

/** RawNebulaCertificate: the encoded details and the signature. */
export function marshalRawCert(details: Buffer, signature: Buffer): Buffer {
  return new ProtoWriter().message(1, details).bytes(2, signature).finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

const WIRE_ERR = 'proto: cannot parse invalid wire-format data';

/** What the wire holds, before the checks of Go's UnmarshalNebulaCertificate. */
export interface RawDetails {
  name: string;
  ips: number[];
  subnets: number[];
  groups: string[];
  notBefore: bigint;
  notAfter: bigint;
  publicKey: Buffer;
  isCA: boolean;
  issuer: Buffer;
  curve: Curve;
}

function protoString(f: ProtoField): string {
  const b = asBytes(f);
  if (!isUtf8(b)) throw new ProtobufError(`field ${f.field}: string contains invalid UTF-8`);
  return b.toString('utf8');
}

/**
 * The curve enum as Go's protobuf reads it: the varint truncated to int32 (an open enum keeps any number). Numbers
 * other than CURVE25519 (0) and P256 (1) are refused here, where Go would keep them and fail every signature check
 * later: no certificate of an unknown curve can verify, and this names the problem.
 */
function curveOf(f: ProtoField): Curve {
  if (f.wire !== WIRE_VARINT) throw new ProtobufError(`field ${CURVE_FIELD}: expected varint`);
  const n = Number(BigInt.asIntN(32, f.int));
  if (n === CURVE_NUMBER.CURVE25519) return 'CURVE25519';
  if (n === CURVE_NUMBER.P256) return 'P256';
  throw malformed(`unknown curve ${n} in certificate (known: 0 CURVE25519, 1 P256)`);
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
    curve: 'CURVE25519',
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
      case CURVE_FIELD:
        d.curve = curveOf(f); // a repeated scalar: the last one wins, as in Go
        break;
      default:
        break; // unknown fields are dropped, as Go's conversion to its certificate struct does
    }
  });
  return d;
}

/** Splits a RawNebulaCertificate. Repeated Details occurrences merge, per protobuf semantics. Throws CertError. */
export function decodeRawCert(raw: Buffer): { details: RawDetails; signature: Buffer } {
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

/** Go's UnmarshalNebulaCertificate checks (1.6.1's wording), giving the details. Throws CertError('malformed'). */
export function detailsFromRaw(raw: RawDetails): CertDetails {
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
    // Only set when P256, so a 25519 certificate's details read exactly as they did before the curve field existed.
    ...(raw.curve === 'P256' ? { curve: raw.curve } : {}),
  };
  if (details.publicKey.length < PUBLIC_KEY_LEN) {
    throw malformed(`Public key was fewer than 32 bytes; ${details.publicKey.length}`);
  }
  return details;
}
