/**
 * A minimal proto3 wire codec: just what Nebula's messages need (varint, length-delimited, packed uint32).
 * The writer emits fields in the order they are written; callers write them in ascending field number and omit
 * zero values, which is Go's canonical encoding (certificate signatures depend on it, nebula-spec §4.2).
 */

export class ProtobufError extends Error {}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

export class ProtoWriter {
  private chunks: number[] = [];

  private varint(value: bigint | number): void {
    let v = typeof value === 'bigint' ? BigInt.asUintN(64, value) : BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.chunks.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.chunks.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** Writes a varint field (uint32, uint64, int64, bool, enum). Zero is omitted (proto3 default). */
  uint(field: number, value: number | bigint | boolean): this {
    const v = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    if (v === 0 || v === 0n) return this;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
    return this;
  }

  /** Writes a bytes/string field; empty is omitted. */
  bytes(field: number, value: Uint8Array | string): this {
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (data.length === 0) return this;
    this.tag(field, WIRE_BYTES);
    this.varint(data.length);
    for (const b of data) this.chunks.push(b);
    return this;
  }

  /** Writes a nested message; an empty message is still written when `always` (Go writes set sub-messages). */
  message(field: number, value: Uint8Array, always = true): this {
    if (value.length === 0 && !always) return this;
    this.tag(field, WIRE_BYTES);
    this.varint(value.length);
    for (const b of value) this.chunks.push(b);
    return this;
  }

  /** Writes a packed repeated uint32 field; empty is omitted. */
  packedUint32(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v >>> 0);
    return this.message(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.from(this.chunks);
  }
}

export interface ProtoField {
  field: number;
  wire: number;
  /** varint value (for WIRE_VARINT, and fixed types as raw bigint) */
  int: bigint;
  /** payload for WIRE_BYTES */
  data: Buffer;
}

export class ProtoReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private readVarint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new ProtobufError('varint too long');
  }

  next(): ProtoField {
    const key = this.readVarint();
    // Go's protowire.DecodeTag refuses field numbers above MaxInt32; beyond 2^53 a JS number would not even hold
    // the field number exactly.
    if (key >> 3n > 0x7fffffffn) throw new ProtobufError('invalid field number');
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new ProtobufError('field number 0');
    switch (wire) {
      case WIRE_VARINT:
        return { field, wire, int: this.readVarint(), data: EMPTY };
      case WIRE_FIXED64: {
        if (this.pos + 8 > this.buf.length) throw new ProtobufError('truncated fixed64');
        const v = this.buf.readBigUInt64LE(this.pos);
        this.pos += 8;
        return { field, wire, int: v, data: EMPTY };
      }
      case WIRE_BYTES: {
        const len = this.readVarint();
        if (len > BigInt(this.buf.length - this.pos)) throw new ProtobufError('truncated length-delimited field');
        const start = this.pos;
        this.pos += Number(len);
        return { field, wire, int: 0n, data: this.buf.subarray(start, this.pos) };
      }
      case WIRE_FIXED32: {
        if (this.pos + 4 > this.buf.length) throw new ProtobufError('truncated fixed32');
        const v = this.buf.readUInt32LE(this.pos);
        this.pos += 4;
        return { field, wire, int: BigInt(v), data: EMPTY };
      }
      default:
        throw new ProtobufError(`unsupported wire type ${wire}`);
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** Decodes the payload of a packed repeated uint32 field (also accepts a single unpacked varint value). */
export function readPackedUint32(f: ProtoField): number[] {
  if (f.wire === WIRE_VARINT) return [Number(BigInt.asUintN(32, f.int))];
  if (f.wire !== WIRE_BYTES) throw new ProtobufError(`field ${f.field}: expected packed uint32`);
  const out: number[] = [];
  let pos = 0;
  const buf = f.data;
  while (pos < buf.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new ProtobufError('truncated packed varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new ProtobufError('varint too long');
    }
    out.push(Number(BigInt.asUintN(32, result)));
  }
  return out;
}

/** Reads a varint field as a JS number (uint32 semantics). */
export function asUint32(f: ProtoField): number {
  if (f.wire !== WIRE_VARINT) throw new ProtobufError(`field ${f.field}: expected varint`);
  return Number(BigInt.asUintN(32, f.int));
}

/** Reads a varint field as int64. */
export function asInt64(f: ProtoField): bigint {
  if (f.wire !== WIRE_VARINT) throw new ProtobufError(`field ${f.field}: expected varint`);
  return BigInt.asIntN(64, f.int);
}

export function asBytes(f: ProtoField): Buffer {
  if (f.wire !== WIRE_BYTES) throw new ProtobufError(`field ${f.field}: expected bytes`);
  return f.data;
}
