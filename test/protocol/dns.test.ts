/**
 * The DNS codec of the lighthouse responder: queries parsed from bytes built by hand after RFC 1035 §4.1, replies
 * compared byte for byte with messages written out by hand, and every malformed shape refused with a DnsParseError
 * (pointer loops included, which must end, not hang). The reply flags expected below are the ones Go nebula 1.6.1
 * (miekg/dns) sends; test/supervisor/dns-server.test.ts compares whole replies with a running Go nebula.
 */
import t, { type Test } from 'tap';
import {
  DnsParseError,
  encodeReply,
  MAX_COMPRESSION_POINTERS,
  parseHeader,
  parseQuery,
  readName,
  refusalFlags,
  replyFlags,
  RCODE_FORMAT_ERROR,
  RCODE_NOT_IMPLEMENTED,
  TYPE_A,
  TYPE_TXT,
} from '../../src/shared/protocol/dns';
import { txtStringsFromZoneText } from '../../src/shared/protocol/dns-txt';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** A name as RFC 1035 §3.1 lays it out: length-prefixed labels and the zero byte. */
const wire = (name: string): Buffer =>
  Buffer.concat([...name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
const header = (id: string, flags: string, qd: number, an = 0, ns = 0, ar = 0): Buffer => {
  const h = hex(id + flags + '0000'.repeat(4));
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
};

function parseError(t: Test, bytes: Buffer, pattern: RegExp, what: string): DnsParseError | undefined {
  try {
    parseQuery(bytes);
  } catch (err) {
    t.type(err, DnsParseError, what);
    t.match((err as Error).message, pattern, what);
    return err as DnsParseError;
  }
  t.fail(`${what}: accepted`);
  return undefined;
}

t.test('a plain query: header, one question, name in presentation form', async (t) => {
  // ID 0xbeef, RD; QDCOUNT 1; "host1." A IN.
  const msg = Buffer.concat([hex('beef 0100 0001 0000 0000 0000'), hex('05 686f737431 00'), hex('0001 0001')]);
  const q = parseQuery(msg);
  t.same(q.header, { id: 0xbeef, flags: 0x0100, qdcount: 1, ancount: 0, nscount: 0, arcount: 0 });
  t.equal(q.question?.name, 'host1.');
  t.equal(q.question?.wireName.toString('hex'), '05686f737431' + '00');
  t.equal(q.question?.qtype, TYPE_A);
  t.equal(q.question?.qclass, 1);
});

t.test('a compressed question name is read through its pointer and returned uncompressed', async (t) => {
  // "www" then a pointer to offset 22, where "example.com." sits after QTYPE/QCLASS (trailing bytes are ignored).
  const msg = Buffer.concat([header('0001', '0000', 1), hex('03 777777 c016'), hex('0010 0001'), wire('example.com')]);
  t.equal(msg.indexOf(wire('example.com')), 0x16);
  const q = parseQuery(msg);
  t.equal(q.question?.name, 'www.example.com.');
  t.same(q.question?.wireName, wire('www.example.com'));
  t.equal(q.question?.qtype, TYPE_TXT);
  const read = readName(msg, 12);
  t.equal(read.next, 12 + 6, 'the name ends where its first pointer ends');
});

t.test('names come out as miekg presents them: special bytes escaped, the root as "."', async (t) => {
  const label = Buffer.from([0x61, 0x2e, 0x20, 0x40, 0x3b, 0x28, 0x29, 0x22, 0x27, 0x5c, 0xff, 0x09, 0x41]);
  const msg = Buffer.concat([header('0001', '0000', 1), Buffer.from([label.length]), label, hex('00 0001 0001')]);
  t.equal(parseQuery(msg).question?.name, 'a\\.\\ \\@\\;\\(\\)\\"\\\'\\\\\\255\\009A.');
  const root = Buffer.concat([header('0001', '0000', 1), hex('00 0001 0001')]);
  t.equal(parseQuery(root).question?.name, '.');
  t.same(parseQuery(root).question?.wireName, hex('00'));
});

t.test("miekg's leniency: cut-short questions, short counts, trailing bytes", async (t) => {
  t.equal(parseQuery(header('0001', '0100', 1)).question, undefined, 'ends after the header: no question');
  const nameOnly = parseQuery(Buffer.concat([header('0001', '0100', 1), wire('a')])).question;
  t.same([nameOnly?.qtype, nameOnly?.qclass], [0, 0], 'ends after the name: type and class 0');
  const oneClassByte = parseQuery(Buffer.concat([header('0001', '0100', 1), wire('a'), hex('0001 00')])).question;
  t.same([oneClassByte?.qtype, oneClassByte?.qclass], [1, 0], 'a one-byte class reads as 0');
  const counted = parseQuery(Buffer.concat([header('0001', '0100', 1, 1, 1, 2), wire('a'), hex('0001 0001')]));
  t.equal(counted.question?.name, 'a.', 'records counted but absent');
  const edns = Buffer.concat([header('0001', '0100', 1, 0, 0, 1), wire('a'), hex('0001 0001'), hex('00 0029 1000 00000000 0000')]);
  t.equal(parseQuery(edns).question?.name, 'a.', 'an EDNS OPT record is walked over');
  const trailing = Buffer.concat([header('0001', '0100', 1), wire('a'), hex('0001 0001 deadbeef')]);
  t.equal(parseQuery(trailing).question?.qclass, 1, 'trailing bytes are ignored');
});

t.test('malformed and oversize queries are refused with a DnsParseError', async (t) => {
  const q = (body: Buffer, qd = 1, an = 0, ns = 0, ar = 0): Buffer => Buffer.concat([header('0001', '0100', qd, an, ns, ar), body]);
  t.throws(() => parseHeader(hex('0001 0100 0001 0000 0000 00')), DnsParseError, 'eleven bytes: no header');
  parseError(t, hex('00'), /shorter than a DNS header/, 'one byte');
  parseError(t, Buffer.concat([q(wire('a')), Buffer.alloc(600 - 15)]), /600 bytes exceeds 512/, 'over 512 bytes');
  parseError(t, q(Buffer.concat([wire('a'), hex('0001 0001'), wire('b'), hex('0001 0001')]), 2), /2 questions/, 'two questions');
  const noHeaderErr = parseError(t, q(hex('03 6162')), /label runs past the end/, 'label longer than the message');
  t.equal(noHeaderErr?.header?.id, 1, 'the header travels with the error (for FORMERR)');
  t.equal(noHeaderErr?.question, undefined, 'no question when the question failed');
  parseError(t, q(hex('01 61')), /name runs past the end/, 'name without its zero byte');
  parseError(t, q(hex('c0')), /pointer cut short/, 'a pointer missing its second byte');
  parseError(t, q(hex('40 0001 0001')), /reserved label type 0x40/, 'label type 01');
  parseError(t, q(hex('80 0001 0001')), /reserved label type 0x80/, 'label type 10');
  parseError(t, q(hex('c0ff 0001 0001')), /name runs past the end/, 'a pointer past the end');
  const long = Buffer.concat([...Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), hex('00 0001 0001')]);
  parseError(t, q(long), /longer than 255/, 'a 257-octet name');
  const longest = Buffer.concat([...Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([62]), Buffer.alloc(62, 0x61)])), hex('00 0001 0001')]);
  t.equal(parseQuery(q(longest)).question?.wireName.length, 253, 'a 253-octet name is fine');
  parseError(t, q(hex('01 61 0001')), /question type cut short/, 'one byte of type');
  const recordErr = parseError(t, q(Buffer.concat([wire('a'), hex('0001 0001'), hex('00 0029 04')]), 1, 0, 0, 1), /record header cut short/, 'record header cut');
  t.equal(recordErr?.question?.name, 'a.', 'the question travels with a record error (miekg echoes it in FORMERR)');
  parseError(t, q(Buffer.concat([wire('a'), hex('0001 0001'), hex('00 0029 1000 00000000 0050')]), 1, 0, 0, 1), /record data runs past/, 'RDLENGTH past the end');
  parseError(t, q(Buffer.concat([wire('a'), hex('0001 0001'), hex('40')]), 1, 1), /record: reserved label/, 'bad record owner');
});

