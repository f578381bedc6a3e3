/** IPv6 text <-> Addr (vpn-addr.ts): what first contact and the console name an IPv6 VPN address by. */
import t from 'tap';
import { addrKey, addrOfBytes, formatAddr, formatAddr6, parseAddr6 } from '../../src/shared/protocol/vpn-addr';

t.test('parseAddr6 agrees with the 16 bytes of the address; IPv4 and garbage are not IPv6 addresses', async (t) => {
  const bytes = Buffer.from('fd420000000000000000000000000003', 'hex');
  t.equal(addrKey(parseAddr6('fd42::3')!), addrKey(addrOfBytes(bytes)));
  t.same(parseAddr6('fd42::3'), { hi: 0xfd42000000000000n, lo: 3n });
  t.equal(parseAddr6('192.168.100.1'), undefined);
  t.equal(parseAddr6('fd42::3::1'), undefined);
});

t.test('formatAddr6 prints the compressed form Go prints; formatAddr keeps the eight groups', async (t) => {
  const a = parseAddr6('fd42::3')!;
  t.equal(formatAddr6(a), 'fd42::3');
  t.equal(formatAddr(a), 'fd42:0:0:0:0:0:0:3');
  t.equal(formatAddr6(parseAddr6('2001:db8:1:2:3:4:5:6')!), '2001:db8:1:2:3:4:5:6');
});
