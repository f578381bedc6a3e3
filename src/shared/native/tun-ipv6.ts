/**
 * IPv6 on the tun device, for the IPv6 networks of a v2 certificate (Go 1.11's tun_linux.go addIPs / Activate):
 * no link-local address (addr_gen_mode none, so the kernel sends no router solicitations into the overlay), each
 * IPv6 VPN address with its prefix, added with `ip` (no ioctl takes an IPv6 address on an AF_INET socket).
 *
 * `nodad`: Go leaves duplicate address detection on, which keeps the address tentative (unusable) for about a
 * second after the device comes up; on a point-to-point tun device nobody can answer a DAD probe, so it only delays
 * the first packet.
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { formatCidr6, type IPv6Net } from '../util/ipv6';

/** `addr_gen_mode = 1` (none): no link-local address when IPv6 comes up. False when the kernel has no IPv6. */
export function disableLinkLocal(dev: string): boolean {
  const path = `/proc/sys/net/ipv6/conf/${dev}/addr_gen_mode`;
  if (!existsSync(path)) return false;
  writeFileSync(path, '1');
  return true;
}

/** The network of `net` without host bits, as `ip route` wants it ('fd00::/64'). */
export function maskedCidr6(net: IPv6Net): string {
  const masked = (i: number): number => {
    const inWord = net.bits - i * 32;
    const mask = inWord <= 0 ? 0 : inWord >= 32 ? 0xffffffff : (0xffffffff << (32 - inWord)) >>> 0;
    return (net.words[i]! & mask) >>> 0;
  };
  return formatCidr6({ words: [masked(0), masked(1), masked(2), masked(3)], bits: net.bits });
}

/** `ip -6 addr replace <addr>/<bits> dev <dev> nodad`; rejects with ip's own words. */
export function addAddress6(dev: string, net: IPv6Net): Promise<void> {
  const args = ['-6', 'addr', 'replace', formatCidr6(net), 'dev', dev, 'nodad'];
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(new Error(`ip ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
    });
  });
}
