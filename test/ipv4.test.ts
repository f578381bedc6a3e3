import t from 'tap';
import { parseIPv4, formatIPv4, parseCidr, netContains, prefixFromMask } from '../src/shared/util/ipv4';

t.test('IPv4 text round-trips as a big-endian uint32', async (t) => {
  t.equal(parseIPv4('10.1.2.3'), 0x0a010203);
  t.equal(formatIPv4(0x0a010203), '10.1.2.3');
  t.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  t.equal(parseIPv4('256.1.1.1'), undefined);
  t.equal(parseIPv4('1.2.3'), undefined);
});

t.test('CIDR parsing and containment', async (t) => {
  const net = parseCidr('10.1.2.3/16');
  t.ok(net);
  t.equal(net!.mask, 0xffff0000);
  t.ok(netContains(net!, parseIPv4('10.1.200.9')!));
  t.notOk(netContains(net!, parseIPv4('10.2.0.1')!));
  t.equal(prefixFromMask(0xffffff00), 24);
  t.equal(prefixFromMask(0xff00ff00), undefined);
  t.equal(parseCidr('10.0.0.0/33'), undefined);
});
