/**
 * The Noise handshake payload `NebulaHandshake` (nebula-spec §3.2):
 *
 *   NebulaHandshake        { Details=1 NebulaHandshakeDetails, Hmac=2 bytes (never set) }
 *   NebulaHandshakeDetails { Cert=1 bytes, InitiatorIndex=2 uint32, ResponderIndex=3 uint32,
 *                            Cookie=4 uint64 (never set), Time=5 uint64 (Unix ns), CertVersion=8 uint32 (1.10+) }
 *
 * Encoding follows Go's protobuf output (ascending fields, zero values omitted, Details always written). Decoding
 * ignores unknown fields (reserved 6/7, ...) and throws ProtobufError on malformed input or a known field with the
 * wrong wire type. CertVersion is the version of Cert; 1.6-era peers leave it out (0: read as v1) and ignore it.
 */
import { asBytes, asUint32, ProtobufError, ProtoField, ProtoReader, ProtoWriter, WIRE_VARINT } from '../protobuf';

export interface NebulaHandshakeDetails {
  /** The sender's certificate, marshalled without its public key (nebula-spec §3.4). */
  cert: Buffer;
  initiatorIndex: number;
  responderIndex: number;
  cookie: bigint;
  /** Sender's wall clock, Unix nanoseconds. */
  time: bigint;
  /** The version `cert` is marshalled in (1 or 2); absent when the sender left it out (a 1.6-era peer: v1). */
  certVersion?: number;
}

export interface NebulaHandshake {
  /** Absent when the message has no field 1; Nebula then has nothing to validate, so callers must reject it. */
  details: NebulaHandshakeDetails | undefined;
  hmac: Buffer;
}

function asUint64(f: ProtoField): bigint {
  if (f.wire !== WIRE_VARINT) throw new ProtobufError(`field ${f.field}: expected varint`);
  return f.int;
}

export function encodeHandshakeDetails(d: NebulaHandshakeDetails): Buffer {
  return new ProtoWriter()
    .bytes(1, d.cert)
    .uint(2, d.initiatorIndex >>> 0)
    .uint(3, d.responderIndex >>> 0)
    .uint(4, d.cookie)
    .uint(5, d.time)
    .uint(8, d.certVersion ?? 0)
    .finish();
}

export function encodeHandshake(h: { details?: NebulaHandshakeDetails; hmac?: Buffer }): Buffer {
  const w = new ProtoWriter();
  if (h.details) w.message(1, encodeHandshakeDetails(h.details));
  if (h.hmac) w.bytes(2, h.hmac);
  return w.finish();
}

export function decodeHandshakeDetails(buf: Buffer): NebulaHandshakeDetails {
  const d: NebulaHandshakeDetails = { cert: Buffer.alloc(0), initiatorIndex: 0, responderIndex: 0, cookie: 0n, time: 0n };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    switch (f.field) {
      case 1:
        d.cert = Buffer.from(asBytes(f));
        break;
      case 2:
        d.initiatorIndex = asUint32(f);
        break;
      case 3:
        d.responderIndex = asUint32(f);
        break;
      case 4:
        d.cookie = asUint64(f);
        break;
      case 5:
        d.time = asUint64(f);
        break;
      case 8: {
        // Go refuses a value that does not fit a uint32; 0 is "not set" (proto3), so it is not kept.
        const v = asUint64(f);
        if (v > 0xffffffffn) throw new ProtobufError('field 8: CertVersion does not fit in uint32');
        if (v === 0n) delete d.certVersion;
        else d.certVersion = Number(v);
        break;
      }
      default:
        break; // unknown fields (reserved 6/7, ...) are skipped
    }
  }
  return d;
}

export function decodeHandshake(buf: Buffer): NebulaHandshake {
  const h: NebulaHandshake = { details: undefined, hmac: Buffer.alloc(0) };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    if (f.field === 1) h.details = decodeHandshakeDetails(asBytes(f));
    else if (f.field === 2) h.hmac = Buffer.from(asBytes(f));
  }
  return h;
}
