/**
 * VpnAddrBook (src/supervisor/vpn-addr-book.ts): which host (IPv4 VPN IP) an address of either family names, from our
 * own certificate and the certificates of the hosts we have tunnels to; and Go's findNetworkUnion.
 */
import t from 'tap';
import { parseAddr, parsePrefix, type IpPrefix } from '../../src/shared/pki/v2/prefix';
import { addrOfBytes, addrOfIPv4, type VpnAddr } from '../../src/shared/protocol/vpn-addr';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { findNetworkUnion, VpnAddrBook } from '../../src/supervisor/vpn-addr-book';

const ip = (s: string): number => parseIPv4(s)!;
const nets = (...s: string[]): IpPrefix[] => s.map((p) => parsePrefix(p)!);
const addr = (s: string): VpnAddr => addrOfBytes(parseAddr(s)!);

t.test('addresses of our own and of tunnelled hosts name those hosts; others as before', async (t) => {
  let own = nets('192.168.100.1/24', 'fd42::1/64');
  const book = new VpnAddrBook({ vpnIp: ip('192.168.100.1'), networks: () => own });
  book.tunnelUp(ip('192.168.100.2'), nets('192.168.100.2/24', '10.7.0.2/16', 'fd42::2/64'));
  t.equal(book.vpnIpOf(addr('fd42::1')), ip('192.168.100.1'), 'our IPv6 address: us');
  t.equal(book.vpnIpOf(addr('fd42::2')), ip('192.168.100.2'), "a tunnelled host's IPv6 address");
  t.equal(book.vpnIpOf(addr('10.7.0.2')), ip('192.168.100.2'), 'its second IPv4 address too');
  t.equal(book.vpnIpOf(addrOfIPv4(ip('192.168.100.9'))), ip('192.168.100.9'), 'an IPv4 address nobody holds: the key it is');
  t.equal(book.vpnIpOf(addr('fd42::9')), undefined, 'an IPv6 address nobody holds: nobody');
  t.same(book.networksOf(ip('192.168.100.2')), nets('192.168.100.2/24', '10.7.0.2/16', 'fd42::2/64'));
  t.equal(book.size, 3);

  // A new certificate for the host replaces its addresses; another host may take one over.
  book.tunnelUp(ip('192.168.100.2'), nets('192.168.100.2/24', 'fd42::22/64'));
  t.equal(book.vpnIpOf(addr('fd42::2')), undefined, 'the old address is gone');
  t.equal(book.vpnIpOf(addr('fd42::22')), ip('192.168.100.2'));
  book.tunnelUp(ip('192.168.100.3'), nets('192.168.100.3/24', 'fd42::22/64'));
  book.tunnelGone(ip('192.168.100.2'));
  t.equal(book.vpnIpOf(addr('fd42::22')), ip('192.168.100.3'), "the host that took it keeps it when the other's tunnel goes");
  book.tunnelGone(ip('192.168.100.3'));
  t.same([book.size, book.networksOf(ip('192.168.100.3'))], [0, undefined], 'nothing left once every tunnel went');

  // Ours are read at each lookup (a reload may bring a new certificate).
  own = nets('192.168.100.1/24', 'fd43::1/64');
  t.same([book.vpnIpOf(addr('fd42::1')), book.vpnIpOf(addr('fd43::1'))], [undefined, ip('192.168.100.1')]);
});

t.test('findNetworkUnion: the first address in the first network that holds one (Go order: networks, then addresses)', async (t) => {
  const a = (s: string): Buffer => parseAddr(s)!;
  const querier = [a('192.168.100.2'), a('fd42::2')];
  t.same(findNetworkUnion(nets('192.168.100.3/24', 'fd42::3/64'), querier), a('192.168.100.2'));
  t.same(findNetworkUnion(nets('10.0.0.3/24', 'fd42::3/64'), querier), a('fd42::2'));
  t.same(findNetworkUnion(nets('10.0.0.3/24'), querier), undefined);
  t.same(addrOfBytes(a('10.0.0.1')), addrOfIPv4(ip('10.0.0.1')), 'addrOfBytes writes IPv4 in its mapped form, as Go');
});
