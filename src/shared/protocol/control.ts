/**
 * `NebulaControl` (nebula-spec §5.8), the plaintext of type-6 packets, encrypted on the tunnel to a relay, in both
 * generations of nebula.proto (1.6.1's names first, 1.10+'s in brackets):
 *
 *   NebulaControl { Type=1 enum (None=0, CreateRelayRequest=1, CreateRelayResponse=2),
 *                   InitiatorRelayIndex=2 uint32, ResponderRelayIndex=3 uint32,
 *                   RelayToIp=4 uint32 [OldRelayToAddr], RelayFromIp=5 uint32 [OldRelayFromAddr],
 *                   1.10+: RelayToAddr=6 Addr, RelayFromAddr=7 Addr }
 *
 * proto3: zero fields are not written, a set Addr is (as Go writes them), in ascending order. Which pair a message
 * uses follows the certificate version of the tunnel it travels (Go 1.10+'s relay_manager.go): v1 the uint32 pair,
 * so 1.6.1 relays and peers understand it; v2 the Addr pair. Go reads a message as v1 when either old field is
 * non-zero, else as v2, which must then carry both Addrs (`relayEndpoints`). Malformed input throws ProtobufError.
 *
 * A v2 message may name an end by any address of its certificate (Go 1.11 asks a relay for the address it was
 * handshaking with, an IPv6 one when it pinged that): the reader maps each Addr to the host's IPv4 VPN IP with the
 * resolver it is given and keeps the Addr as named, so what is sent on about that relay names the end as the
 * initiator did (Go echoes RelayToAddr back along the chain).
 */
import type { CertVersion } from '../pki/certificate';
import { asBytes, asUint32, ProtoReader, ProtoWriter } from '../protobuf';
import { addrKey, addrOfIPv4, decodeAddr, encodeAddr, formatAddr, ipv4OfAddr, type VpnAddr } from './vpn-addr';

export const ControlType = { None: 0, CreateRelayRequest: 1, CreateRelayResponse: 2 } as const;

/** The message as it is on the wire: every field of both generations. */
export interface NebulaControl {
  type: number;
  initiatorRelayIndex: number;
  responderRelayIndex: number;
  relayToIp: number;
  relayFromIp: number;
  /** 1.10+, v2 tunnels: present only when the message carried it. */
  relayToAddr?: VpnAddr;
  relayFromAddr?: VpnAddr;
}

/** A relay message as the relay manager thinks of it: IPv4 VPN addresses, whatever the generation. */
export interface RelayControl {
  type: number;
  initiatorRelayIndex: number;
  responderRelayIndex: number;
  fromVpnIp: number;
  toVpnIp: number;
  /** How a v2 message named an end, when not by the mapped form of its VPN IP (an IPv6 VPN address): written as is. */
  fromAddr?: VpnAddr;
  toAddr?: VpnAddr;
}

export function encodeControl(m: NebulaControl): Buffer {
  const w = new ProtoWriter()
    .uint(1, m.type)
    .uint(2, m.initiatorRelayIndex >>> 0)
    .uint(3, m.responderRelayIndex >>> 0)
    .uint(4, m.relayToIp >>> 0)
    .uint(5, m.relayFromIp >>> 0);
  if (m.relayToAddr) w.message(6, encodeAddr(m.relayToAddr));
  if (m.relayFromAddr) w.message(7, encodeAddr(m.relayFromAddr));
  return w.finish();
}

export function decodeControl(buf: Buffer): NebulaControl {
  const m: NebulaControl = { type: 0, initiatorRelayIndex: 0, responderRelayIndex: 0, relayToIp: 0, relayFromIp: 0 };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    switch (f.field) {
      case 1:
        m.type = asUint32(f);
        break;
      case 2:
        m.initiatorRelayIndex = asUint32(f);
        break;
      case 3:
        m.responderRelayIndex = asUint32(f);
        break;
      case 4:
        m.relayToIp = asUint32(f);
        break;
      case 5:
        m.relayFromIp = asUint32(f);
        break;
      case 6:
        m.relayToAddr = decodeAddr(asBytes(f));
        break;
      case 7:
        m.relayFromAddr = decodeAddr(asBytes(f));
        break;
      default:
        break;
    }
  }
  return m;
}

/** The wire message for a tunnel of `version`: v1 the uint32 pair, v2 the Addr pair (Go's StartRelays et al.). */
export function controlFor(version: CertVersion, c: RelayControl): NebulaControl {
  const m: NebulaControl = { type: c.type, initiatorRelayIndex: c.initiatorRelayIndex, responderRelayIndex: c.responderRelayIndex, relayToIp: 0, relayFromIp: 0 };
  if (version === 1) {
    m.relayToIp = c.toVpnIp >>> 0;
    m.relayFromIp = c.fromVpnIp >>> 0;
  } else {
    m.relayToAddr = c.toAddr ? { ...c.toAddr } : addrOfIPv4(c.toVpnIp);
    m.relayFromAddr = c.fromAddr ? { ...c.fromAddr } : addrOfIPv4(c.fromVpnIp);
  }
  return m;
}

export type RelayEndpoints = { ok: true; version: CertVersion; control: RelayControl } | { ok: false; reason: string };

/**
 * Go's HandleControlMsg reading: v1 when either old field is non-zero (the other may then be 0.0.0.0), else v2 with
 * both Addrs required, each mapped to a VPN IP by `vpnIpOf` (by default only IPv4 addresses map); an address it
 * cannot map (an IPv6 VPN address of no host we know) refuses the message.
 */
export function relayEndpoints(m: NebulaControl, vpnIpOf: (a: VpnAddr) => number | undefined = ipv4OfAddr): RelayEndpoints {
  const base = { type: m.type, initiatorRelayIndex: m.initiatorRelayIndex, responderRelayIndex: m.responderRelayIndex };
  if (m.relayFromIp >>> 0 !== 0 || m.relayToIp >>> 0 !== 0) {
    return { ok: true, version: 1, control: { ...base, fromVpnIp: m.relayFromIp >>> 0, toVpnIp: m.relayToIp >>> 0 } };
  }
  if (!m.relayFromAddr) return { ok: false, reason: 'Control message received with nil RelayFromAddr' };
  if (!m.relayToAddr) return { ok: false, reason: 'Control message received with nil RelayToAddr' };
  const from = vpnIpOf(m.relayFromAddr);
  const to = vpnIpOf(m.relayToAddr);
  if (from === undefined || to === undefined) {
    return { ok: false, reason: `IPv6 VPN address in a relay message (${formatAddr(m.relayFromAddr)} -> ${formatAddr(m.relayToAddr)}) names no host we know` };
  }
  const control: RelayControl = { ...base, fromVpnIp: from, toVpnIp: to };
  if (addrKey(m.relayFromAddr) !== addrKey(addrOfIPv4(from))) control.fromAddr = { ...m.relayFromAddr };
  if (addrKey(m.relayToAddr) !== addrKey(addrOfIPv4(to))) control.toAddr = { ...m.relayToAddr };
  return { ok: true, version: 2, control };
}