t.test('compression pointer loops end in an error', async (t) => {
  parseError(t, Buffer.concat([header('0001', '0100', 1), hex('c00c 0001 0001')]), /too many compression pointers/, 'a pointer to itself');
  // Offset 12 points at 14, 14 points back at 12.
  parseError(t, Buffer.concat([header('0001', '0100', 1), hex('c00e c00c 0001 0001')]), /too many compression pointers/, 'two pointers in a ring');
  // A label then a pointer back to it: the name grows each turn until the 255-octet bound stops it (3 octets a turn
  // reach it before the 126-pointer bound; 2 octets a turn do not).
  parseError(t, Buffer.concat([header('0001', '0100', 1), hex('02 6162 c00c 0001 0001')]), /longer than 255/, 'a ring through a label');
  parseError(t, Buffer.concat([header('0001', '0100', 1), hex('01 61 c00c 0001 0001')]), /too many compression pointers/, 'a ring, short label');
  // A chain of exactly MAX_COMPRESSION_POINTERS pointers is still read; one more is refused.
  const chain = (n: number): Buffer => {
    const body: number[] = [];
    const pointerTo = (off: number): number[] => [0xc0 | (off >> 8), off & 0xff];
    for (let i = 0; i < n - 1; i++) body.push(...pointerTo(12 + 2 * (i + 1)));
    body.push(...pointerTo(12 + 2 * n), 0x01, 0x61, 0x00);
    return Buffer.concat([header('0001', '0100', 1), Buffer.from(body), hex('0001 0001')]);
  };
  t.equal(parseQuery(chain(MAX_COMPRESSION_POINTERS)).question?.name, 'a.');
  parseError(t, chain(MAX_COMPRESSION_POINTERS + 1), /too many compression pointers/, 'one pointer too many');
});

