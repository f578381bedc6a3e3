/**
 * Packets for a VPN IP that has no tunnel yet wait here (bounded) while the supervisor handshakes, like Nebula's
 * per-host packet cache (up to 100 per host). Parking copies the packet: it happens once per flow start, not per
 * packet of an established tunnel. A host is keyed by its IPv4 VPN IP (a number), or, on first contact by an IPv6
 * VPN address (no certificate seen here holds it yet), by that address as formatIPv6 writes it (a string); both kinds
 * share the bounds.
 */
export type ParkingKey = number | string;
export const MAX_PARKED_PER_HOST = 100;
export const MAX_PARKED_HOSTS = 1024;
const REASK_MS = 1000;

interface Parked {
  packets: Buffer[];
  askedAt: number;
}

export class OutboundParking {
  private readonly hosts = new Map<ParkingKey, Parked>();

  /** Parks a copy; returns 'ask' when the supervisor should be (re)asked for a tunnel, 'parked', or 'dropped'. */
  park(vpnIp: ParkingKey, buf: Buffer, len: number, now: number): 'ask' | 'parked' | 'dropped' {
    let entry = this.hosts.get(vpnIp);
    if (!entry) {
      if (this.hosts.size >= MAX_PARKED_HOSTS) return 'dropped';
      entry = { packets: [], askedAt: now };
      this.hosts.set(vpnIp, entry);
      entry.packets.push(Buffer.from(buf.subarray(0, len)));
      return 'ask';
    }
    if (entry.packets.length >= MAX_PARKED_PER_HOST) return 'dropped';
    entry.packets.push(Buffer.from(buf.subarray(0, len)));
    if (now - entry.askedAt >= REASK_MS) {
      entry.askedAt = now;
      return 'ask';
    }
    return 'parked';
  }

  /** Takes every packet parked for `vpnIp` (on tunnel install). */
  take(vpnIp: ParkingKey): Buffer[] {
    const entry = this.hosts.get(vpnIp);
    if (!entry) return [];
    this.hosts.delete(vpnIp);
    return entry.packets;
  }

  /** Drops what waited too long (the handshake timed out); returns how many packets were dropped. */
  expire(now: number, maxAgeMs: number): number {
    let dropped = 0;
    for (const [ip, entry] of this.hosts) {
      if (now - entry.askedAt > maxAgeMs) {
        dropped += entry.packets.length;
        this.hosts.delete(ip);
      }
    }
    return dropped;
  }
}
