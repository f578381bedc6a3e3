/**
 * Fuzz: the lighthouse meta message decoder (src/shared/protocol/lighthouse.ts), the plaintext of type-3 packets
 * from any peer with a tunnel. Bad input must end in ProtobufError; accepted input must re-encode canonically.
 */
import t from 'tap';
import { ProtobufError } from '../../src/shared/protobuf';
import {
  decodeMeta,
  decodeMetaDetails,
  encodeMeta,
  encodeMetaDetails,
  hiLoToIp6,
  ip6ToHiLo,
  MAX_LIST_ENTRIES,
  MetaType,
  metaTypeName,
  type NebulaMeta,
} from '../../src/shared/protocol/lighthouse';
import { metaDetailsFor, metaRelays, metaSubject } from '../../src/shared/protocol/meta-version';
import { fuzzRun, nextInput, Rng, Tally } from './fuzz-helpers';

const BASE_COUNT = 4000;

const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isU64 = (v: bigint): boolean => v >= 0n && v < 1n << 64n;

function reencode(m: NebulaMeta): Buffer {
  return encodeMeta({ type: m.type, details: m.details });
}

function seedMessages(rng: Rng): Buffer[] {
  const out: Buffer[] = [];
  for (const type of Object.values(MetaType)) {
    out.push(encodeMeta({ type }));
    out.push(
      encodeMeta({
        type,
        details: {
          vpnIp: rng.u32(),
          ip4AndPorts: Array.from({ length: rng.int(4) }, () => ({ ip: rng.u32(), port: rng.int(65536) })),
          counter: rng.int(3),
          ip6AndPorts: Array.from({ length: rng.int(3) }, () => ({ ...ip6ToHiLo(rng.bytes(16)), port: rng.int(65536) })),
          relayVpnIps: Array.from({ length: rng.int(4) }, () => rng.u32()),
        },
      }),
    );
  }
  // The v2 generation (VpnAddr=6, RelayVpnAddrs=7), as Go 1.11 writes it on v2 tunnels.
  out.push(
    encodeMeta({
      type: MetaType.HostQueryReply,
      details: metaDetailsFor(2, {
        vpnIp: rng.u32(),
        ip4AndPorts: [{ ip: rng.u32(), port: rng.int(65536) }],
        ip6AndPorts: [{ ...ip6ToHiLo(rng.bytes(16)), port: rng.int(65536) }],
        relays: [rng.u32(), rng.u32()],
      }),
    }),
  );
  // Zero-valued repeated entries (written as empty sub-messages), a newer type, and v1.10's VpnAddr=6 field.
  out.push(encodeMeta({ type: 11, details: { vpnIp: 0, ip4AndPorts: [{ ip: 0, port: 0 }], counter: 0, ip6AndPorts: [{ hi: 0n, lo: 0n, port: 0 }], relayVpnIps: [0] } }));
  out.push(Buffer.concat([encodeMeta({ type: MetaType.HostQuery }), Buffer.from([0x12, 0x04, 0x32, 0x02, 0x08, 0x01])]));
  return out;
}

t.test('decodeMeta on mutated and random messages', async (t) => {
  const run = fuzzRun(t, 'lighthouse', BASE_COUNT);
  const { rng } = run;
  const seeds = seedMessages(rng);
  const s0 = decodeMeta(seeds[3]!);
  t.equal(s0.type, MetaType.HostQuery, 'seed type survives');
  t.ok(s0.details, 'seed details survive');

  const tally = new Tally('decodeMeta', [ProtobufError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true, randomMax: 96 });
    const r = tally.run(input, () => decodeMeta(input));
    if (!r.ok) continue;
    const m = r.value;
    tally.check(isU32(m.type), `type ${m.type}`, input);
    tally.mustNotThrow(input, 'metaTypeName', () => metaTypeName(m.type));
    const d = m.details;
    if (d) {
      // Every list entry costs at least one input byte (a sub-message tag or a packed varint byte).
      const entries = d.ip4AndPorts.length + d.ip6AndPorts.length + d.relayVpnIps.length + (d.relayVpnAddrs?.length ?? 0);
      tally.check(entries <= input.length, `${entries} entries from ${input.length} bytes`, input);
      tally.check(isU32(d.vpnIp) && isU32(d.counter), 'vpnIp/counter are uint32', input);
      tally.check(d.ip4AndPorts.every((a) => isU32(a.ip) && isU32(a.port)), 'ip4AndPorts are uint32', input);
      tally.check(d.ip6AndPorts.every((a) => isU64(a.hi) && isU64(a.lo) && isU32(a.port)), 'ip6AndPorts in range', input);
      tally.check(d.relayVpnIps.every(isU32), 'relayVpnIps are uint32', input);
      const addrs = [...(d.vpnAddr ? [d.vpnAddr] : []), ...(d.relayVpnAddrs ?? [])];
      tally.check(addrs.every((a) => isU64(a.hi) && isU64(a.lo)), 'Addr halves are uint64', input);
      const lists = [d.ip4AndPorts, d.ip6AndPorts, d.relayVpnIps, d.relayVpnAddrs ?? []];
      tally.check(lists.every((l) => l.length <= MAX_LIST_ENTRIES), 'every list within MAX_LIST_ENTRIES', input);
      tally.mustNotThrow(input, 'metaSubject / metaRelays', () => [metaSubject(d), metaRelays(d)]);
      tally.mustNotThrow(input, 'hiLoToIp6', () => d.ip6AndPorts.map((a) => hiLoToIp6(a.hi, a.lo)));
    }
    const canon = reencode(m);
    const again = tally.mustNotThrow(input, 're-decoding the canonical encoding', () => decodeMeta(canon));
    if (again) {
      tally.same(again, m, 'decode(encode(decode(x)))', input);
      tally.same(reencode(again), canon, 'canonical encoding is stable', input);
    }
  }
  tally.assert(t, 200);

  // The details message on its own.
  const inner = new Tally('decodeMetaDetails', [ProtobufError]);
  const innerSeeds = seeds.map((s) => decodeMeta(s).details).filter((d) => d !== undefined).map((d) => encodeMetaDetails(d));
  for (let i = 0; i < run.count / 4; i++) {
    const input = nextInput(rng, innerSeeds, { corpus: innerSeeds, proto: true });
    const r = inner.run(input, () => decodeMetaDetails(input));
    if (!r.ok) continue;
    const again = inner.mustNotThrow(input, 're-decoding', () => decodeMetaDetails(encodeMetaDetails(r.value)));
    if (again) inner.same(again, r.value, 'details round trip', input);
  }
  inner.assert(t, 50);
});