t.test('reply flags as miekg sets them', async (t) => {
  t.equal(replyFlags(0x0100), 0x8100, 'RD copied, QR set');
  t.equal(replyFlags(0x0130), 0x8110, 'RD and CD copied, AD not');
  t.equal(replyFlags(0x06bf), 0x8010, 'AA, TC, RA, AD and the request RCODE all dropped; CD copied');
  t.equal(replyFlags(0x2100), 0xa000, 'NOTIFY: opcode copied, RD not');
  t.equal(refusalFlags(0x06bf, RCODE_FORMAT_ERROR), 0x82b1, 'FORMERR keeps TC RA AD CD, clears AA and Z');
  t.equal(refusalFlags(0x2100, RCODE_FORMAT_ERROR), 0x8101, 'FORMERR turns the opcode into QUERY');
  t.equal(refusalFlags(0x2930, RCODE_NOT_IMPLEMENTED), 0xa934, 'NOTIMP keeps the opcode');
});

t.test('an A answer, byte for byte', async (t) => {
  const question = { wireName: wire('host1'), name: 'host1.', qtype: TYPE_A, qclass: 1 };
  const reply = encodeReply({ id: 0x1234, flags: 0x8100, question, answers: [{ type: TYPE_A, wireName: wire('host1'), ttl: 3600, address: 0x0a010002 }] });
  const expected =
    '1234 8100 0001 0001 0000 0000' + // ID, QR+RD, QDCOUNT 1, ANCOUNT 1
    '05 686f737431 00 0001 0001' + // question: host1. A IN
    '05 686f737431 00 0001 0001 00000e10 0004 0a010002'; // answer: host1. A IN TTL 3600, RDLENGTH 4, 10.1.0.2
  t.equal(reply.toString('hex'), hex(expected).toString('hex'));
});

