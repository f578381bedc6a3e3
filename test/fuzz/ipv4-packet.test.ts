/**
 * Fuzz: the IPv4 parser the firewall runs on every decrypted inbound packet and every packet read from the inside
 * (src/shared/firewall/packet.ts). It answers with a boolean and must never throw; what it accepts must match an
 * independent reading of the header, depend only on the first `len` bytes, and be the same flow in both
 * directions.
 */
import t from 'tap';
import { newFirewallPacket, parseIPv4Packet, type FirewallPacket } from '../../src/shared/firewall/packet';
import { BoolTally, fuzzRun, nextInput, Rng } from './fuzz-helpers';

const BASE_COUNT = 5000;

function ipv4(rng: Rng, proto: number, ihlWords: number, fragOffset: number, payload: number): Buffer {
  const ihl = ihlWords * 4;
  const b = Buffer.alloc(ihl + payload);
  b[0] = 0x40 | ihlWords;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(rng.chance(0.5) ? 0x4000 | fragOffset : 0x2000 | fragOffset, 6); // DF or MF flag + offset
  b[8] = 64;
  b[9] = proto;
  b.writeUInt32BE(rng.u32(), 12);
  b.writeUInt32BE(rng.u32(), 16);
  for (let i = 20; i < b.length; i++) b[i] = rng.u32() & 0xff;
  return b;
}

/** Straightforward reading of RFC 791, written independently of the parser under test. */
function reference(buf: Buffer, len: number, incoming: boolean): FirewallPacket | undefined {
  const n = Math.min(len, buf.length);
  if (n < 20 || buf[0]! >> 4 !== 4) return undefined;
  const ihl = (buf[0]! & 0xf) * 4;
  if (ihl < 20) return undefined;
  const fragment = (buf.readUInt16BE(6) & 0x1fff) !== 0;
  const proto = buf[9]!;
  const noPorts = fragment || proto === 1;
  if (n < ihl + (noPorts ? 0 : 4)) return undefined;
  const src = buf.readUInt32BE(12);
  const dst = buf.readUInt32BE(16);
  const sp = noPorts ? 0 : buf.readUInt16BE(ihl);
  const dp = noPorts ? 0 : buf.readUInt16BE(ihl + 2);
  return incoming
    ? { version: 4, proto, localIp: dst, remoteIp: src, localPort: dp, remotePort: sp, fragment, local6: new Uint32Array(4), remote6: new Uint32Array(4) }
    : { version: 4, proto, localIp: src, remoteIp: dst, localPort: sp, remotePort: dp, fragment, local6: new Uint32Array(4), remote6: new Uint32Array(4) };
}

t.test('parseIPv4Packet on mutated and random packets', async (t) => {
  const run = fuzzRun(t, 'ipv4-packet', BASE_COUNT);
  const { rng } = run;
  const seeds: Buffer[] = [];
  for (const proto of [1, 6, 17, 0, 47, 255]) {
    for (const ihlWords of [5, 6, 15]) {
      seeds.push(ipv4(rng, proto, ihlWords, 0, rng.pick([0, 4, 8, 40])));
      seeds.push(ipv4(rng, proto, ihlWords, rng.range(1, 0x1fff), 8));
    }
  }
  // IP-aware mutations: version/IHL nibbles, fragment offset, protocol.
  const extra = [
    (r: Rng, b: Buffer): Buffer => {
      if (b.length === 0) return b;
      const o = Buffer.from(b);
      o[0] = (r.pick([4, 4, 6, 0, 15]) << 4) | r.int(16);
      return o;
    },
    (r: Rng, b: Buffer): Buffer => {
      if (b.length < 8) return b;
      const o = Buffer.from(b);
      o.writeUInt16BE(r.pick([0, 1, 0x1fff, 0x2000, 0x4000, 0xffff, r.int(0x10000)]), 6);
      return o;
    },
    (r: Rng, b: Buffer): Buffer => {
      if (b.length < 10) return b;
      const o = Buffer.from(b);
      o[9] = r.pick([1, 6, 17, 0, 58, 255]);
      return o;
    },
  ];
  const tally = new BoolTally('parseIPv4Packet');
  let fragments = 0;
  let withPorts = 0;
  for (let i = 0; i < run.count; i++) {
    const buf = nextInput(rng, seeds, { corpus: seeds, extra, randomMax: 80 });
    // Mostly the real length; sometimes a shorter or (never in practice, but tolerated) longer or negative one.
    const len = rng.chance(0.7) ? buf.length : rng.range(-2, buf.length + 8);
    const incoming = rng.chance(0.5);
    const out = newFirewallPacket();
    const ok = tally.runBool(buf, () => parseIPv4Packet(buf, len, incoming, out));
    if (ok === undefined) continue;
    const want = reference(buf, len, incoming);
    tally.check(ok === (want !== undefined), `returned ${ok} for len ${len}`, buf);
    if (!ok || !want) continue;
    tally.same(out, want, 'parsed tuple', buf);
    if (out.fragment) fragments++;
    if (out.localPort !== 0 || out.remotePort !== 0) withPorts++;

    // Only the first `len` bytes count: whatever follows them (stale bytes of a reused buffer) changes nothing.
    const n = Math.min(len, buf.length);
    const noisy = Buffer.concat([buf.subarray(0, n), rng.bytes(rng.range(1, 64))]);
    const out2 = newFirewallPacket();
    tally.check(parseIPv4Packet(noisy, n, incoming, out2), 'accepted with trailing noise', buf);
    tally.same(out2, out, 'bytes past len are ignored', buf);

    // Both directions describe the same flow, mirrored.
    const rev = newFirewallPacket();
    tally.check(parseIPv4Packet(buf, len, !incoming, rev), 'accepted in the other direction', buf);
    tally.same(
      [rev.localIp, rev.remoteIp, rev.localPort, rev.remotePort, rev.proto, rev.fragment],
      [out.remoteIp, out.localIp, out.remotePort, out.localPort, out.proto, out.fragment],
      'directions mirror each other',
      buf,
    );
  }
  tally.assert(t, 200);
  t.ok(fragments > 0 && withPorts > 0, `fragments (${fragments}) and port-carrying packets (${withPorts}) both parsed`);
});
