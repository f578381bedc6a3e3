/**
 * Issue 8 acceptance: re-keying. A nebula-ts node `a` (routines: 2) starts its first tunnel's shared send counter
 * just below the re-key threshold (test hook NEBULA_TS_TEST_SEND_COUNTER_START = REKEY_AFTER_MESSAGES - 20,000) and
 * sends a checksummed TCP transfer of more than 100,000 data packets across the re-key, once to a Go nebula 1.6.1
 * peer and once to a nebula-ts peer (routines: 2). A capture of the underlay in a's namespace must show:
 *  - no (receiver index, counter) pair twice among a's tunnel packets (a (key, nonce) pair never repeats);
 *  - exactly two receiver indexes on a's data packets: the old tunnel's, with counters from the hook's start past
 *    2^48 (64-bit counters on the wire), and the new tunnel's, with its counter starting again near 2;
 * and the transfer must be byte-identical with no reset, a must log the re-key, its status must show the tunnel
 * under a new local index, and the peer must log that it took the new handshake (Go 1.6.1 logs it too). What the
 * switch-over cost (packets a still sent on the old index after the peer's stage 2, recvErrors, counters) is
 * reported, not asserted.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REKEY_AFTER_MESSAGES } from '../../src/supervisor/rekey';
import type { Mesh, MeshNode, NodeKind } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { nebulaHeader, readPcapUdp, startCapture, type Capture, type UdpDatagram } from './fixtures/pcap';
import { linesMatching, newMesh, status, tcpTransfer, until, type NodeStatus } from './helpers';

const A = '192.168.100.1';
const P = '192.168.100.2';
const PORT = 4242;
/** Where a's first tunnel starts its send counter: 20,000 packets before the re-key threshold. */
const HOOK_START = REKEY_AFTER_MESSAGES - 20_000;
/** Data packets a must be seen sending across the re-key. */
const MIN_DATA_PACKETS = 100_000;
/**
 * At tun MTU 1300 a TCP segment carries at most 1248 bytes (1300 - 20 IP - 20 TCP - 12 timestamps), so 130 MB takes
 * at least 104,167 data packets from a (more with retransmissions): the smallest round size above MIN_DATA_PACKETS.
 */
const TRANSFER_BYTES = 130 * 1000 * 1000;
/** A re-keyed tunnel's counter starts at 2: its first captured data packets must be about there. */
const NEW_TUNNEL_FIRST_COUNTER_MAX = 5000n;
/** A bound on the transfer (tcp-sha.ts gives up by itself at 120 s), not an expectation of its speed. */
const TRANSFER_TIMEOUT_MS = 125_000;
const TYPE_HANDSHAKE = 0;
const TYPE_MESSAGE = 1;
const TYPE_RECV_ERROR = 2;
const REKEY_LINE = /Re-keying tunnel: its send counter passed the re-key threshold/;
const TAKING_NEW = /Taking new handshake/;

/** Counters reported (not asserted) to show what the switch-over cost. */
const LOSS_COUNTERS = [
  'network.packets.lost',
  'network.packets.out_of_window',
  'network.packets.duplicate',
  'routine.dropped.no_tunnel',
  'routine.dropped.decrypt_failed',
  'routine.dropped.counter_spent',
  'routine.dropped.parked_overflow',
  'routine.outside.tx_errors',
  'messages.tx.recv_error',
  'messages.rx.recv_error',
  'messages.rx.close_tunnel',
  'handshake_manager.initiated',
] as const;

interface IndexStats {
  index: number;
  packets: number;
  min: bigint;
  max: bigint;
  firstUs: number;
  lastUs: number;
}

function perIndex(packets: Array<{ d: UdpDatagram; index: number; counter: bigint }>): Map<number, IndexStats> {
  const out = new Map<number, IndexStats>();
  for (const { d, index, counter } of packets) {
    const s = out.get(index);
    if (!s) out.set(index, { index, packets: 1, min: counter, max: counter, firstUs: d.tsUs, lastUs: d.tsUs });
    else {
      s.packets++;
      if (counter < s.min) s.min = counter;
      if (counter > s.max) s.max = counter;
      s.lastUs = d.tsUs;
    }
  }
  return out;
}

