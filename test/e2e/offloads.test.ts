/**
 * `tun.offloads: true` end to end: two nebula-ts nodes with offloads and a Go 1.6.1 node. 20 MB TCP transfers
 * nebula-ts -> nebula-ts and nebula-ts -> Go arrive byte-identical, the sender's tun really handed over
 * super-packets (`routine.inside.rx_superpackets`, read through `status`, and the device shows vnet_hdr and our
 * gso_max_segs), none was refused, and the nebula-ts receiver wrote merged segments back as super-packets
 * (`routine.inside.tx_superpackets`) that its kernel took; between the two nebula-ts nodes the underlay carried
 * UDP GSO sends and GRO receives (`routine.outside.tx_gso_messages`, `rx_gro_buffers`). A fourth node whose `ip`
 * refuses the offload setup falls back to plain packets with a warning and still carries traffic.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { prereqs } from '../helpers/prereq';
import { TUN_GSO_MAX_SEGS } from '../../src/shared/native/virtio-net';
import { jsonLines, linesMatching, newMesh, spawnFixture, status, tcpTransfer } from './helpers';

const IP = { t1: '192.168.100.1', t2: '192.168.100.2', g1: '192.168.100.3', t3: '192.168.100.4' } as const;
const TRANSFER_BYTES = 20 * 1024 * 1024;
const OFFLOADS = { tun: { offloads: true } };

/** A directory with an `ip` that refuses `gso_max_segs` and runs the real one for everything else. */
function refusingIpDir(t: { teardown(fn: () => void): void }): string {
  const realIp = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-ip-stub-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = `#!/bin/sh\nfor a in "$@"; do [ "$a" = gso_max_segs ] && { echo "Error: refused by the test" >&2; exit 2; }; done\nexec ${realIp} "$@"\n`;
  writeFileSync(path.join(dir, 'ip'), script);
  chmodSync(path.join(dir, 'ip'), 0o755);
  return dir;
}

