/**
 * The disabled inside (tun.disabled): there is no device, so the only thing to deliver to is ourselves. An ICMP echo
 * request to our own VPN IP is answered in place (swap addresses, type 8 -> 0, patch the checksum) through the
 * outbound firewall; everything else is dropped. This is what makes a rootless node (a lighthouse) pingable.
 * ICMPv6 echo requests to one of our IPv6 VPN addresses are answered the same way (Go 1.11's
 * createICMPv6EchoResponse: only when ICMPv6 directly follows the fixed header).
 */
import { parseIPPacket } from '../shared/firewall';
import { TYPE_MESSAGE } from '../shared/protocol/header';
import { C } from '../shared/state/counters';
import type { DatapathContext } from './context';
import { ALLOW } from './firewall-gate';
import type { RoutineTunnel } from './tunnel-registry';
import { parseIPv6 } from '../shared/util/ipv6';

const ICMP = 1;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const ICMPV6 = 58;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;
const IPV6_HEADER = 40;

/** RFC 1624 (eqn. 3): the checksum `hc` after one 16-bit word of the summed data went from `from` to `to`. */
function patchChecksum(hc: number, from: number, to: number): number {
  let sum = (~hc & 0xffff) + (~from & 0xffff) + to;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export class EchoResponder {
  /** Our IPv6 VPN addresses, as the 16 bytes they are on the wire. */
  private readonly own6: Buffer[];

  constructor(private readonly ctx: DatapathContext) {
    this.own6 = ctx.setup.vpnNetworks6.map((text) => ipv6Bytes(text.split('/')[0]!)).filter((b): b is Buffer => b !== undefined);
  }

  /** `plain[0..len)` is an inbound packet already parsed into ctx.pkt and allowed by the inbound firewall. */
  answer(t: RoutineTunnel, plain: Buffer, len: number): void {
    const ctx = this.ctx;
    const pkt = ctx.pkt;
    if (pkt.version === 6) {
      this.answer6(t, plain, len);
      return;
    }
    const ihl = (plain[0]! & 0x0f) << 2;
    if (pkt.proto !== ICMP || pkt.fragment || pkt.localIp !== ctx.vpnIp || len < ihl + 8 || plain[ihl] !== ICMP_ECHO_REQUEST) return;
    const src = plain.readUInt32BE(12);
    plain.writeUInt32BE(plain.readUInt32BE(16), 12);
    plain.writeUInt32BE(src, 16);
    plain[ihl] = ICMP_ECHO_REPLY;
    // RFC 1624 incremental update: the type byte went from 8 to 0, so the one's complement sum drops by 0x0800.
    let sum = plain.readUInt16BE(ihl + 2) + 0x0800;
    sum = (sum & 0xffff) + (sum >>> 16);
    plain.writeUInt16BE(sum & 0xffff, ihl + 2);
    this.sendBack(t, plain, len);
  }

  private answer6(t: RoutineTunnel, plain: Buffer, len: number): void {
    if (len < IPV6_HEADER + 8 || plain[6] !== ICMPV6 || plain[IPV6_HEADER] !== ICMPV6_ECHO_REQUEST || !this.isOwn6(plain)) return;
    // Swap the addresses 4 bytes at a time (no allocation); the pseudo-header sum is unchanged by the swap.
    for (let i = 0; i < 16; i += 4) {
      const src = plain.readUInt32BE(8 + i);
      plain.writeUInt32BE(plain.readUInt32BE(24 + i), 8 + i);
      plain.writeUInt32BE(src, 24 + i);
    }
    plain[IPV6_HEADER] = ICMPV6_ECHO_REPLY;
    const checksum = plain.readUInt16BE(IPV6_HEADER + 2);
    plain.writeUInt16BE(patchChecksum(checksum, (ICMPV6_ECHO_REQUEST << 8) | plain[IPV6_HEADER + 1]!, (ICMPV6_ECHO_REPLY << 8) | plain[IPV6_HEADER + 1]!), IPV6_HEADER + 2);
    this.sendBack(t, plain, len);
  }

  /** Whether the destination of the IPv6 packet in plain is one of our addresses. */
  private isOwn6(plain: Buffer): boolean {
    for (const own of this.own6) if (own.compare(plain, 24, 40) === 0) return true;
    return false;
  }

  /** The reply goes through our outbound firewall, like any packet we send. */
  private sendBack(t: RoutineTunnel, plain: Buffer, len: number): void {
    const ctx = this.ctx;
    if (parseIPPacket(plain, len, false, ctx.pkt) && ctx.gate.check(ctx.pkt, false, t.firewallPeer) === ALLOW) {
      ctx.send(t, TYPE_MESSAGE, 0, plain, len, C['messages.tx.message']);
    }
  }
}

function ipv6Bytes(text: string): Buffer | undefined {
  const w = parseIPv6(text);
  if (w === undefined) return undefined;
  const b = Buffer.alloc(16);
  w.forEach((word, i) => b.writeUInt32BE(word, 4 * i));
  return b;
}
