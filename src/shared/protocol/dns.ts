/**
 * DNS messages for the lighthouse DNS responder (`lighthouse.serve_dns`, nebula-spec §5.7), from RFC 1035.
 *
 * Go nebula 1.6.1 uses miekg/dns v1.1.48; where that library is lenient or particular, this codec does the same, so a
 * client sees the same answer from us as from Go: a query cut short after its header or question name is accepted
 * (missing QTYPE/QCLASS read as 0), counts larger than the records present are not an error, trailing bytes are
 * ignored, and names are turned into miekg's presentation form (special bytes escaped) for lookups. Everything is
 * bounded: a query longer than 512 bytes (miekg reads UDP into a 512-byte buffer) is refused, a name is at most 255
 * wire octets, and at most 126 compression pointers (miekg's limit) are followed, so a pointer loop ends in an error.
 */

export const DNS_HEADER_LEN = 12;
/** miekg/dns's default UDP read buffer (Server.UDPSize = MinMsgSize). */
export const MAX_QUERY_LEN = 512;
export const MAX_MESSAGE_LEN = 65535;
export const MAX_NAME_WIRE_LEN = 255;
/** miekg/dns: (MAX_NAME_WIRE_LEN + 1) / 2 - 2. */
export const MAX_COMPRESSION_POINTERS = 126;
/** The TTL miekg's NewRR gives a record written without one (Go builds its answers that way). */
export const DEFAULT_TTL = 3600;

export const TYPE_A = 1;
export const TYPE_TXT = 16;
export const CLASS_IN = 1;
export const OPCODE_QUERY = 0;
export const OPCODE_NOTIFY = 4;
export const RCODE_SUCCESS = 0;
export const RCODE_FORMAT_ERROR = 1;
export const RCODE_NOT_IMPLEMENTED = 4;
export const RCODE_REFUSED = 5;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_Z = 0x0040;
export const FLAG_AD = 0x0020;
export const FLAG_CD = 0x0010;