t.test('a TXT answer, an empty reply and a header-only refusal, byte for byte', async (t) => {
  const question = { wireName: wire('10.1.0.2'), name: '10.1.0.2.', qtype: TYPE_TXT, qclass: 1 };
  const strings = [Buffer.from('Name: a'), Buffer.alloc(0), Buffer.from('x')];
  const txt = encodeReply({ id: 7, flags: 0x8000, question, answers: [{ type: TYPE_TXT, wireName: question.wireName, ttl: 3600, strings }] });
  const qname = '02 3130 01 31 01 30 01 32 00';
  t.equal(
    txt.toString('hex'),
    hex(`0007 8000 0001 0001 0000 0000 ${qname} 0010 0001 ${qname} 0010 0001 00000e10 000b 07 4e616d653a2061 00 01 78`).toString('hex'),
  );
  const none = encodeReply({ id: 7, flags: 0x8000, question, answers: [{ type: TYPE_TXT, wireName: question.wireName, ttl: 3600, strings: [] }] });
  t.equal(none.subarray(-2).toString('hex'), '0000', 'no strings: RDLENGTH 0, as miekg packs it');
  const empty = encodeReply({ id: 0xffff, flags: 0x8100, question: { ...question, qtype: 28 }, answers: [] });
  t.equal(empty.toString('hex'), hex(`ffff 8100 0001 0000 0000 0000 ${qname} 001c 0001`).toString('hex'));
  t.equal(encodeReply({ id: 9, flags: 0x8101, answers: [] }).toString('hex'), '000981010000000000000000');
  t.throws(() => encodeReply({ id: 1, flags: 0, answers: [{ type: TYPE_TXT, wireName: hex('00'), ttl: 1, strings: [Buffer.alloc(256)] }] }), /256 bytes exceeds 255/);
});

t.test('TXT strings from zone text, as miekg NewRR splits them', async (t) => {
  const strs = (text: string): string[] | undefined => txtStringsFromZoneText(text)?.map((b) => b.toString('latin1'));
  const goLine = '"Name: h1" "Ips: [10.1.0.2/16]" "Subnets []" "Groups [a b]" "NotBefore 2026-01-01 00:00:00 +0000 UTC" "IsCA false"';
  t.same(strs(goLine), ['Name: h1', 'Ips: [10.1.0.2/16]', 'Subnets []', 'Groups [a b]', 'NotBefore 2026-01-01 00:00:00 +0000 UTC', 'IsCA false']);
  t.same(strs('"a" "" "b"'), ['a', '', 'b'], 'an empty quoted string is kept');
  t.same(strs('"Name: a"b"c"'), ['Name: a', 'b', 'c'], 'a quote inside a value re-splits the text');
  t.same(strs('"Name: x" ;y" "z"'), ['Name: x'], 'a semicolon outside quotes comments out the rest');
  t.same(strs('"a;b" "c(d)"'), ['a;b', 'c(d)'], 'inside quotes ; ( ) are plain');
  t.same(strs('a(b)c "d"'), ['abc', 'd'], 'braces outside quotes vanish');
  t.equal(strs('"p"(q" "x"'), undefined, 'an unclosed brace: no record');
  t.equal(strs('"a" "b'), undefined, 'an unclosed quote: no record');
  t.equal(strs('a)'), undefined, 'a stray closing brace: no record');
  t.same(strs('"a\\065b\\"c\\\\"'), ['aAb"c\\'], 'escapes: \\DDD, \\", \\\\');
  t.same(strs('"tab\tx" "nl\nx" y\nz'), ['tab\tx', 'nl\nx', 'y'], 'a newline outside quotes ends the record');
  t.same(strs('   '), [], 'blanks only: no strings');
  const long = (n: number): string => 'x'.repeat(n);
  t.same(strs(`"${long(300)}"`)?.map((s) => s.length), [255, 45], 'a 300-byte string is cut at 255');
  t.same(strs(`"${long(510)}"`)?.map((s) => s.length), [255, 255, 0], "miekg's trailing empty chunk at a multiple of 255");
  t.same(strs(`"${long(255)}"`)?.map((s) => s.length), [255]);
  t.same(strs(`"${long(2047)}"`)?.map((s) => s.length), [...Array(8).fill(255), 7], 'a 2047-byte token is allowed');
  t.equal(strs(`"${long(2048)}"`), undefined, "a 2048-byte token fills miekg's lexer buffer and fails");
});
