/**
 * What the handshake modules (handshake-manager.ts, handshake-responder.ts, handshake-stage2.ts) are given by the
 * node: the PKI as it is now, the host map, where addresses come from, how datagrams leave, and how a completed
 * tunnel is installed. Small seams, so the handshakes run in memory in the unit tests.
 */
import type { RemoteAllowList } from '../shared/allow-list';
import type { CipherName } from '../shared/crypto';
import type { Logger } from '../shared/log';
import type { CAPool, Certificate } from '../shared/pki';
import type { VpnAddr } from '../shared/protocol/vpn-addr';
import type { Endpoint } from '../shared/util/endpoint';
import type { SupervisorCounters } from './counters';
import type { HandshakePath } from './handshake-messages';
import type { HostInfo, HostMap, NewTunnel } from './hostmap';

export interface HandshakeEnv {
  log: Logger;
  cipher: CipherName;
  /**
   * The current PKI: read at every handshake, so a reloaded cert/key/CA pool applies to new tunnels. `cert` is our
   * certificate, or a CertState holding a v1 and a v2 one (we initiate in its initiating version and answer in the
   * initiator's when we hold it).
   */
  pki: () => { cert: Certificate; privateKey: Buffer; caPool: CAPool };
  vpnIp: number;
  hostmap: HostMap;
  tryIntervalMs: number;
  retries: number;
  counters: SupervisorCounters;
  /** Known underlay addresses of a VPN IP (static_host_map, the lighthouses' answers, past tunnels). */
  addressesFor(vpnIp: number): Endpoint[];
  /**
   * Asks the lighthouses where `vpnIp` is (no-op on a lighthouse, without lighthouses, or when asked recently): called
   * whenever an attempt knows one address or none, as Go's handshake manager does.
   */
  queryLighthouse?(vpnIp: number): void;
  /** First contact by IPv6 VPN address: the addresses known for it (static_host_map, lighthouse answers). */
  addressesFor6?(a: VpnAddr): Endpoint[];
  /** Asks the lighthouses where IPv6 VPN address `a` is (throttled as queryLighthouse). */
  queryLighthouse6?(a: VpnAddr): void;
  /** A handshake datagram to an address, or back through the relay it came by. */
  sendUdp(buf: Buffer, to: HandshakePath): void;
  /** Each attempt also goes through the relays the peer named (relay-manager.ts); absent: none. */
  relayHandshake?(vpnIp: number, stage1: Buffer): void;
  /**
   * Installs a completed tunnel (host map + routines), replacing any older tunnel to the same host. Undefined when
   * it was refused (the host map is full).
   */
  install(h: NewTunnel): HostInfo | undefined;
  /** Sends a test request on an existing tunnel (race aftermath). */
  sendTest(h: HostInfo): void;
  /**
   * lighthouse.remote_allow_list / remote_allow_ranges as they are now (reloadable): incoming handshakes from a
   * denied underlay address are neither answered (stage 1) nor completed (stage 2). Absent: everything allowed.
   */
  remoteAllowList?: () => RemoteAllowList;
}
