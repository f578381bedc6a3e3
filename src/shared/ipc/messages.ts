/**
 * Supervisor <-> routine IPC. One discriminated union per direction; Node's 'advanced' serialization carries
 * Buffers. Only control-plane traffic goes here: keys and peer identity when a tunnel is installed, firewall
 * rules, meta packets the routine cannot handle alone. Mutable hot state (send counters, replay windows,
 * liveness marks, counters) lives in the shared-memory region instead.
 */
import type { CipherName } from '../crypto/types';
import type { FirewallRule } from '../firewall/rule';
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
  insideKind: 'tun' | 'disabled' | 'userspace';
  mtu: number;
  sendRecvError: 'always' | 'never' | 'private';
  dropLocalBroadcast: boolean;
  dropMulticast: boolean;
  firewall: FirewallUpdate;
  /** Every tunnel that exists when the routine starts (a respawned routine sees them at once). */
  tunnels: TunnelInstall[];
  logLevel: string;
  logFormat: 'text' | 'json';
}

export type SupervisorToRoutine =
  | { type: 'setup'; setup: RoutineSetup; capacities: RegionCapacities }
  | { type: 'tunnelUp'; tunnel: TunnelInstall }
  | { type: 'tunnelDown'; localIndex: number }
  | { type: 'remoteChanged'; localIndex: number; remoteIp: number; remotePort: number }
  | { type: 'firewall'; firewall: FirewallUpdate }
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
}

export type RoutineToSupervisor =
  | { type: 'ready'; routine: number }
  | { type: 'meta'; routine: number; packet: MetaPacket }
  | { type: 'needTunnel'; routine: number; vpnIp: number }
  | { type: 'roamed'; routine: number; localIndex: number; remoteIp: number; remotePort: number }
  | { type: 'log'; level: string; msg: string; fields: Record<string, unknown> };
