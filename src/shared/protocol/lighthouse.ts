/**
 * The lighthouse message `NebulaMeta` (nebula-spec §5.1), the plaintext of type-3 packets, in both generations of
 * nebula.proto (1.6.1's names first, 1.10+'s in brackets):
 *
 *   NebulaMeta        { Type=1 enum, Details=2 NebulaMetaDetails }
 *   NebulaMetaDetails { VpnIp=1 uint32 [OldVpnAddr], Ip4AndPorts=2 repeated Ip4AndPort [V4AddrPorts], counter=3 uint32,
 *                       Ip6AndPorts=4 repeated Ip6AndPort [V6AddrPorts], RelayVpnIp=5 repeated uint32 (packed)
 *                       [OldRelayVpnAddrs], 1.10+: VpnAddr=6 Addr, RelayVpnAddrs=7 repeated Addr }
 *   Ip4AndPort        { Ip=1 uint32, Port=2 uint32 }
 *   Ip6AndPort        { Hi=1 uint64, Lo=2 uint64, Port=3 uint32 }
 *   Addr              { Hi=1 uint64, Lo=2 uint64 }  (vpn-addr.ts)
 *
 * IPv4 addresses are uint32 numbers read big-endian; an IPv6 address is two uint64 halves (first 8 bytes, last 8
 * bytes, each big-endian). Which VPN-address fields a message uses depends on the certificate version of the tunnel
 * it travels (meta-version.ts); this codec reads and writes whatever is there, fields in ascending order as Go's
 * gogoproto does. Unknown message types decode as their number; unknown fields are skipped. Malformed input (and a
 * list longer than MAX_LIST_ENTRIES) throws ProtobufError.
 */
import { asBytes, asUint32, ProtobufError, ProtoReader, ProtoWriter, readPackedUint32 } from '../protobuf';
import { asUint64, decodeAddr, encodeAddr, type VpnAddr } from './vpn-addr';

/**
 * The most entries one repeated field may hold. Go caps what it keeps at MaxRemotes (10) per owner and sends at most
 * a lighthouse's learned + reported addresses (11 per family) or a host's local addresses; a longer list is refused
 * whole, so a peer cannot make us walk thousands of entries per datagram.
 */
export const MAX_LIST_ENTRIES = 128;

export const MetaType = {
  None: 0,
  HostQuery: 1,
  HostQueryReply: 2,
  HostUpdateNotification: 3,
  HostMovedNotification: 4,
  HostPunchNotification: 5,
  HostWhoami: 6,
  HostWhoamiReply: 7,
  PathCheck: 8,
  PathCheckReply: 9,
  /** v1.7+; 1.6.1 neither sends nor understands it. */
  HostUpdateNotificationAck: 10,
} as const;

const META_TYPE_NAMES: readonly string[] = [
  'None',
  'HostQuery',
  'HostQueryReply',
  'HostUpdateNotification',
  'HostMovedNotification',
  'HostPunchNotification',
  'HostWhoami',
  'HostWhoamiReply',
  'PathCheck',
  'PathCheckReply',
  'HostUpdateNotificationAck',
];

export function metaTypeName(type: number): string {
  return META_TYPE_NAMES[type] ?? `unknown(${type})`;
}

export interface Ip4AndPort {
  ip: number;
  port: number;
}

export interface Ip6AndPort {
  hi: bigint;
  lo: bigint;
  port: number;
}

export interface NebulaMetaDetails {
  /** VpnIp / OldVpnAddr (field 1): what v1 tunnels use; 0 when absent. */
  vpnIp: number;
  ip4AndPorts: Ip4AndPort[];
  counter: number;
  ip6AndPorts: Ip6AndPort[];
  /** RelayVpnIp / OldRelayVpnAddrs (field 5): v1 tunnels. */
  relayVpnIps: number[];
  /** VpnAddr (field 6, 1.10+): v2 tunnels; present only when the message carried it. */
  vpnAddr?: VpnAddr;
  /** RelayVpnAddrs (field 7, 1.10+): v2 tunnels; present only when the message carried some. */
  relayVpnAddrs?: VpnAddr[];
}

export interface NebulaMeta {
  /** A MetaType value, or any other number received from a newer peer. */
  type: number;
  /** Absent when the message carried no field 2. */
  details: NebulaMetaDetails | undefined;
}

