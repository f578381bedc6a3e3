/**
 * The routine's view of installed tunnels: immutable per-tunnel data that arrived by IPC (keys, peer identity,
 * remote address), indexed by our local index (outside -> inside) and by the peer's VPN IP (inside -> outside).
 * The mutable hot fields (send counter, replay window, liveness marks) are in the shared tunnel slot `slot`.
 */
import { createPacketCipher, type CipherName, type PacketCipher } from '../shared/crypto';
import { allocSockaddrIn, fillSockaddrIn } from '../shared/native/sockaddr';
import type { FirewallPeer } from '../shared/firewall';
import type { PeerIdentity, TunnelInstall, ViaRelay } from '../shared/ipc/messages';
import { parseCidr6, parseIPv6, type IPv6Net, type IPv6Words } from '../shared/util/ipv6';
import { Vpn6Index } from './vpn6-index';

export class RoutineTunnel {
  readonly encrypt: PacketCipher;
  readonly decrypt: PacketCipher;
  /** Prebuilt sockaddr_in of the peer, reused for every send. */
  readonly remoteSockaddr = allocSockaddrIn();
  /** The peer as the firewall matches it (groups as a Set), built once at install, used on every packet. */
  readonly firewallPeer: FirewallPeer;
  remoteIp = 0;
  remotePort = 0;
  /**
   * Set while the tunnel is relayed (nebula-spec §5.8): its datagrams go in relay frames on the tunnel to the relay
   * host, looked up at each send. An authenticated datagram from a direct address makes it direct (setRemote).
   */
  via: { readonly remoteIndex: number; relayTunnel(): RoutineTunnel | undefined } | undefined;

  constructor(
    readonly slot: number,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly vpnIp: number,
    readonly peer: PeerIdentity,
    cipher: CipherName,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
  ) {
    this.firewallPeer = {
      name: peer.name,
      groups: new Set(peer.groups),
      issuer: peer.issuer,
      caName: peer.caName,
      ips: peer.ips,
      subnets: peer.subnets,
      ips6: peer.ips6.map((t) => parseIPv6(t)).filter((w): w is IPv6Words => w !== undefined),
      subnets6: peer.subnets6.map((t) => parseCidr6(t)).filter((n): n is IPv6Net => n !== undefined),
    };
    this.encrypt = createPacketCipher(cipher, Buffer.from(sendKey));
    this.decrypt = createPacketCipher(cipher, Buffer.from(recvKey));
  }

  setRemote(ip: number, port: number): void {
    if (ip !== 0) this.via = undefined;
    this.remoteIp = ip >>> 0;
    this.remotePort = port;
    fillSockaddrIn(this.remoteSockaddr, ip, port);
  }

  dispose(): void {
    this.encrypt.dispose();
    this.decrypt.dispose();
  }
}

export class TunnelRegistry {
  private readonly byIndex = new Map<number, RoutineTunnel>();
  private readonly byVpnIp = new Map<number, RoutineTunnel>();
  /** IPv6 VPN address -> the IPv4 VPN IP of its host (the IPv6 overlay's way to a tunnel). */
  readonly vpn6 = new Vpn6Index();

  constructor(private readonly cipher: CipherName) {}

  install(t: TunnelInstall): RoutineTunnel {
    this.removeByIndex(t.localIndex);
    const tunnel = new RoutineTunnel(t.slot, t.localIndex, t.remoteIndex, t.vpnIp, t.peer, this.cipher, t.sendKey, t.recvKey);
    tunnel.setRemote(t.remoteIp, t.remotePort);
    if (t.via) this.relayThrough(tunnel, t.via);
    this.byIndex.set(t.localIndex, tunnel);
    // The newest tunnel to a VPN IP carries outbound traffic; an older one still decrypts until it is removed.
    this.byVpnIp.set(t.vpnIp, tunnel);
    this.vpn6.learn(t.peer.ips6, t.vpnIp);
    return tunnel;
  }

  /**
   * remoteChanged: the tunnel's remote as the supervisor holds it, back on its relay when `via` is given (the routine
   * dropped the relay when an authenticated datagram came from a direct address the supervisor then refused).
   */
  setRemote(localIndex: number, ip: number, port: number, via?: ViaRelay): void {
    const t = this.byIndex.get(localIndex);
    if (!t) return;
    t.setRemote(ip, port);
    if (via) this.relayThrough(t, via);
  }

  /** Makes `t` relayed: its datagrams go in frames on the tunnel to the relay host, looked up at each send. */
  private relayThrough(t: RoutineTunnel, via: ViaRelay): void {
    t.via = { remoteIndex: via.remoteIndex, relayTunnel: () => this.byVpnIp.get(via.relayVpnIp) };
  }

  removeByIndex(localIndex: number): RoutineTunnel | undefined {
    const t = this.byIndex.get(localIndex);
    if (!t) return undefined;
    this.byIndex.delete(localIndex);
    if (this.byVpnIp.get(t.vpnIp) === t) {
      this.byVpnIp.delete(t.vpnIp);
      for (const other of this.byIndex.values()) if (other.vpnIp === t.vpnIp) this.byVpnIp.set(t.vpnIp, other);
    }
    t.dispose();
    return t;
  }

  byLocalIndex(index: number): RoutineTunnel | undefined {
    return this.byIndex.get(index);
  }

  forVpnIp(vpnIp: number): RoutineTunnel | undefined {
    return this.byVpnIp.get(vpnIp);
  }

  get size(): number {
    return this.byIndex.size;
  }
}