t.test('tun.offloads: super-packets split and carried to nebula-ts and to Go 1.6.1, byte-identical', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(120_000);
  const mesh = await newMesh(t, { cipher: 'aes' });
  const stubDir = refusingIpDir(t);
  // Two routines: a multi-queue tun, every queue opened with IFF_VNET_HDR.
  await mesh.add({ name: 't1', kind: 'ts', overlayIp: IP.t1, config: OFFLOADS, routines: 2 });
  await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2, config: OFFLOADS });
  await mesh.add({ name: 'g1', kind: 'go', overlayIp: IP.g1 });
  await mesh.add({ name: 't3', kind: 'ts', overlayIp: IP.t3, config: OFFLOADS, env: { PATH: `${stubDir}:${process.env.PATH ?? ''}` } });
  mesh.writeConfigs();
  await Promise.all(['t1', 't2', 'g1', 't3'].map((n) => mesh.start(n)));

  t.equal(linesMatching(mesh, 't1', /msg="tun offloads enabled"/).length, 1, 't1 logs offloads enabled');
  const link = await mesh.exec('t1', 'ip', ['-d', 'link', 'show', 'dev', 'nebula1']);
  t.match(link, /vnet_hdr on multi_queue numqueues 2/, 't1\'s two-queue tun carries virtio-net headers');
  t.match(link, new RegExp(`gso_max_segs ${TUN_GSO_MAX_SEGS}\\b`), 'gso_max_segs capped to what a batch takes');

  t.ok(await mesh.pingUntilReply('t1', IP.t2, 15_000), 't1 -> t2 ping');
  t.ok(await mesh.pingUntilReply('t1', IP.g1, 15_000), 't1 -> g1 (Go) ping');
  for (const to of ['t2', 'g1'] as const) {
    const before = (await status(mesh, 't1')).counters;
    const r = await tcpTransfer(mesh, 't1', to, IP[to], TRANSFER_BYTES, `offloads-t1-${to}`);
    t.comment(`t1 -> ${to}: ${TRANSFER_BYTES} bytes in ${r.ms} ms (${((TRANSFER_BYTES * 8) / r.ms / 1000).toFixed(1)} Mbit/s)`);
    t.same(r.sent, { bytes: TRANSFER_BYTES, sha256: r.expected }, `t1 sent the 20 MB to ${to}`);
    t.same(r.received, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${to} received them byte for byte`);
    const after = (await status(mesh, 't1')).counters;
    const supers = after['routine.inside.rx_superpackets']! - before['routine.inside.rx_superpackets']!;
    const packets = after['routine.inside.rx_packets']! - before['routine.inside.rx_packets']!;
    t.comment(`t1 -> ${to}: ${supers} super-packets, ${packets} packets read`);
    t.ok(supers > 0, `t1's tun handed over super-packets on the way to ${to} (${supers})`);
    // Each super-packet is at least two segments, so the packets outnumber the super-packets by more than that.
    t.ok(packets >= 2 * supers, `super-packets were split into packets (${packets} from ${supers})`);
    t.equal(after['routine.dropped.malformed'], before['routine.dropped.malformed'], 'no read refused by the splitter');
  }
  // t2 received the first transfer: its writes merged the segments back (and the kernel took them: the bytes arrived).
  const t2 = (await status(mesh, 't2')).counters;
  t.comment(`t2: ${t2['routine.inside.tx_superpackets']} coalesced writes, ${t2['routine.inside.tx_packets']} packets written`);
  t.ok(t2['routine.inside.tx_superpackets']! > 0, 't2 wrote coalesced super-packets to its tun');
  t.equal(t2['routine.inside.tx_errors'], 0, 'the kernel refused none of t2\'s writes');
  // The underlay socket's offloads follow the tun's: t1 sent runs of datagrams as UDP GSO messages, t2's socket took
  // them as coalesced GRO buffers (and split them; the bytes above arrived intact), and no kernel refused either.
  const t1 = (await status(mesh, 't1')).counters;
  t.comment(`t1: ${t1['routine.outside.tx_gso_messages']} GSO messages; t2: ${t2['routine.outside.rx_gro_buffers']} GRO buffers`);
  t.ok(t1['routine.outside.tx_gso_messages']! > 0, 't1 sent GSO messages');
  t.ok(t2['routine.outside.rx_gro_buffers']! > 0, 't2 received coalesced GRO buffers');
  t.equal(t1['routine.outside.offload_fallbacks']! + t2['routine.outside.offload_fallbacks']!, 0, 'no underlay offload refused');

  t.test('UDP segmentation offload: one UDP_SEGMENT send reaches the peer as its datagrams', async (t) => {
    const before = (await status(mesh, 't1')).counters['routine.inside.rx_superpackets']!;
    const receiver = jsonLines(spawnFixture(mesh, 't2', 'udp-gso.ts', [JSON.stringify({ op: 'recv', host: IP.t2, port: 9000, count: 6, timeoutMs: 15_000 })]));
    await receiver.first((v) => v.listening === true, 20_000);
    const sender = jsonLines(spawnFixture(mesh, 't1', 'udp-gso.ts', [JSON.stringify({ op: 'send', to: IP.t2, port: 9000, segment: 1200, bytes: 5 * 1200 + 300 })]));
    const sent = await sender.first((v) => 'sent' in v || 'error' in v, 20_000);
    t.equal(sent.sent, 6300, 'one send of 6300 bytes');
    const got = await receiver.first((v) => 'sizes' in v || 'error' in v, 20_000);
    t.same(got.sizes, [1200, 1200, 1200, 1200, 1200, 300], 'six datagrams of the segment size, the last one short');
    t.equal(got.sha256, sent.sha256, 'their bytes, in order');
    const after = (await status(mesh, 't1')).counters['routine.inside.rx_superpackets']!;
    // USO needs Linux >= 6.2 (platform-notes §9: taken here); without it the kernel segments before the tun.
    const uso = /msg="tun offloads enabled".*\budp=true\b/.test(linesMatching(mesh, 't1', /tun offloads enabled/)[0] ?? '');
    t.equal(after - before, uso ? 1 : 0, uso ? 'the tun handed the send over as one UDP super-packet' : 'no USO on this kernel: plain datagrams');
  });

  t.test('a kernel (here: ip) refusing the offload setup: plain packets and a WARN', async (t) => {
    t.equal(linesMatching(mesh, 't3', /level=warning msg="tun offloads refused by the kernel; using plain packets".*refused by the test/).length, 1, 'the warning names why');
    t.notMatch(await mesh.exec('t3', 'ip', ['-d', 'link', 'show', 'dev', 'nebula1']), /vnet_hdr on/, 'reopened without virtio-net headers');
    t.ok(await mesh.pingUntilReply('t3', IP.t1, 15_000), 't3 -> t1 ping');
    const bytes = 2 * 1024 * 1024;
    const r = await tcpTransfer(mesh, 't3', 't1', IP.t1, bytes, 'offloads-fallback');
    t.same(r.received, { bytes, sha256: r.expected }, 't1 received t3\'s 2 MB byte for byte');
    const c = (await status(mesh, 't3')).counters;
    t.equal(c['routine.inside.rx_superpackets'], 0, 'no super-packet on a plain tun');
    t.equal(c['routine.outside.tx_gso_messages'], 0, 'and no underlay offloads without the tun\'s');
    t.ok(c['routine.inside.rx_packets']! > bytes / 1300, 'the transfer was read as plain packets');
  });
});