export interface DnsHeader {
  id: number;
  /** The 16 flag bits as on the wire (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE). */
  flags: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface DnsQuestion {
  /** The name uncompressed (labels, then the zero byte), letter case as sent. */
  wireName: Buffer;
  /** The name as miekg/dns presents it: "host.example.", "." for the root, special bytes escaped; case as sent. */
  name: string;
  qtype: number;
  qclass: number;
}

export interface DnsQuery {
  header: DnsHeader;
  /** Absent when the message ends right after its header (miekg accepts that as a question-less query). */
  question: DnsQuestion | undefined;
}

/** A malformed query. `header` is set once the header was read, `question` once the question was (for FORMERR). */
export class DnsParseError extends Error {
  constructor(
    message: string,
    readonly header?: DnsHeader,
    readonly question?: DnsQuestion,
  ) {
    super(message);
    this.name = 'DnsParseError';
  }
}

export function opcodeOf(flags: number): number {
  return (flags >> 11) & 0xf;
}

export function parseHeader(msg: Uint8Array): DnsHeader {
  if (msg.length < DNS_HEADER_LEN) throw new DnsParseError(`message of ${msg.length} bytes is shorter than a DNS header`);
  const u16 = (off: number): number => (msg[off]! << 8) | msg[off + 1]!;
  return { id: u16(0), flags: u16(2), qdcount: u16(4), ancount: u16(6), nscount: u16(8), arcount: u16(10) };
}

/** Bytes miekg escapes with a backslash in a label's presentation form. */
const LABEL_SPECIAL = new Set([...'. \'@;()"\\'].map((c) => c.charCodeAt(0)));

function presentLabel(label: Uint8Array): string {
  let s = '';
  for (const b of label) {
    if (LABEL_SPECIAL.has(b)) s += '\\' + String.fromCharCode(b);
    else if (b < 0x20 || b > 0x7e) s += '\\' + String(b).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

interface NameRead {
  wire: Buffer;
  presentation: string;
  /** Offset just past the name where it was found (after its first pointer, if any). */
  next: number;
}

/** Reads a possibly compressed name at `start`. Throws on anything malformed; terminates on any input. */
export function readName(msg: Uint8Array, start: number): NameRead {
  const labels: Uint8Array[] = [];
  let off = start;
  let next = -1;
  let pointers = 0;
  let wireLen = 1; // the closing zero byte
  for (;;) {
    if (off >= msg.length) throw new DnsParseError('name runs past the end of the message');
    const c = msg[off++]!;
    if (c === 0) break;
    const kind = c & 0xc0;
    if (kind === 0x00) {
      if (off + c > msg.length) throw new DnsParseError('label runs past the end of the message');
      wireLen += c + 1;
      if (wireLen > MAX_NAME_WIRE_LEN) throw new DnsParseError(`name longer than ${MAX_NAME_WIRE_LEN} octets`);
      labels.push(msg.subarray(off, off + c));
      off += c;
    } else if (kind === 0xc0) {
      if (off >= msg.length) throw new DnsParseError('compression pointer cut short');
      const target = ((c & 0x3f) << 8) | msg[off++]!;
      if (next < 0) next = off;
      if (++pointers > MAX_COMPRESSION_POINTERS) throw new DnsParseError('too many compression pointers');
      off = target;
    } else {
      throw new DnsParseError(`reserved label type 0x${kind.toString(16)}`);
    }
  }
  const wire = Buffer.alloc(wireLen);
  let w = 0;
  for (const label of labels) {
    wire[w++] = label.length;
    wire.set(label, w);
    w += label.length;
  }
  const presentation = labels.length === 0 ? '.' : labels.map(presentLabel).join('.') + '.';
  return { wire, presentation, next: next < 0 ? off : next };
}

/**
 * Parses a query: the header, its one question and a walk over the records after it (bounds only; their contents
 * are not used). Throws DnsParseError on anything malformed or over MAX_QUERY_LEN.
 */
export function parseQuery(msg: Uint8Array): DnsQuery {
  if (msg.length > MAX_QUERY_LEN) throw new DnsParseError(`query of ${msg.length} bytes exceeds ${MAX_QUERY_LEN}`);
  const header = parseHeader(msg);
  if (header.qdcount > 1) throw new DnsParseError(`${header.qdcount} questions; one is supported`, header);
  let off = DNS_HEADER_LEN;
  if (off === msg.length || header.qdcount === 0) return { header, question: undefined };

  let name: NameRead;
  try {
    name = readName(msg, off);
  } catch (err) {
    throw new DnsParseError(`question: ${(err as Error).message}`, header);
  }
  off = name.next;
  let qtype = 0;
  let qclass = 0;
  if (off < msg.length) {
    if (off + 2 > msg.length) throw new DnsParseError('question type cut short', header);
    qtype = (msg[off]! << 8) | msg[off + 1]!;
    off += 2;
    // miekg reads a class cut short (one byte left) as 0 without complaint; so do we.
    if (off + 2 <= msg.length) qclass = (msg[off]! << 8) | msg[off + 1]!;
    off = Math.min(off + 2, msg.length);
  }
  const question: DnsQuestion = { wireName: name.wire, name: name.presentation, qtype, qclass };

  const records = header.ancount + header.nscount + header.arcount;
  for (let i = 0; i < records && off < msg.length; i++) {
    try {
      off = readName(msg, off).next;
    } catch (err) {
      throw new DnsParseError(`record: ${(err as Error).message}`, header, question);
    }
    if (off + 10 > msg.length) throw new DnsParseError('record header cut short', header, question);
    const rdlength = (msg[off + 8]! << 8) | msg[off + 9]!;
    off += 10;
    if (off + rdlength > msg.length) throw new DnsParseError('record data runs past the end', header, question);
    off += rdlength;
  }
  return { header, question };
}

/** The flags of miekg's Msg.SetReply: QR, the opcode copied, RD and CD copied for a QUERY; all else 0, RCODE 0. */
export function replyFlags(requestFlags: number): number {
  const opcode = opcodeOf(requestFlags);
  const copied = opcode === OPCODE_QUERY ? requestFlags & (FLAG_RD | FLAG_CD) : 0;
  return FLAG_QR | (opcode << 11) | copied;
}

/**
 * The flags of miekg's server refusal: the request's header kept, then QR set, AA and Z cleared, RCODE set and the
 * opcode made QUERY (kept for NOTIMP).
 */
export function refusalFlags(requestFlags: number, rcode: number): number {
  const opcode = rcode === RCODE_NOT_IMPLEMENTED ? opcodeOf(requestFlags) : OPCODE_QUERY;
  const kept = requestFlags & (FLAG_TC | FLAG_RD | FLAG_RA | FLAG_AD | FLAG_CD);
  return FLAG_QR | (opcode << 11) | kept | (rcode & 0xf);
}

export type DnsAnswer =
  | { type: typeof TYPE_A; wireName: Buffer; ttl: number; address: number }
  | { type: typeof TYPE_TXT; wireName: Buffer; ttl: number; strings: readonly Buffer[] };

export interface DnsReply {
  id: number;
  flags: number;
  question?: DnsQuestion;
  answers: readonly DnsAnswer[];
}

function rdataOf(answer: DnsAnswer): Buffer {
  if (answer.type === TYPE_A) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(answer.address >>> 0);
    return b;
  }
  // No strings gives an empty RDATA, as miekg's packTxt writes it.
  const parts: Buffer[] = [];
  for (const s of answer.strings) {
    if (s.length > 255) throw new Error(`TXT string of ${s.length} bytes exceeds 255`);
    parts.push(Buffer.from([s.length]), s);
  }
  return Buffer.concat(parts);
}

/** Writes a reply without name compression (Go sets Compress = false). Answers are class IN. */
export function encodeReply(reply: DnsReply): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(DNS_HEADER_LEN);
  header.writeUInt16BE(reply.id & 0xffff, 0);
  header.writeUInt16BE(reply.flags & 0xffff, 2);
  header.writeUInt16BE(reply.question ? 1 : 0, 4);
  header.writeUInt16BE(reply.answers.length, 6);
  parts.push(header);
  if (reply.question) {
    const q = Buffer.alloc(4);
    q.writeUInt16BE(reply.question.qtype, 0);
    q.writeUInt16BE(reply.question.qclass, 2);
    parts.push(reply.question.wireName, q);
  }
  for (const answer of reply.answers) {
    const rdata = rdataOf(answer);
    if (rdata.length > 0xffff) throw new Error(`record data of ${rdata.length} bytes exceeds 65535`);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(answer.type, 0);
    fixed.writeUInt16BE(CLASS_IN, 2);
    fixed.writeUInt32BE(answer.ttl >>> 0, 4);
    fixed.writeUInt16BE(rdata.length, 8);
    parts.push(answer.wireName, fixed, rdata);
  }
  const out = Buffer.concat(parts);
  if (out.length > MAX_MESSAGE_LEN) throw new Error(`reply of ${out.length} bytes exceeds ${MAX_MESSAGE_LEN}`);
  return out;
}
