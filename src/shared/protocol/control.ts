/**
 * `NebulaControl` (nebula-spec §5.8), the plaintext of type-6 packets, encrypted on the tunnel to a relay:
 *
 *   NebulaControl { Type=1 enum (None=0, CreateRelayRequest=1, CreateRelayResponse=2),
 *                   InitiatorRelayIndex=2 uint32, ResponderRelayIndex=3 uint32, RelayToIp=4 uint32, RelayFromIp=5 uint32 }
 *
 * proto3: zero fields are not written (as Go writes them). v1.10+ adds RelayToAddr=6 / RelayFromAddr=7 (Addr
 * messages) beside the old fields, which it still fills for IPv4: unknown fields are skipped. Malformed input throws
 * ProtobufError.
 */
import { asUint32, ProtoReader, ProtoWriter } from '../protobuf';

export const ControlType = { None: 0, CreateRelayRequest: 1, CreateRelayResponse: 2 } as const;

export interface NebulaControl {
  type: number;
  initiatorRelayIndex: number;
  responderRelayIndex: number;
  relayToIp: number;
  relayFromIp: number;
}

export function encodeControl(m: NebulaControl): Buffer {
  return new ProtoWriter()
    .uint(1, m.type)
    .uint(2, m.initiatorRelayIndex >>> 0)
    .uint(3, m.responderRelayIndex >>> 0)
    .uint(4, m.relayToIp >>> 0)
    .uint(5, m.relayFromIp >>> 0)
    .finish();
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
      default:
        break;
    }
  }
  return m;
}
