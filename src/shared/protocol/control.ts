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
 */
import type { CertVersion } from '../pki/certificate';
import { asBytes, asUint32, ProtoReader, ProtoWriter } from '../protobuf';
import { addrOfIPv4, decodeAddr, encodeAddr, formatAddr, ipv4OfAddr, type VpnAddr } from './vpn-addr';

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
    m.relayToAddr = addrOfIPv4(c.toVpnIp);
    m.relayFromAddr = addrOfIPv4(c.fromVpnIp);
  }
  return m;
}

export type RelayEndpoints = { ok: true; version: CertVersion; control: RelayControl } | { ok: false; reason: string };

/**
 * Go's HandleControlMsg reading: v1 when either old field is non-zero (the other may then be 0.0.0.0), else v2 with
 * both Addrs required; an IPv6 VPN address is refused (the nebula-ts overlay is IPv4).
 */
export function relayEndpoints(m: NebulaControl): RelayEndpoints {
  const base = { type: m.type, initiatorRelayIndex: m.initiatorRelayIndex, responderRelayIndex: m.responderRelayIndex };
  if (m.relayFromIp >>> 0 !== 0 || m.relayToIp >>> 0 !== 0) {
    return { ok: true, version: 1, control: { ...base, fromVpnIp: m.relayFromIp >>> 0, toVpnIp: m.relayToIp >>> 0 } };
  }
  if (!m.relayFromAddr) return { ok: false, reason: 'Control message received with nil RelayFromAddr' };
  if (!m.relayToAddr) return { ok: false, reason: 'Control message received with nil RelayToAddr' };
  const from = ipv4OfAddr(m.relayFromAddr);
  const to = ipv4OfAddr(m.relayToAddr);
  if (from === undefined || to === undefined) {
    return { ok: false, reason: `IPv6 VPN address in a relay message (${formatAddr(m.relayFromAddr)} -> ${formatAddr(m.relayToAddr)}): the nebula-ts overlay is IPv4` };
  }
  return { ok: true, version: 2, control: { ...base, fromVpnIp: from, toVpnIp: to } };
}
