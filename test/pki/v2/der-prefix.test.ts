/** The DER reader/writer (cryptobyte's rules) and the IP prefix helpers (netip's text forms and ordering). */
import t from 'tap';
import { DerError, DerReader, derElement, derLength, int64Content } from '../../../src/shared/pki/v2/der';
import { comparePrefix, formatPrefix, parsePrefix, prefixCovers, prefixFromBinary, type IpPrefix } from '../../../src/shared/pki/v2/prefix';

const hex = (h: string): Buffer => Buffer.from(h.replace(/ /g, ''), 'hex');

t.test('lengths are written in minimal form', async (t) => {
  const cases: [number, string][] = [
    [0, '00'],
    [127, '7f'],
    [128, '8180'],
    [255, '81ff'],
    [256, '820100'],
    [65535, '82ffff'],
    [65536, '83010000'],
  ];
  for (const [n, want] of cases) t.equal(derLength(n).toString('hex'), want, `length ${n}`);
  const big = derElement(0x04, Buffer.alloc(300, 7));
  t.equal(big.subarray(0, 4).toString('hex'), '0482012c');
  t.same(new DerReader(big, 'x').read(0x04, 'octets'), Buffer.alloc(300, 7), 'reads back');
});

t.test('the reader refuses what cryptobyte refuses, with the offset', async (t) => {
  const bad: [string, string, RegExp][] = [
    ['', 'empty input', /missing element at offset 0/],
    ['04', 'lone tag', /truncated element header at offset 0/],
    ['0403 0102', 'content shorter than its length', /element of 3 bytes overruns its 2 byte container/],
    ['0480', 'indefinite length', /indefinite length is not DER/],
    ['0485 0100000000', 'five length octets', /length of 5 octets is too long/],
    ['0484 ffffffff 00', 'a 4 GiB length', /element of 4294967295 bytes overruns/],
    ['0481 05 0102030405', 'long form for a short length', /length not in short form/],
    ['0482 0080' + '00'.repeat(128), 'a leading zero length octet', /leading zero octet/],
    ['1f01 00', 'high-tag-number form', /high-tag-number form \(tag 0x1f\)/],
    ['0482 01', 'truncated length octets', /truncated length/],
  ];
  for (const [input, what, message] of bad) {
    t.throws(() => new DerReader(hex(input), 'x').readAny(), { name: 'DerError', message }, what);
  }
  t.throws(() => new DerReader(hex('0500'), 'x').read(0x04, 'octets'), { message: 'x: octets: expected tag 0x04, found 0x05 at offset 0' });
  const r = new DerReader(hex('8101ff 0400'), 'x');
  t.same(r.readOptional(0x82, 'absent'), undefined, 'an absent optional consumes nothing');
  t.same(r.readOptional(0x81, 'present'), hex('ff'));
  t.same(r.read(0x04, 'empty'), Buffer.alloc(0));
  t.ok(r.empty);
});

t.test('int64 INTEGERs: minimal two-complement both ways, non-minimal and oversize refused', async (t) => {
  const cases: [bigint, string][] = [
    [0n, '00'],
    [1n, '01'],
    [127n, '7f'],
    [128n, '0080'],
    [255n, '00ff'],
    [256n, '0100'],
    [-1n, 'ff'],
    [-128n, '80'],
    [-129n, 'ff7f'],
    [1764547200n, '692cda80'],
    [4102444800n, '00f4865700'],
    [(1n << 63n) - 1n, '7fffffffffffffff'],
    [-(1n << 63n), '8000000000000000'],
  ];
  for (const [v, want] of cases) {
    t.equal(int64Content(v).toString('hex'), want, `encode ${v}`);
    t.equal(new DerReader(derElement(0x85, hex(want)), 'x').readInt64(0x85, 'n'), v, `decode ${want}`);
  }
  for (const [body, message] of [
    ['', /empty integer/],
    ['007f', /not minimally encoded/],
    ['ff80', /not minimally encoded/],
    ['010000000000000000', /does not fit 64 bits/],
  ] as const) {
    t.throws(() => new DerReader(derElement(0x85, hex(body)), 'x').readInt64(0x85, 'n'), { message }, `integer ${body || '(empty)'}`);
  }
  t.throws(() => int64Content(1n << 63n), DerError);
});

const p = (text: string): IpPrefix => parsePrefix(text)!;

t.test('prefix text is netip.Prefix.String()', async (t) => {
  const cases: [string, string][] = [
    ['10.1.2.3/16', '10.1.2.3/16'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00::1/64', 'fd00::1/64'],
    ['FD00:0:0:0:0:0:0:1/64', 'fd00::1/64'],
    ['::/0', '::/0'],
    ['::1/128', '::1/128'],
    ['2001:db8:0:0:1:0:0:1/64', '2001:db8::1:0:0:1/64'],
    ['1:0:0:2:0:0:0:3/64', '1:0:0:2::3/64'],
    ['1:0:2:3:4:5:6:7/64', '1:0:2:3:4:5:6:7/64'],
    ['1::/16', '1::/16'],
    ['::ffff:1.2.3.4/128', '::ffff:1.2.3.4/128'],
    ['::1.2.3.4/128', '::102:304/128'],
    ['fd00:1::/32', 'fd00:1::/32'],
  ];
  for (const [input, want] of cases) t.equal(formatPrefix(p(input)), want, input);
  for (const bad of ['10.1.2.3', '10.1.2.3/33', '10.01.2.3/8', '1.2.3/8', 'fd00::1/129', '1::2::3/64', '1:2:3:4:5:6:7:8:9/64', 'fd00::1%eth0/64', '10.1.2.3/+8', '10.1.2.3/08', '1.2.3.4::/64', ':1::/64']) {
    t.equal(parsePrefix(bad), undefined, `refuses ${bad}`);
  }
  t.equal(formatPrefix(prefixFromBinary(hex('00'))!), 'invalid Prefix', 'the 1-byte form is the invalid prefix');
  t.equal(formatPrefix(prefixFromBinary(hex('0a00000121'))!), 'invalid Prefix', 'bits beyond 32');
  t.equal(prefixFromBinary(hex('0a000001')), undefined, '4 bytes is not a prefix');
});

t.test('ordering and containment follow Go', async (t) => {
  const sorted = ['10.0.0.5/8', '10.0.0.5/16', '172.16.0.5/12', '::/0', 'fd00::5/64', 'fd01::5/48'].map(p);
  const shuffled = [sorted[4]!, sorted[1]!, sorted[5]!, sorted[0]!, sorted[3]!, sorted[2]!];
  t.same(shuffled.sort(comparePrefix).map(formatPrefix), sorted.map(formatPrefix));
  t.ok(prefixCovers(p('10.128.0.0/9'), p('10.200.1.1/16')));
  t.notOk(prefixCovers(p('10.128.0.0/9'), p('10.1.1.1/16')), 'outside');
  t.notOk(prefixCovers(p('10.128.0.0/9'), p('10.200.1.1/8')), 'less specific');
  t.ok(prefixCovers(p('fd00:1::/32'), p('fd00:1:2::1/48')));
  t.notOk(prefixCovers(p('fd00:1::/32'), p('fd00:2::1/48')));
  t.notOk(prefixCovers(p('0.0.0.0/0'), p('::ffff:1.2.3.4/128')), 'a v4 prefix does not hold a 4in6 address');
  t.ok(prefixCovers(p('::/0'), p('::ffff:1.2.3.4/128')));
});
