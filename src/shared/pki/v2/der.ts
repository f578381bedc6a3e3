/**
 * The little DER that Nebula v2 certificates need (cert_v2.asn1), with the exact acceptance rules of Go's
 * golang.org/x/crypto/cryptobyte, which is what nebula parses them with: single-octet tags only (no high-tag-number
 * form), definite lengths of at most 4 length octets in minimal form, INTEGERs minimally encoded and at most 8 bytes.
 * The reader never reads past its buffer and every step consumes at least two bytes, so it cannot hang.
 */

export class DerError extends Error {
  override name = 'DerError';
}

/** Universal tags used by cert_v2. */
export const TAG_INTEGER = 0x02;
export const TAG_OCTET_STRING = 0x04;
export const TAG_UTF8_STRING = 0x0c;
export const TAG_SEQUENCE = 0x30;

export const hexTag = (tag: number): string => `0x${tag.toString(16).padStart(2, '0')}`;

export interface DerElement {
  tag: number;
  /** The value octets (a view of the input). */
  content: Buffer;
  /** Tag, length and value (a view of the input): what cryptobyte's ReadASN1Element returns. */
  element: Buffer;
}

export class DerReader {
  private pos = 0;

  /** `what` names the structure in error messages ("certificate", "details", ...). */
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get empty(): boolean {
    return this.pos >= this.buf.length;
  }

  /** True when the next element has `tag` (cryptobyte's PeekASN1Tag: only the first octet is compared). */
  peekTag(tag: number): boolean {
    return !this.empty && this.buf[this.pos] === tag;
  }

  private fail(reason: string, at = this.pos): never {
    throw new DerError(`${this.what}: ${reason} at offset ${at}`);
  }

  /** Reads the next element, whatever its tag. */
  readAny(): DerElement {
    const start = this.pos;
    const remaining = this.buf.length - start;
    if (remaining < 2) this.fail(remaining === 0 ? 'missing element' : 'truncated element header');
    const tag = this.buf[start]!;
    if ((tag & 0x1f) === 0x1f) this.fail(`high-tag-number form (tag ${hexTag(tag)}) is not supported`);
    const lenByte = this.buf[start + 1]!;
    let header = 2;
    let length = lenByte;
    if (lenByte & 0x80) {
      const lenLen = lenByte & 0x7f;
      if (lenLen === 0) this.fail('indefinite length is not DER');
      if (lenLen > 4) this.fail(`length of ${lenLen} octets is too long`);
      if (remaining < 2 + lenLen) this.fail('truncated length');
      length = 0;
      for (let i = 0; i < lenLen; i++) length = length * 256 + this.buf[start + 2 + i]!;
      if (length < 128) this.fail('length not in short form');
      if (this.buf[start + 2] === 0) this.fail('length has a leading zero octet');
      header = 2 + lenLen;
    }
    if (length > remaining - header) this.fail(`element of ${length} bytes overruns its ${remaining - header} byte container`);
    this.pos = start + header + length;
    return {
      tag,
      content: this.buf.subarray(start + header, this.pos),
      element: this.buf.subarray(start, this.pos),
    };
  }

  /** Reads the next element, which must carry `tag`; `field` names it in the error. */
  readElement(tag: number, field: string): DerElement {
    if (this.empty) this.fail(`missing ${field}`);
    const found = this.buf[this.pos]!;
    if (found !== tag) this.fail(`${field}: expected tag ${hexTag(tag)}, found ${hexTag(found)}`);
    return this.readAny();
  }

  /** The value octets of the next element, which must carry `tag`. */
  read(tag: number, field: string): Buffer {
    return this.readElement(tag, field).content;
  }

  /** The value octets when the next element carries `tag`, else undefined (nothing consumed). */
  readOptional(tag: number, field: string): Buffer | undefined {
    return this.peekTag(tag) ? this.read(tag, field) : undefined;
  }

  /** An INTEGER with `tag` that fits int64 (cryptobyte's ReadASN1Int64WithTag). */
  readInt64(tag: number, field: string): bigint {
    const start = this.pos;
    const bytes = this.read(tag, field);
    return decodeInt64(bytes, (reason) => this.fail(`${field}: ${reason}`, start));
  }
}

function decodeInt64(bytes: Buffer, fail: (reason: string) => never): bigint {
  if (bytes.length === 0) fail('empty integer');
  if (bytes.length > 1) {
    const [a, b] = [bytes[0]!, bytes[1]!];
    if ((a === 0 && (b & 0x80) === 0) || (a === 0xff && (b & 0x80) !== 0)) fail('integer not minimally encoded');
  }
  if (bytes.length > 8) fail('integer does not fit 64 bits');
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return BigInt.asIntN(bytes.length * 8, v);
}

// ---------------------------------------------------------------------------------------------------------------
// Writing (what cryptobyte.Builder produces)

export function derLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xfffffffe) throw new DerError(`DER length ${n} out of range`);
  if (n < 0x80) return Buffer.from([n]);
  const octets: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** Tag, minimal length, value. */
export function derElement(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

/** Minimal two's-complement octets of an int64 (cryptobyte's AddASN1Int64 body). */
export function int64Content(value: bigint): Buffer {
  if (value !== BigInt.asIntN(64, value)) throw new DerError(`integer ${value} does not fit 64 bits`);
  let len = 1;
  while (len < 8 && (value >= 1n << BigInt(8 * len - 1) || value < -(1n << BigInt(8 * len - 1)))) len++;
  const out = Buffer.alloc(len);
  let v = BigInt.asUintN(8 * len, value);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** A non-negative big-endian integer as a DER INTEGER (leading zeros stripped, a 0x00 added before a set top bit). */
export function derUnsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start++;
  if (start === bytes.length) throw new DerError('invalid integer: zero');
  const body = Buffer.from(bytes.subarray(start));
  return derElement(TAG_INTEGER, body[0]! & 0x80 ? Buffer.from([0]) : Buffer.alloc(0), body);
}
