/**
 * What the routines hand up over IPC, routed to the module that owns it: handshakes to the handshake manager,
 * tunnel requests and roaming to the tunnel lifecycle, routine log lines to our log, and the meta packets the
 * supervisor acts on itself (closeTunnel, recvError, lighthouse). A new meta-packet handler (relays) plugs in here.
 */
import type { MetaPacket, RoutineToSupervisor } from '../shared/ipc/messages';
import type { Logger, LogLevel } from '../shared/log';
import { TYPE_CLOSE_TUNNEL, TYPE_CONTROL, TYPE_HANDSHAKE, TYPE_LIGHTHOUSE, TYPE_RECV_ERROR } from '../shared/protocol/header';
import { formatIPv4 } from '../shared/util/ipv4';
import { formatEndpoint } from '../shared/util/endpoint';
import type { HandshakeManager } from './handshake-manager';
import type { HostMap } from './hostmap';
import type { LighthouseHandler } from './lighthouse-handler';
import type { RelayManager } from './relay-manager';
import type { Tunnels } from './tunnels';
import type { VpnAddrLookup } from './vpn-addr-book';
import { parseAddr6 } from '../shared/protocol/vpn-addr';

export interface MetaDispatchEnv {
  log: Logger;
  hostmap: HostMap;
  handshakes: HandshakeManager;
  tunnels: Tunnels;
  lighthouse: LighthouseHandler;
  /** Which host an address names (the IPv6 VPN addresses of the hosts we have tunnels to, and ours). */
  addrs: Pick<VpnAddrLookup, 'vpnIpOf'>;
  relays: RelayManager;
}

export class MetaDispatch {
  constructor(private readonly env: MetaDispatchEnv) {}

  onRoutineMessage(m: RoutineToSupervisor): void {
    switch (m.type) {
      case 'meta':
        this.onMeta(m.packet);
        return;
      case 'needTunnel':
        this.env.handshakes.start(m.vpnIp);
        return;
      case 'needTunnel6':
        this.needTunnel6(m.vpnAddr6);
        return;
      case 'roamed':
        this.env.tunnels.roamed(m.localIndex, m.remoteIp, m.remotePort);
        return;
      case 'log':
        this.env.log.log(m.level as LogLevel, m.msg, m.fields);
        return;
      case 'ready':
        return;
    }
  }

  /**
   * An IPv6 packet for a VPN address no routine knows a host for. A host we know by another address (a tunnel the
   * routine has not heard of yet) is handshaked by its IPv4 VPN IP; anyone else by that IPv6 address (first contact).
   */
  private needTunnel6(text: string): void {
    const a = parseAddr6(text);
    if (a === undefined) return;
    const known = this.env.addrs.vpnIpOf(a);
    if (known !== undefined) this.env.handshakes.start(known);
    else this.env.handshakes.startTo6(a);
  }

  private onMeta(p: MetaPacket): void {
    const { log, hostmap } = this.env;
    switch (p.type) {
      case TYPE_HANDSHAKE:
        this.env.handshakes.onPacket(p);
        return;
      case TYPE_RECV_ERROR:
        this.onRecvError(p);
        return;
      case TYPE_CLOSE_TUNNEL: {
        // Authenticated: the routine decrypted it with the tunnel's key (1.6.1 did not check, spec §6.3).
        const h = hostmap.byLocalIndex(p.localIndex);
        if (!h) return;
        log.info('Received close tunnel message', { vpnIp: formatIPv4(h.vpnIp), udpAddr: formatEndpoint({ ip: p.fromIp, port: p.fromPort }) });
        this.env.tunnels.remove(h);
        return;
      }
      case TYPE_CONTROL: {
        // Relay set-up (NebulaControl), authenticated like lighthouse messages.
        const h = hostmap.byLocalIndex(p.localIndex);
        if (h) this.env.relays.onControl(h.vpnIp, Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
        return;
      }
      case TYPE_LIGHTHOUSE: {
        // Authenticated: decrypted with the key of the tunnel it names, so the sender is that tunnel's peer.
        const h = hostmap.byLocalIndex(p.localIndex);
        if (h) this.env.lighthouse.onMessage(h.vpnIp, Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
        return;
      }
      default:
        return;
    }
  }

  /**
   * recvError is unauthenticated (spec §6.1): the first three for a tunnel are only counted; from the fourth on,
   * the tunnel is torn down, and only if the error came from the tunnel's current remote address.
   */
  private onRecvError(p: MetaPacket): void {
    const index = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).readUInt32BE(4);
    this.env.handshakes.dropPendingByIndex(index);
    const h = this.env.hostmap.byRemoteIndex(index);
    if (!h) return;
    h.recvErrors++;
    if (h.recvErrors <= 3) return;
    if (h.remoteIp !== p.fromIp || h.remotePort !== p.fromPort) return;
    this.env.log.info('Tunnel received recv_error, tearing down', { vpnIp: formatIPv4(h.vpnIp), udpAddr: formatEndpoint({ ip: p.fromIp, port: p.fromPort }) });
    this.env.tunnels.remove(h);
  }
}