const describe = (s: IndexStats | undefined): string =>
  s ? `index ${s.index}: ${s.packets} packets, counters ${s.min}..${s.max} (${s.max - s.min + 1n - BigInt(s.packets)} not captured or never sent)` : 'absent';

function deltas(after: NodeStatus, before: NodeStatus): Record<string, number> {
  return Object.fromEntries(LOSS_COUNTERS.map((k) => [k, (after.counters[k] ?? 0) - (before.counters[k] ?? 0)]));
}

/** The tunnel of `s` to `vpnIp`, if any. */
const tunnelTo = (s: NodeStatus, vpnIp: string): NodeStatus['tunnels'][number] | undefined => s.tunnels.find((x) => x.vpnIp === vpnIp);

/** Resolves with the first line matching `re` (from `from` on), or fails the test and resolves undefined. */
async function logLine(t: Test, mesh: Mesh, name: string, re: RegExp, from: number, timeoutMs: number): Promise<string | undefined> {
  return mesh.waitForOutput(name, re, timeoutMs, from).catch((err: Error) => {
    t.fail(err.message);
    return undefined;
  });
}

async function rekeyAcross(t: Test, peerName: string, peerKind: NodeKind): Promise<void> {
  if (!prereqs(t, peerKind === 'go' ? ['root', 'tun', 'tcpdump', 'nebula'] : ['root', 'tun', 'tcpdump'])) return;
  const testStarted = Date.now();
  const mesh = await newMesh(t, { cipher: 'aes' });
  // Only a knows the peer's address, so a initiates the first tunnel (the one the hook applies to) and the re-key.
  const a = await mesh.add({
    name: 'a',
    kind: 'ts',
    overlayIp: A,
    routines: 2,
    staticHosts: [peerName],
    env: { NEBULA_TS_TEST_SEND_COUNTER_START: String(HOOK_START) },
  });
  const peer: MeshNode = await mesh.add(
    peerKind === 'ts' ? { name: peerName, kind: 'ts', overlayIp: P, routines: 2, staticHosts: [] } : { name: peerName, kind: 'go', overlayIp: P, staticHosts: [] },
  );
  mesh.writeConfigs();
  await mesh.start(peerName);
  await mesh.start('a');
  let threw = false;
  try {
    await acrossTheRekey(t, mesh, a, peer, peerKind);
  } catch (err) {
    threw = true;
    throw err;
  } finally {
    t.comment(`subtest ran ${Date.now() - testStarted} ms`);
    if (threw || !t.passing()) {
      const relevant = /level=(error|warn)|[Hh]andshake|Re-key|Taking new|[Tt]unnel|[Cc]lose|recv_?[Ee]rror|Routine|exited/;
      for (const n of ['a', peer.name]) t.comment(`${n}'s log (relevant lines, last 60):\n${linesMatching(mesh, n, relevant).slice(-60).join('\n')}`);
    }
  }
}

