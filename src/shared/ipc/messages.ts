/**
 * Supervisor <-> routine IPC. One discriminated union per direction; Node's 'advanced' serialization carries
 * Buffers. Only control-plane traffic goes here: keys and peer identity when a tunnel is installed, firewall
 * rules, meta packets the routine cannot handle alone. Mutable hot state (send counters, replay windows,
 * liveness marks, counters) lives in the shared-memory region instead.
 */
import type { CipherName } from '../crypto/types';
import type { FirewallRule } from '../firewall/rule';
import type { FirewallAction } from '../firewall/firewall';
import type { RegionCapacities } from '../state/layout';

/** What the firewall needs to know about a peer; derived from its certificate once, at install time. */
export interface PeerIdentity {
  name: string;
  groups: string[];
  /** Fingerprint of the issuing CA (the cert's Issuer field, hex). */
  issuer: string;
  /** Name of the CA that signed the peer cert, as found in our pool. */
  caName: string;
  /** Peer cert IPs (uint32, without masks: the firewall checks them as /32) and its unsafe subnets. */
  ips: number[];
  subnets: Array<{ ip: number; mask: number }>;
  /** The peer's IPv6 VPN addresses (its cert's IPv6 networks, host bits) and IPv6 unsafe networks, as text. */
  ips6: string[];
  subnets6: string[];
}

export interface TunnelInstall {
  /** Slot in the shared tunnel table (send counter, replay window, liveness marks). */
  slot: number;
  localIndex: number;
  remoteIndex: number;
  vpnIp: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  remoteIp: number;
  remotePort: number;
  peer: PeerIdentity;
  /** A relayed tunnel (nebula-spec §5.8): its datagrams go wrapped in relay frames on the tunnel to `relayVpnIp`. */
  via?: ViaRelay;
}

/** The way to a peer through a relay: the relay host's VPN IP and the relay index it knows our side by. */
export interface ViaRelay {
  relayVpnIp: number;
  remoteIndex: number;
}

/**
 * One established relay index of ours, as the routines need it (relay-manager.ts): frames addressed to `localIndex`
 * arrive on the tunnel to `fromVpnIp`; a terminal one carries datagrams for us, a forwarding one is sent on to
 * `targetVpnIp`'s tunnel under the index that side knows it by.
 */
export interface RelayRoute {
  localIndex: number;
  fromVpnIp: number;
  kind: 'terminal' | 'forwarding';
  /** terminal: the index the relay host knows this relay by (what our replies are addressed to). */
  remoteIndex: number;
  targetVpnIp?: number;
  targetRemoteIndex?: number;
}

/** A validated rule set; every routine compiles the same rules into its own matcher. */
export interface FirewallUpdate {
  /** 16-bit rules version stamped on conntrack entries (bumped on every reload that changes the firewall). */
  version: number;
  inbound: FirewallRule[];
  outbound: FirewallRule[];
  /** Conntrack timeouts in ms. */
  tcpTimeout: number;
  udpTimeout: number;
  defaultTimeout: number;
  /** firewall.default_local_cidr_any (absent: true). */
  defaultLocalCidrAny?: boolean;
  /** firewall.inbound_action / outbound_action (absent: drop); travels with the rules so a reload applies it. */
  inboundAction?: FirewallAction;
  outboundAction?: FirewallAction;
}

export interface RoutineSetup {
  routine: number;
  routines: number;
  cipher: CipherName;
  /** Our own VPN IP and network, plus our cert's unsafe subnets (the firewall's local_ip check). */
  vpnIp: number;
  vpnMask: number;
  localSubnets: Array<{ ip: number; mask: number }>;
  /** Unsafe routes: destination network -> VPN IP of the gateway. */
  unsafeRoutes: Array<{ ip: number; mask: number; via: number }>;
  /**
   * The IPv6 overlay (v2 certificates): our IPv6 VPN networks with our address as host bits ('fd00::1/64'), our
   * IPv6 unsafe networks, and the IPv6 unsafe routes (gateway named by its IPv4 VPN IP, the key of every tunnel).
   */
  vpnNetworks6: string[];
  localSubnets6: string[];
  unsafeRoutes6: Array<{ route: string; via: number }>;
  insideKind: 'tun' | 'disabled' | 'userspace';
  /** tun.keep_warm: the worker keeps its packet path hot between slow packets (keep-warm.ts). */
  keepWarm: boolean;
  mtu: number;
  sendRecvError: 'always' | 'never' | 'private';
  dropLocalBroadcast: boolean;
  dropMulticast: boolean;
  firewall: FirewallUpdate;
  /** Every tunnel that exists when the routine starts (a respawned routine sees them at once). */
  tunnels: TunnelInstall[];
  /** The established relay indexes (relay-manager.ts). */
  relays: RelayRoute[];
  logLevel: string;
  logFormat: 'text' | 'json';
}

export type SupervisorToRoutine =
  | { type: 'setup'; setup: RoutineSetup; capacities: RegionCapacities }
  | { type: 'tunnelUp'; tunnel: TunnelInstall }
  | { type: 'tunnelDown'; localIndex: number }
  /** From the routine's own main thread: datagrams it shed because its channel to the supervisor was backed up. */
  | { type: 'ipcShed'; count: number }
  /** `via` set: the tunnel is relayed (remote 0:0), e.g. after a roam the supervisor refused; the routine re-relays it. */
  | { type: 'remoteChanged'; localIndex: number; remoteIp: number; remotePort: number; via?: ViaRelay }
  | { type: 'firewall'; firewall: FirewallUpdate }
  | { type: 'relays'; relays: RelayRoute[] }
  /** listen.send_recv_error changed on reload (Go 1.6.1 reloadSendRecvError); a respawned routine reads its setup. */
  | { type: 'sendRecvError'; sendRecvError: RoutineSetup['sendRecvError'] }
  | { type: 'shutdown' };

/** A packet the routine hands up: handshakes and recvError raw, decrypted meta packets as plaintext. */
export interface MetaPacket {
  type: number;
  subtype: number;
  /** Our local index the packet was addressed to (0 for stage-1 handshakes). */
  localIndex: number;
  remoteIndex: number;
  counter: number;
  fromIp: number;
  fromPort: number;
  /** The whole datagram for handshakes/recvError; the decrypted payload for encrypted types. */
  data: Uint8Array;
  /** It came inside a relay frame (fromIp/fromPort are then the relay host's): answers go back the same way. */
  via?: ViaRelay;
}

export type RoutineToSupervisor =
  | { type: 'ready'; routine: number }
  | { type: 'meta'; routine: number; packet: MetaPacket }
  | { type: 'needTunnel'; routine: number; vpnIp: number }
  /** An IPv6 packet for a VPN address of no host this routine knows (first contact by that address). */
  | { type: 'needTunnel6'; routine: number; vpnAddr6: string }
  | { type: 'roamed'; routine: number; localIndex: number; remoteIp: number; remotePort: number }
  | { type: 'log'; level: string; msg: string; fields: Record<string, unknown> };
