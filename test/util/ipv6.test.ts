import t from 'tap';
import {
  parseIPv6, formatIPv6, parseCidr6, formatCidr6, net6Contains, readIPv6Words, type IPv6Words,
} from '../../src/shared/util/ipv6';

t.test('IPv6 text parses into four big-endian words', async (t) => {
  t.same(parseIPv6('2001:db8::1'), [0x20010db8, 0, 0, 1]);
  t.same(parseIPv6('::'), [0, 0, 0, 0]);
  t.same(parseIPv6('::1'), [0, 0, 0, 1]);
  t.same(parseIPv6('fe80::'), [0xfe800000, 0, 0, 0]);
  t.same(parseIPv6('1:2:3:4:5:6:7:8'), [0x00010002, 0x00030004, 0x00050006, 0x00070008]);
  t.same(parseIPv6('FFFF:ffff:0000:0:0:0:0:0001'), [0xffffffff, 0, 0, 1]);
  t.same(parseIPv6('::ffff:10.1.2.3'), [0, 0, 0xffff, 0x0a010203]);
  t.same(parseIPv6('1:2:3:4:5:6:1.2.3.4'), [0x00010002, 0x00030004, 0x00050006, 0x01020304]);
  t.same(parseIPv6('1::7:8'), [0x00010000, 0, 0, 0x00070008]);
  t.same(parseIPv6('1:2:3:4:5:6:7::'), [0x00010002, 0x00030004, 0x00050006, 0x00070000]);
});

t.test('malformed IPv6 text is undefined (netip.ParseAddr refuses it)', async (t) => {
  for (const bad of [
    '', ':', ':::', '1.2.3.4', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', ':1::', '1:::2',
    '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '::1.2.3.256', '::01.2.3.4',
    '1.2.3.4::', '::1.2.3.4:1', 'fe80::1%eth0', '[::1]', ' ::1', '::1 ', '1::2:',
  ]) {
    t.equal(parseIPv6(bad), undefined, bad);
  }
});

t.test('formatting follows netip.Addr.String (RFC 5952)', async (t) => {
  const cases: Array<[IPv6Words, string]> = [
    [[0, 0, 0, 0], '::'],
    [[0, 0, 0, 1], '::1'],
    [[0x20010db8, 0, 0, 1], '2001:db8::1'],
    // a single zero group is not shortened
    [[0x20010db8, 0x00000001, 0x00010001, 0x00010001], '2001:db8:0:1:1:1:1:1'],
    // the longest run wins; the first on a tie
    [[0x20010000, 0x00000001, 0x00000000, 0x00000001], '2001:0:0:1::1'],
    [[0x20010db8, 0x00000001, 0x00010000, 0x00000001], '2001:db8:0:1:1::1'],
    [[0x00010000, 0x00010000, 0x00010000, 0x00000001], '1:0:1:0:1::1'],
    [[0x00010000, 0x00000001, 0x00000000, 0x00000001], '1:0:0:1::1'],
    [[0x00010000, 0x00000000, 0x00010000, 0x00000001], '1::1:0:0:1'],
    [[0xfe800000, 0, 0, 0], 'fe80::'],
    [[0xABCD0000, 0, 0, 0x0000EF01], 'abcd::ef01'],
    [[0x00010002, 0x00030004, 0x00050006, 0x00070008], '1:2:3:4:5:6:7:8'],
    // IPv4-mapped prints its dotted quad; other embeddings do not
    [[0, 0, 0xffff, 0x0a010203], '::ffff:10.1.2.3'],
    [[0, 0, 0, 0x0a010203], '::a01:203'],
  ];
  for (const [words, text] of cases) {
    t.equal(formatIPv6(words), text, text);
    t.same(parseIPv6(text), words, `${text} round-trips`);
  }
  t.equal(formatIPv6(new Uint32Array([0x20010db8, 0, 0, 0xffffffff])), '2001:db8::ffff:ffff');
});

t.test('CIDRs parse as netip.ParsePrefix and contain by prefix', async (t) => {
  const net = parseCidr6('2001:db8::5/64');
  t.same(net, { words: [0x20010db8, 0, 0, 5], bits: 64 });
  t.equal(formatCidr6(net!), '2001:db8::5/64');
  t.ok(net6Contains(net!, 0x20010db8, 0, 0xffffffff, 0xffffffff));
  t.notOk(net6Contains(net!, 0x20010db8, 1, 0, 0));
  for (const bad of ['2001:db8::/129', '2001:db8::', '2001:db8::/08', '2001:db8::/-1', '2001:db8::/+8', '10.0.0.0/8',
    '2001:db8::/', '/64', '2001:db8::/6 4']) {
    t.equal(parseCidr6(bad), undefined, bad);
  }
  const any = parseCidr6('::/0')!;
  t.ok(net6Contains(any, 0xffffffff, 1, 2, 3));
  const host = parseCidr6('::1/128')!;
  t.ok(net6Contains(host, 0, 0, 0, 1));
  t.notOk(net6Contains(host, 0, 0, 0, 2));
  const odd = parseCidr6('2001:db8:8000::/33')!;
  t.ok(net6Contains(odd, 0x20010db8, 0xffffffff, 0, 0));
  t.notOk(net6Contains(odd, 0x20010db8, 0x7fffffff, 0, 0));
  const mid = parseCidr6('::ffff:ff00:0/104')!;
  t.ok(net6Contains(mid, 0, 0, 0xffff, 0xff123456));
  t.notOk(net6Contains(mid, 0, 0, 0xffff, 0xfe123456));
});

t.test('readIPv6Words reads 16 bytes big-endian', async (t) => {
  const buf = new Uint8Array(20);
  buf.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xee, 0xdd, 0xcc], 2);
  const out = new Uint32Array(4);
  readIPv6Words(buf, 2, out);
  t.same([...out], [0x20010db8, 0, 0, 0xffeeddcc]);
});