async function acrossTheRekey(t: Test, mesh: Mesh, a: MeshNode, peer: MeshNode, peerKind: NodeKind): Promise<void> {
  const peerName = peer.name;

  // The capture: every UDP datagram on a's underlay interface, headers only.
  const capDir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-rekey-'));
  const pcapFile = path.join(capDir, 'underlay.pcap');
  let cap: Capture | undefined;
  t.teardown(async () => {
    if (cap && cap.child.exitCode === null && cap.child.signalCode === null) {
      const exited = new Promise((resolve) => cap!.child.once('exit', resolve));
      cap.child.kill('SIGKILL');
      await exited;
    }
    rmSync(capDir, { recursive: true, force: true });
  });
  cap = await startCapture(a.ns, 'eth0', pcapFile, 'udp', { snaplen: 64 });

  const aLog0 = a.output.length;
  const peerLog0 = peer.output.length;
  t.ok(await mesh.pingUntilReply('a', P, 15_000), `a -> ${peerName}: tunnel up`);
  const before = await status(mesh, 'a');
  const peerBefore = peerKind === 'ts' ? await status(mesh, peerName) : undefined;
  const t0 = tunnelTo(before, P);
  t.ok(t0, `a has a tunnel to ${peerName} (${JSON.stringify(t0)})`);
  if (!t0) return;
  t.same(linesMatching(mesh, 'a', REKEY_LINE, aLog0), [], 'no re-key before the transfer');

  // The transfer, across the re-key.
  const seed = `rekey-${peerKind}-${process.pid}-${Date.now()}`;
  // A transfer that fails (or times out) is a failed assertion, and the capture is still analysed below.
  const transferStarted = Date.now();
  const r = await tcpTransfer(mesh, 'a', peerName, P, TRANSFER_BYTES, seed, TRANSFER_TIMEOUT_MS).catch((err: Error) => {
    t.fail(`the transfer did not finish after ${Date.now() - transferStarted} ms: ${err.message}`);
    return undefined;
  });
  if (r) {
    t.comment(`a -> ${peerName}: ${TRANSFER_BYTES} bytes in ${r.ms} ms (${((TRANSFER_BYTES * 8) / r.ms / 1000).toFixed(1)} Mbit/s)`);
    t.same(r.sent, { bytes: TRANSFER_BYTES, sha256: r.expected }, `a sent the ${TRANSFER_BYTES} bytes it meant to, with no error (${JSON.stringify(r.sent)})`);
    t.same(r.received, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${peerName} received them byte-identical, with no reset (${JSON.stringify(r.received)})`);
  }

  // The re-key, as the nodes see it.
  const rekeyLine = await logLine(t, mesh, 'a', REKEY_LINE, aLog0, 10_000);
  const rekeyCounter = /\bmessageCounter=(\d+)/.exec(rekeyLine ?? '')?.[1];
  t.ok(rekeyCounter !== undefined && BigInt(rekeyCounter) >= BigInt(REKEY_AFTER_MESSAGES), `a logged the re-key at counter ${rekeyCounter} >= 2^48: ${rekeyLine}`);
  const after = await until(
    `a's tunnel to ${peerName} under a new local index`,
    () => status(mesh, 'a'),
    (s) => tunnelTo(s, P) !== undefined && tunnelTo(s, P)!.localIndex !== t0.localIndex,
    10_000,
    100,
  ).catch(async (err: Error) => {
    t.fail(err.message);
    return status(mesh, 'a');
  });
  const t1 = tunnelTo(after, P);
  t.ok(t1 && t1.localIndex !== t0.localIndex && t1.remoteIndex !== t0.remoteIndex, `a's status: the tunnel to ${peerName} was replaced (${JSON.stringify(t0)} -> ${JSON.stringify(t1)})`);
  t.equal(after.tunnels.length, 1, 'a has one tunnel');
  let peerAfter: NodeStatus | undefined;
  if (peerKind === 'ts') {
    const taking = await logLine(t, mesh, peerName, TAKING_NEW, peerLog0, 10_000);
    t.ok(taking, `${peerName} logged that it took the new handshake: ${taking}`);
    peerAfter = await status(mesh, peerName);
    const pt = tunnelTo(peerAfter, A);
    t.same(pt && { localIndex: pt.localIndex, remoteIndex: pt.remoteIndex }, t1 && { localIndex: t1.remoteIndex, remoteIndex: t1.localIndex }, `${peerName}'s tunnel to a is the new one (${JSON.stringify(pt)})`);
  } else {
    // Go nebula 1.6.1 replaces the host's tunnel with the newer handshake and says so (CheckAndComplete).
    const taking = await logLine(t, mesh, peerName, TAKING_NEW, peerLog0, 10_000);
    t.ok(taking, `${peerName} (Go) logged that it took the new handshake: ${taking}`);
  }
  t.same(
    after.routines.map((x) => x.restarts),
    after.routines.map(() => 0),
    'no routine of a restarted',
  );

  // The capture.
  const capStats = await cap.stop();
  const datagrams = readPcapUdp(pcapFile);
  t.comment(`tcpdump: ${JSON.stringify(capStats)}; ${datagrams.length} UDP datagrams in the file`);
  const fromA = datagrams.filter((d) => d.src === a.underlayIp && d.srcPort === PORT);
  const fromPeer = datagrams.filter((d) => d.src === peer.underlayIp && d.srcPort === PORT && d.dst === a.underlayIp);
  const headed = (ds: UdpDatagram[]): Array<{ d: UdpDatagram; type: number; subtype: number; index: number; counter: bigint }> =>
    ds.flatMap((d) => {
      const h = nebulaHeader(d);
      return h ? [{ d, ...h }] : [];
    });
  const aPackets = headed(fromA);
  const peerPackets = headed(fromPeer);
  // Every packet sealed with a tunnel key takes a counter (data, test, closeTunnel...); handshakes and recvErrors
  // are not sealed with one.
  const sealed = (ps: typeof aPackets): typeof aPackets => ps.filter((p) => p.type !== TYPE_HANDSHAKE && p.type !== TYPE_RECV_ERROR);
  const aData = aPackets.filter((p) => p.type === TYPE_MESSAGE);
  t.ok(aData.length > MIN_DATA_PACKETS, `a sent ${aData.length} data packets in the capture (> ${MIN_DATA_PACKETS}; tcpdump: ${JSON.stringify(capStats)})`);

  const repeatsOf = (ps: typeof aPackets): { distinct: number; repeats: string[] } => {
    const seen = new Set<string>();
    const repeats: string[] = [];
    for (const p of ps) {
      const k = `${p.index}/${p.counter}`;
      if (seen.has(k)) {
        if (repeats.length < 10) repeats.push(`${k} (type ${p.type})`);
      } else seen.add(k);
    }
    return { distinct: seen.size, repeats };
  };
  const aSealed = sealed(aPackets);
  const aRep = repeatsOf(aSealed);
  t.equal(aRep.distinct, aSealed.length, `no (index, counter) pair repeats among a's ${aSealed.length} sealed packets; repeats: ${aRep.repeats.join(', ') || 'none'}`);
  const peerSealed = sealed(peerPackets);
  const peerRep = repeatsOf(peerSealed);
  t.equal(peerRep.distinct, peerSealed.length, `nor among ${peerName}'s ${peerSealed.length} sealed packets to a; repeats: ${peerRep.repeats.join(', ') || 'none'}`);

  const byIndex = perIndex(aData);
  const oldIdx = byIndex.get(t0.remoteIndex);
  const newIdx = t1 ? byIndex.get(t1.remoteIndex) : undefined;
  t.comment(`a's data packets by receiver index: ${[...byIndex.values()].map(describe).join('; ')}`);
  t.same(
    [...byIndex.keys()].sort((x, y) => x - y),
    [t0.remoteIndex, t1?.remoteIndex].sort((x, y) => (x ?? 0) - (y ?? 0)),
    `a's data packets went to exactly two receiver indexes: the old tunnel's (${t0.remoteIndex}) and the new one's (${t1?.remoteIndex})`,
  );
  t.ok(oldIdx && oldIdx.min >= BigInt(HOOK_START), `old tunnel: counters from the hook's start on (${describe(oldIdx)}; hook ${HOOK_START})`);
  t.ok(oldIdx && oldIdx.max >= BigInt(REKEY_AFTER_MESSAGES), `old tunnel: counters past the threshold 2^48 = ${REKEY_AFTER_MESSAGES} on the wire (max ${oldIdx?.max})`);
  t.ok(newIdx && newIdx.min <= NEW_TUNNEL_FIRST_COUNTER_MAX, `new tunnel: its counter starts low (${describe(newIdx)})`);
  t.ok(newIdx && newIdx.max < BigInt(HOOK_START), `new tunnel: a fresh counter, not the old one continued (max ${newIdx?.max})`);

  // The switch-over, reported: a's re-key stage 1, the peer's stage 2, and what a still sent on the old index after it.
  const stage1s = aPackets.filter((p) => p.type === TYPE_HANDSHAKE && p.index === 0 && p.counter === 1n);
  const stage2s = peerPackets.filter((p) => p.type === TYPE_HANDSHAKE && p.counter === 2n);
  const rekeyStage2 = t1 ? stage2s.find((p) => p.index === t1.localIndex) : undefined;
  if (oldIdx && newIdx && rekeyStage2) {
    const afterStage2 = aData.filter((p) => p.index === t0.remoteIndex && p.d.tsUs > rekeyStage2.d.tsUs).length;
    const stage2For = (index: number): number => stage2s.filter((p) => p.index === index).length;
    t.comment(
      `switch-over: ${stage1s.length} stage 1 from a, ${stage2s.length} stage 2 from ${peerName} (${stage2For(t0.localIndex)} for the first tunnel, ${stage2For(t1!.localIndex)} for the re-key); ` +
        `re-key stage 2 seen at +${((rekeyStage2.d.tsUs - oldIdx.firstUs) / 1000).toFixed(1)} ms after the first old-index packet; ` +
        `last old-index packet ${((oldIdx.lastUs - rekeyStage2.d.tsUs) / 1000).toFixed(1)} ms after it, first new-index packet ${((newIdx.firstUs - rekeyStage2.d.tsUs) / 1000).toFixed(1)} ms after it; ` +
        `${afterStage2} data packets sent on the old index after the stage 2 reached a's interface`,
    );
  }
  // recvErrors the peer sent a (for indexes it no longer knows), and the longest silence in a's data packets.
  const recvErrors = peerPackets.filter((p) => p.type === TYPE_RECV_ERROR);
  const recvErrorIndexes = new Map<number, number>();
  for (const p of recvErrors) recvErrorIndexes.set(p.index, (recvErrorIndexes.get(p.index) ?? 0) + 1);
  t.comment(`${peerName} sent a ${recvErrors.length} recvErrors: ${JSON.stringify(Object.fromEntries(recvErrorIndexes))} (by index)`);
  // (pcap timestamps and Date.now() are the same clock, CLOCK_REALTIME.)
  const during = aData.filter((p) => p.d.tsUs >= transferStarted * 1000);
  let gap = { ms: 0, atMs: 0 };
  for (let i = 1; i < during.length; i++) {
    const ms = (during[i]!.d.tsUs - during[i - 1]!.d.tsUs) / 1000;
    if (ms > gap.ms) gap = { ms, atMs: (during[i - 1]!.d.tsUs - during[0]!.d.tsUs) / 1000 };
  }
  if (during.length > 0) {
    const spanMs = (during[during.length - 1]!.d.tsUs - during[0]!.d.tsUs) / 1000;
    const rekeyAtMs = rekeyStage2 ? ((rekeyStage2.d.tsUs - during[0]!.d.tsUs) / 1000).toFixed(0) : '?';
    t.comment(`a's data packets of the transfer span ${spanMs.toFixed(0)} ms; longest silence ${gap.ms.toFixed(1)} ms, ${gap.atMs.toFixed(0)} ms in (the re-key's stage 2: ${rekeyAtMs} ms in)`);
  }
  t.comment(`a's counters over the transfer: ${JSON.stringify(deltas(after, before))}`);
  if (peerBefore && peerAfter) t.comment(`${peerName}'s counters over the transfer: ${JSON.stringify(deltas(peerAfter, peerBefore))}`);
}

// Bounds, not expectations: a subtest's own waits (ping 15 s, transfer 125 s, log and status 10 s each) fit in
// SUBTEST_TIMEOUT_MS, and the file's bound covers both subtests, so a slow run still ends in its teardowns (mesh,
// tcpdump, capture file) rather than being killed with namespaces left behind.
const SUBTEST_TIMEOUT_MS = 200_000;
t.setTimeout(2 * SUBTEST_TIMEOUT_MS + 30_000);

t.test('re-key across a checksummed transfer: nebula-ts (routines: 2) -> Go nebula 1.6.1', { timeout: SUBTEST_TIMEOUT_MS }, (t) => rekeyAcross(t, 'g', 'go'));
t.test('re-key across a checksummed transfer: nebula-ts (routines: 2) -> nebula-ts (routines: 2)', { timeout: SUBTEST_TIMEOUT_MS }, (t) => rekeyAcross(t, 'b', 'ts'));
