/**
 * The disabled inside (tun.disabled): there is no device, so the only thing to deliver to is ourselves. An ICMP echo
 * request to our own VPN IP is answered in place (swap addresses, type 8 -> 0, patch the checksum) through the
 * outbound firewall; everything else is dropped. This is what makes a rootless node (a lighthouse) pingable.
 */
import { parseIPv4Packet } from '../shared/firewall';
import { TYPE_MESSAGE } from '../shared/protocol/header';
import { C } from '../shared/state/counters';
import type { DatapathContext } from './context';
import { ALLOW } from './firewall-gate';
import type { RoutineTunnel } from './tunnel-registry';

const ICMP = 1;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;

export class EchoResponder {
  constructor(private readonly ctx: DatapathContext) {}

  /** `plain[0..len)` is an inbound packet already parsed into ctx.pkt and allowed by the inbound firewall. */
  answer(t: RoutineTunnel, plain: Buffer, len: number): void {
    const ctx = this.ctx;
    const pkt = ctx.pkt;
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
    if (parseIPv4Packet(plain, len, false, pkt) && ctx.gate.check(pkt, false, t.firewallPeer) === ALLOW) {
      ctx.send(t, TYPE_MESSAGE, 0, plain, len, C['messages.tx.message']);
    }
  }
}
