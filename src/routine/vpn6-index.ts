/**
 * The IPv6 overlay's address book in a routine: each IPv6 VPN address a peer's certificate holds, mapped to that
 * peer's IPv4 VPN IP, which is what every tunnel, parked packet and tunnel request is keyed by (a host's v1 and v2
 * certificates share their first IPv4 network, so the IPv4 VPN IP names the host in both generations).
 *
 * Filled from tunnel installs and kept after the tunnel goes, so IPv6 traffic alone can ask for the tunnel again
 * (the supervisor then handshakes by IPv4 VPN IP as usual). The book is bounded: past MAX_ADDRESSES the oldest
 * address is forgotten, which only costs that host's first IPv6 packets until some tunnel to it is installed again.
 * Lookups compare numbers only and allocate nothing.
 */
import type { IPv6Words } from '../shared/util/ipv6';
import { parseIPv6 } from '../shared/util/ipv6';

/** Addresses remembered (a few per host; well above any tunnels.max in use). */
export const MAX_ADDRESSES = 16384;

interface Entry {
  readonly w: IPv6Words;
  vpnIp: number;
}

function hash(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ w1, 0xc2b2ae35);
  h = Math.imul(h ^ w2, 0x85ebca6b);
  return (Math.imul(h ^ w3, 0xc2b2ae35) ^ (h >>> 15)) >>> 0;
}

export class Vpn6Index {
  /** Hash -> the entries with that hash (almost always one). Map order is insertion order: the oldest first. */
  private readonly byHash = new Map<number, Entry[]>();
  private count = 0;

  /** Records the peer's IPv6 VPN addresses (text, as PeerIdentity.ips6 carries them) as belonging to `vpnIp`. */
  learn(addresses: readonly string[], vpnIp: number): void {
    for (const text of addresses) {
      const w = parseIPv6(text);
      if (w === undefined) continue;
      const found = this.find(w[0], w[1], w[2], w[3]);
      if (found !== undefined) {
        found.vpnIp = vpnIp >>> 0; // a reissued certificate may have moved the address to another host
        continue;
      }
      if (this.count >= MAX_ADDRESSES) this.forgetOldest();
      const key = hash(w[0], w[1], w[2], w[3]);
      const list = this.byHash.get(key);
      if (list === undefined) this.byHash.set(key, [{ w, vpnIp: vpnIp >>> 0 }]);
      else list.push({ w, vpnIp: vpnIp >>> 0 });
      this.count++;
    }
  }

  /** The IPv4 VPN IP of the host holding IPv6 VPN address d[0..4), or -1 when no certificate seen here holds it. */
  vpnIpFor(d: Uint32Array): number {
    const e = this.find(d[0]!, d[1]!, d[2]!, d[3]!);
    return e === undefined ? -1 : e.vpnIp;
  }

  get size(): number {
    return this.count;
  }

  private find(w0: number, w1: number, w2: number, w3: number): Entry | undefined {
    const list = this.byHash.get(hash(w0, w1, w2, w3));
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!.w;
      if (w[0] === w0 && w[1] === w1 && w[2] === w2 && w[3] === w3) return list[i];
    }
    return undefined;
  }

  private forgetOldest(): void {
    const oldest = this.byHash.keys().next();
    if (oldest.done === true) return;
    const list = this.byHash.get(oldest.value)!;
    list.shift();
    if (list.length === 0) this.byHash.delete(oldest.value);
    this.count--;
  }
}