export function emptyMetaDetails(): NebulaMetaDetails {
  return { vpnIp: 0, ip4AndPorts: [], counter: 0, ip6AndPorts: [], relayVpnIps: [] };
}

/** The 16 raw bytes of an IPv6 address → the (hi, lo) pair used on the wire. */
export function ip6ToHiLo(addr: Uint8Array): { hi: bigint; lo: bigint } {
  if (addr.length !== 16) throw new RangeError('IPv6 address must be 16 bytes');
  const b = Buffer.from(addr.buffer, addr.byteOffset, 16);
  return { hi: b.readBigUInt64BE(0), lo: b.readBigUInt64BE(8) };
}

export function hiLoToIp6(hi: bigint, lo: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(BigInt.asUintN(64, hi), 0);
  b.writeBigUInt64BE(BigInt.asUintN(64, lo), 8);
  return b;
}

export function encodeMetaDetails(d: NebulaMetaDetails): Buffer {
  const w = new ProtoWriter().uint(1, d.vpnIp >>> 0);
  // Repeated sub-messages are written even when empty, as Go does.
  for (const a of d.ip4AndPorts) w.message(2, new ProtoWriter().uint(1, a.ip >>> 0).uint(2, a.port >>> 0).finish());
  w.uint(3, d.counter >>> 0);
  for (const a of d.ip6AndPorts) {
    w.message(4, new ProtoWriter().uint(1, a.hi).uint(2, a.lo).uint(3, a.port >>> 0).finish());
  }
  w.packedUint32(5, d.relayVpnIps);
  if (d.vpnAddr) w.message(6, encodeAddr(d.vpnAddr));
  for (const a of d.relayVpnAddrs ?? []) w.message(7, encodeAddr(a));
  return w.finish();
}

export function encodeMeta(m: { type: number; details?: NebulaMetaDetails }): Buffer {
  const w = new ProtoWriter().uint(1, m.type);
  if (m.details) w.message(2, encodeMetaDetails(m.details));
  return w.finish();
}

function decodeIp4AndPort(buf: Buffer): Ip4AndPort {
  const out: Ip4AndPort = { ip: 0, port: 0 };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    if (f.field === 1) out.ip = asUint32(f);
    else if (f.field === 2) out.port = asUint32(f);
  }
  return out;
}

function decodeIp6AndPort(buf: Buffer): Ip6AndPort {
  const out: Ip6AndPort = { hi: 0n, lo: 0n, port: 0 };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    if (f.field === 1) out.hi = asUint64(f);
    else if (f.field === 2) out.lo = asUint64(f);
    else if (f.field === 3) out.port = asUint32(f);
  }
  return out;
}

/** Appends to a repeated field, refusing the message once the list passes MAX_LIST_ENTRIES. */
function pushBounded<T>(list: T[], name: string, ...items: T[]): void {
  if (list.length + items.length > MAX_LIST_ENTRIES) throw new ProtobufError(`${name}: more than ${MAX_LIST_ENTRIES} entries`);
  list.push(...items);
}

export function decodeMetaDetails(buf: Buffer): NebulaMetaDetails {
  const d = emptyMetaDetails();
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    switch (f.field) {
      case 1:
        d.vpnIp = asUint32(f);
        break;
      case 2:
        pushBounded(d.ip4AndPorts, 'V4AddrPorts', decodeIp4AndPort(asBytes(f)));
        break;
      case 3:
        d.counter = asUint32(f);
        break;
      case 4:
        pushBounded(d.ip6AndPorts, 'V6AddrPorts', decodeIp6AndPort(asBytes(f)));
        break;
      case 5:
        // Packed (what Go writes) or, legally in proto3, one unpacked element per occurrence.
        pushBounded(d.relayVpnIps, 'OldRelayVpnAddrs', ...readPackedUint32(f));
        break;
      case 6:
        // A repeated occurrence of a singular message field merges into the first, as in Go (last value per field).
        d.vpnAddr = decodeAddr(asBytes(f), d.vpnAddr);
        break;
      case 7:
        pushBounded((d.relayVpnAddrs ??= []), 'RelayVpnAddrs', decodeAddr(asBytes(f)));
        break;
      default:
        break;
    }
  }
  return d;
}

export function decodeMeta(buf: Buffer): NebulaMeta {
  const m: NebulaMeta = { type: 0, details: undefined };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    if (f.field === 1) m.type = asUint32(f);
    else if (f.field === 2) m.details = decodeMetaDetails(asBytes(f));
  }
  return m;
}
