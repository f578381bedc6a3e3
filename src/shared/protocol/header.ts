/**
 * Nebula's 16-byte packet header (nebula-spec §1), all fields big-endian:
 *
 *   byte 0      version (high nibble, always 1) | type (low nibble)
 *   byte 1      subtype
 *   bytes 2-3   reserved (written 0, not checked on receive — 1.6.1 behaviour)
 *   bytes 4-7   remote index (the receiver's local index for the tunnel)
 *   bytes 8-15  message counter (uint64; also the AEAD nonce counter; handshake stage for type 0)
 *
 * encode/decode work on a caller Buffer at an offset and decode into a reusable object, so the packet loops do not
 * allocate. The counter is kept as two uint32 halves; `counter` (number) is exact below 2^53.
 */

import { splitCounter } from '../util/counter64';
export const HEADER_LEN = 16;
export const HEADER_VERSION = 1;

// Flat constants for the hot paths (switch on a number); MessageType / MessageSubType below group the same values.
export const TYPE_HANDSHAKE = 0;
export const TYPE_MESSAGE = 1;
export const TYPE_RECV_ERROR = 2;
export const TYPE_LIGHTHOUSE = 3;
export const TYPE_TEST = 4;
export const TYPE_CLOSE_TUNNEL = 5;
export const TYPE_CONTROL = 6;

export const SUBTYPE_NONE = 0;
export const SUBTYPE_HANDSHAKE_IXPSK0 = 0;
export const SUBTYPE_MESSAGE_RELAY = 1;
export const SUBTYPE_TEST_REQUEST = 0;
export const SUBTYPE_TEST_REPLY = 1;

export const MessageType = {
  Handshake: 0,
  Message: 1,
  RecvError: 2,
  LightHouse: 3,
  Test: 4,
  CloseTunnel: 5,
  Control: 6,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

export const MessageSubType = {
  /** Handshake: the only handshake subtype used (no PSK despite the name). */
  HandshakeIXPSK0: 0,
  /** Handshake: defined by Nebula, never used and absent from its name table. */
  HandshakeXXPSK0: 1,
  /** Message: normal data. Also the only subtype of RecvError, LightHouse, CloseTunnel, Control. */
  None: 0,
  /** Message: a relayed inner packet. */
  MessageRelay: 1,
  TestRequest: 0,
  TestReply: 1,
} as const;

/** Names used in Nebula's logs and metrics (`messages.tx.<type>.<subtype>` etc.). */
const TYPE_NAMES: readonly string[] = ['handshake', 'message', 'recvError', 'lightHouse', 'test', 'closeTunnel', 'control'];

const SUBTYPE_NAMES: ReadonlyArray<readonly string[]> = [
  ['ix_psk0'],
  ['none', 'relay'],
  ['none'],
  ['none'],
  ['testRequest', 'testReply'],
  ['none'],
  ['none'],
];

/** Log/metric name of a type, "unknown" outside the table (as Nebula prints it). */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? 'unknown';
}

/** Log/metric name of a (type, subtype) pair, "unknown" outside the table. */
export function subTypeName(type: number, subtype: number): string {
  return SUBTYPE_NAMES[type]?.[subtype] ?? 'unknown';
}

/** True for the (type, subtype) pairs of nebula-spec §1 — what a strict (1.11-style) receiver accepts. */
export function isKnownTypePair(type: number, subtype: number): boolean {
  return SUBTYPE_NAMES[type]?.[subtype] !== undefined;
}

const TWO_32 = 4294967296;

/** A decoded header; reuse one instance per packet loop. */
export class Header {
  version = HEADER_VERSION;
  type = 0;
  subtype = 0;
  reserved = 0;
  remoteIndex = 0;
  counterHi = 0;
  counterLo = 0;

  /** The counter as a number (exact below 2^53). */
  get counter(): number {
    return this.counterHi * TWO_32 + this.counterLo;
  }

  /** The full 64-bit counter. */
  get counterBig(): bigint {
    return (BigInt(this.counterHi) << 32n) | BigInt(this.counterLo);
  }

  setCounter(counter: number | bigint): this {
    const { hi, lo } = splitCounter(counter);
    this.counterHi = hi >>> 0;
    this.counterLo = lo;
    return this;
  }

  /** Writes this header into `buf` at `offset` (always version 1 and reserved 0). */
  encode(buf: Buffer, offset = 0): void {
    writeHeader(buf, offset, this.type, this.subtype, this.remoteIndex, this.counterHi, this.counterLo);
  }

  toString(): string {
    return `ver=${this.version} type=${typeName(this.type)} subtype=${subTypeName(this.type, this.subtype)} reserved=${this.reserved.toString(16)} remoteindex=${this.remoteIndex} messagecounter=${this.counterBig}`;
  }
}

/** Writes a header with the counter given as two uint32 halves. No allocation. */
export function writeHeader(
  buf: Buffer,
  offset: number,
  type: number,
  subtype: number,
  remoteIndex: number,
  counterHi: number,
  counterLo: number,
): void {
  if (offset < 0 || offset + HEADER_LEN > buf.length) throw new RangeError('header does not fit in the buffer');
  buf[offset] = (HEADER_VERSION << 4) | (type & 0x0f);
  buf[offset + 1] = subtype & 0xff;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  buf.writeUInt32BE(remoteIndex >>> 0, offset + 4);
  buf.writeUInt32BE(counterHi >>> 0, offset + 8);
  buf.writeUInt32BE(counterLo >>> 0, offset + 12);
}

/** Writes a header. Number counters must be integers in [0, 2^53); bigint counters cover uint64. */
export function encodeHeader(
  buf: Buffer,
  offset: number,
  type: number,
  subtype: number,
  remoteIndex: number,
  counter: number | bigint,
): void {
  const { hi, lo } = splitCounter(counter);
  writeHeader(buf, offset, type, subtype, remoteIndex, hi, lo);
}

/**
 * Parses the header at `offset` into `into`. Returns false (leaving `into` untouched) when fewer than 16 bytes are
 * available among `len` bytes of the packet. Version, reserved and subtype are not validated here (1.6.1 does not
 * either); use isKnownTypePair() for strictness.
 */
export function decodeHeader(buf: Buffer, offset: number, len: number, into: Header): boolean {
  if (len < HEADER_LEN || offset < 0 || offset + HEADER_LEN > buf.length) return false;
  const b0 = buf[offset]!;
  into.version = b0 >> 4;
  into.type = b0 & 0x0f;
  into.subtype = buf[offset + 1]!;
  into.reserved = buf.readUInt16BE(offset + 2);
  into.remoteIndex = buf.readUInt32BE(offset + 4);
  into.counterHi = buf.readUInt32BE(offset + 8);
  into.counterLo = buf.readUInt32BE(offset + 12);
  return true;
}
