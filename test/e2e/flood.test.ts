/**
 * Issue 8 acceptance: a flood. While two nebula-ts nodes (routines: 2) carry a checksummed 20 MB transfer, a third
 * namespace on the same underlay sends 50,000 hostile datagrams to one of them (the victim, b): random bytes of random
 * length, valid headers with random indexes, truncated and mutated handshakes, replays of packets captured from the
 * mesh itself, from several source ports (fixtures/flood-sender.ts). Then:
 *  - the transfer completes byte-identical;
 *  - no process of the victim restarted (supervisor pid, routine pids, restarts 0);
 *  - the victim's RSS (supervisor + routines) grew by less than 32 MiB;
 *  - the recvErrors it sent stay under its per-routine token bucket (RECV_ERROR_BURST + RECV_ERROR_PER_SECOND over
 *    the measured flood window), and the handshakes its routines handed up stay under the per-source bound;
 *  - it is still responsive: status answers, its tunnel is untouched, pings go through.
 * All traffic stays inside the mesh's namespaces (10.99.0.0/24); the sender sends exactly 50,000 datagrams and stops.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RECV_ERROR_BURST, RECV_ERROR_PER_SECOND } from '../../src/routine/context';
import { HANDSHAKE_SOURCE_BURST, HANDSHAKES_PER_SOURCE_PER_SECOND } from '../../src/routine/handshake-limiter';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { fixtureCommand } from '../helpers/compiled-fixture';
import { prereqs } from '../helpers/prereq';
import { streamSha256 } from './fixtures/stream-data';
import { alive, childrenOf, jsonLines, linesMatching, newMesh, spawnFixture, status, until, type NodeStatus } from './helpers';
import { readPcapUdp } from './fixtures/pcap';
import { background, type Bg, type Teardownable } from './fixtures/background';

const A = '192.168.100.1';
const B = '192.168.100.2';
const X = '192.168.100.9';
const PORT = 4242;
const ROUTINES = 2;
const FLOOD_COUNT = 50_000;
/** Datagrams per second: 50,000 in about 4 s. */
const FLOOD_RATE = 12_500;
const TRANSFER_BYTES = 20 * 1000 * 1000;
/** Data packets a -> b captured at the start of the transfer, to be replayed. */
const REPLAY_CAPTURE = 200;
const RSS_LIMIT = 32 * 1024 * 1024;

/** tcpdump on a namespace's eth0 into `file` (stops by itself after `count` packets if given); resolves once it listens. */
async function capture(t: Teardownable, mesh: Mesh, name: string, file: string, filter: string, opts: { snaplen?: number; count?: number } = {}): Promise<Bg> {
  const args = ['-i', 'eth0', '-n', '-U', '--immediate-mode', '-Z', 'root', '-B', '16384', '-s', String(opts.snaplen ?? 0), '-w', file];
  if (opts.count !== undefined) args.push('-c', String(opts.count));
  const bg = background(t, mesh.node(name).ns, 'tcpdump', [...args, filter]);
  await bg.waitFor(/listening on eth0/, 10_000);
  return bg;
}

/** Resolves with `p`, or rejects after `ms` saying what did not happen (a bound on a wait, not a synchronisation). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out (${ms} ms) waiting for ${what}`)), ms);
    }),
  ]);
}

/** VmRSS of a process, in bytes. */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** The `Udp:` line pair of /proc/net/snmp inside a node's namespace. */
async function udpStats(mesh: Mesh, name: string): Promise<Record<string, number>> {
  const lines = (await mesh.exec(name, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  const keys = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
}

const MiB = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/** Counters the flood moves (or must not move), reported as deltas. */
const REPORTED = [
  'messages.tx.recv_error',
  'routine.dropped.recv_error_limited',
  'routine.dropped.handshake_limited',
  'messages.rx.handshake_ixpsk0',
  'messages.tx.handshake_ixpsk0',
  'messages.rx.invalid',
  'messages.rx.recv_error',
  'messages.rx.other',
  'routine.dropped.no_tunnel',
  'network.packets.duplicate',
  'network.packets.out_of_window',
  'routine.dropped.decrypt_failed',
  'messages.rx.close_tunnel',
  'routine.outside.tx_errors',
] as const;

/** The counters that only flood datagrams move while the transfer runs: unchanged between two polls = drained. */
const FLOOD_DRIVEN = ['messages.rx.invalid', 'routine.dropped.no_tunnel', 'messages.tx.recv_error', 'routine.dropped.recv_error_limited', 'messages.rx.handshake_ixpsk0', 'messages.rx.recv_error', 'network.packets.duplicate', 'routine.dropped.decrypt_failed'] as const;

t.test('a 50,000-datagram flood at a node carrying a 20 MB transfer: transfer intact, no restart, bounded RSS and recvErrors', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'tcpdump'])) return;
  t.setTimeout(240_000);
  const testStarted = Date.now();
  const mesh = await newMesh(t, { cipher: 'aes' });
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, routines: ROUTINES, staticHosts: ['b'] });
  // b knows no static host: a is the only initiator, so a's stage 1 is always sent (were b's handshake to reach a
  // before a starts its own, a would have its tunnel already and send none for the capture below).
  const b = await mesh.add({ name: 'b', kind: 'ts', overlayIp: B, routines: ROUTINES, staticHosts: [] });
  // The attacker: a namespace on the same bridge with a certificate of the mesh, never started as a node.
  const x = await mesh.add({ name: 'x', kind: 'ts', overlayIp: X, staticHosts: [] });
  mesh.writeConfigs();

  // a's first stage 1 to b (type 0, counter 1), captured whole in b's namespace as the mesh comes up.
  const stage1File = path.join(mesh.dir, 'stage1.pcap');
  const stage1Dump = await capture(t, mesh, 'b', stage1File, `udp dst port ${PORT} and src host ${a.underlayIp} and udp[8] = 0x10 and udp[16:4] = 0 and udp[20:4] = 1`, {
    count: 1,
  });
  await Promise.all([mesh.start('a'), mesh.start('b')]);
  t.ok(await mesh.pingUntilReply('a', B, 15_000), 'a -> b tunnel up');
  await within(stage1Dump.exit, 10_000, "tcpdump to capture a's stage 1");
  const stage1 = readPcapUdp(stage1File)[0];
  t.ok(stage1 && stage1.payload.length === stage1.length && stage1.length > 16 + 64, `captured a's stage 1 (${stage1?.length} bytes)`);
  if (!stage1) return;

  const s0 = await status(mesh, 'b');
  const tunnelToA = s0.tunnels.find((tn) => tn.vpnIp === A);
  t.ok(tunnelToA, 'b has a tunnel to a');
  if (!tunnelToA) return;
  const supervisorPid = b.process!.pid!;
  const routinePids = s0.routines.map((r) => r.pid);
  t.equal(s0.routines.length, ROUTINES, `b runs ${ROUTINES} routines`);
  t.same(childrenOf(supervisorPid), [...routinePids].sort((p, q) => p - q), "b's supervisor's children are exactly its routines");

  // The flood sender, ready (sockets bound, its own stage 1 built) before the transfer starts.
  const seed = `flood-${process.pid}-${Date.now()}`;
  const senderOpts = {
    to: b.underlayIp,
    port: PORT,
    count: FLOOD_COUNT,
    rate: FLOOD_RATE,
    seed,
    sourcePorts: [PORT, 0, 0, 0, 0, 0, 0, 0],
    cert: path.join(x.dir, 'x.crt'),
    key: path.join(x.dir, 'x.key'),
    cipher: mesh.cipher,
  };
  const senderChild = spawn('ip', ['netns', 'exec', x.ns, ...fixtureCommand(path.join(__dirname, 'fixtures', 'flood-sender.ts')), JSON.stringify(senderOpts)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (senderChild.exitCode === null && senderChild.signalCode === null) senderChild.kill('SIGKILL');
  });
  const sender = jsonLines(senderChild);
  const ready = await sender.first((v) => v.ready === true || 'error' in v, 30_000);
  t.ok(ready.ready, `flood sender ready in ${x.ns} (source ports ${JSON.stringify(ready.ports)}, seed ${seed})`);
  const command = (c: Record<string, unknown>): void => {
    senderChild.stdin!.write(JSON.stringify(c) + '\n');
  };

  // Recordings: the first data packets a -> b of the transfer (to replay), and every recvError b sends.
  const replayFile = path.join(mesh.dir, 'replay.pcap');
  const replayDump = await capture(t, mesh, 'b', replayFile, `udp dst port ${PORT} and src host ${a.underlayIp} and src port ${PORT} and udp[8] = 0x11`, {
    count: REPLAY_CAPTURE,
  });
  const recvErrFile = path.join(mesh.dir, 'recv-error.pcap');
  const recvErrDump = await capture(t, mesh, 'b', recvErrFile, `src host ${b.underlayIp} and udp src port ${PORT} and udp[8] = 0x12`, { snaplen: 64 });

  // The transfer: 20 MB from a to b through the tunnel, hashed on both sides.
  const transferSeed = `flood-transfer-${seed}`;
  const server = jsonLines(spawnFixture(mesh, 'b', 'tcp-sha.ts', ['server', B, '5201']));
  await server.first((v) => v.listening === true, 20_000);
  const transferStarted = Date.now();
  const client = jsonLines(spawnFixture(mesh, 'a', 'tcp-sha.ts', ['client', B, '5201', String(TRANSFER_BYTES), transferSeed]));
  let transferEndedAt = 0;
  const received = server.first((v) => 'sha256' in v || 'error' in v, 150_000).then((v) => {
    transferEndedAt = Date.now();
    return v;
  });
  const sent = client.first((v) => 'sha256' in v || 'error' in v, 150_000);
  received.catch(() => undefined);
  sent.catch(() => undefined);

  await within(replayDump.exit, 30_000, `tcpdump to capture ${REPLAY_CAPTURE} data packets of the transfer`);
  const replays = readPcapUdp(replayFile).filter((d) => d.payload.length === d.length && d.payload.readUInt32BE(4) === tunnelToA.localIndex);
  t.ok(replays.length >= REPLAY_CAPTURE * 0.9, `captured ${replays.length} whole data packets a -> b for b's index ${tunnelToA.localIndex}`);
  const material = path.join(mesh.dir, 'flood-material.json');
  writeFileSync(material, JSON.stringify({ replays: replays.map((d) => d.payload.toString('hex')), stage1: stage1.payload.toString('hex') }));

  // Before: pids, RSS, counters. The window the counters are compared over starts here.
  const windowStart = Date.now();
  const before = await status(mesh, 'b');
  const rssBefore = rssOf(supervisorPid) + routinePids.reduce((n, p) => n + rssOf(p), 0);
  const udpBefore = await udpStats(mesh, 'b');
  const logFrom = b.output.length;
  const transferRunningAtFloodStart = transferEndedAt === 0;
  command({ go: material });
  const floodStarted = Date.now();
  let senderDone: Record<string, unknown> | undefined;
  const doneLine = sender.first((v) => v.done === true || 'error' in v, 60_000).then((v) => (senderDone = v));
  doneLine.catch(() => undefined);
  // While the flood runs, b's control socket is asked for its status over and over (answers are timed, not judged).
  const statusMs: number[] = [];
  let statusFailures = 0;
  await until(
    'the flood sender to finish',
    async () => {
      const asked = Date.now();
      await status(mesh, 'b').then(
        () => statusMs.push(Date.now() - asked),
        () => statusFailures++,
      );
      return senderDone !== undefined || senderChild.exitCode !== null;
    },
    (finished) => finished,
    60_000,
    100,
  );
  const done = await doneLine;
  // When the last datagram went out, by the sender's own clock (the poll above may have answered later).
  const floodSent = floodStarted + Number(done.sendMs);
  t.equal(done.sent, FLOOD_COUNT, `the sender sent ${String(done.sent)} datagrams (${String(done.errors)} send errors) in ${String(done.sendMs)} ms: ${JSON.stringify(done.kinds)}`);
  t.ok(transferRunningAtFloodStart, `the transfer was running when the flood began (${floodStarted - transferStarted} ms into it)`);

  // Drained: the flood-driven counters stopped moving (held datagrams get their recvError 250 ms after arrival).
  let previous: NodeStatus | undefined;
  const after = await until(
    "b's flood-driven counters to settle",
    () => status(mesh, 'b'),
    (s) => {
      const same = previous !== undefined && FLOOD_DRIVEN.every((k) => s.counters[k] === previous!.counters[k]);
      previous = s;
      return same;
    },
    30_000,
    300,
  );
  const windowMs = Date.now() - windowStart;
  command({ stop: true });
  const back = await sender.first((v) => 'received' in v, 10_000);
  await recvErrDump.stop();
  await within(sender.exit, 10_000, 'the flood sender to exit');

  const delta = (k: string): number => (after.counters[k] ?? 0) - (before.counters[k] ?? 0);
  const deltas = Object.fromEntries(REPORTED.map((k) => [k, delta(k)]));
  const windowSeconds = Math.ceil(windowMs / 1000);
  t.comment(`flood: ${FLOOD_COUNT} datagrams sent in ${String(done.sendMs)} ms; counter window ${windowMs} ms (rounded up: ${windowSeconds} s)`);
  t.comment(`b's counters over the window: ${JSON.stringify(deltas)}`);
  t.comment(`what came back to the attacker: ${JSON.stringify(back.received)}`);
  const udpAfter = await udpStats(mesh, 'b');
  const udpDelta = Object.fromEntries(Object.keys(udpAfter).map((k) => [k, udpAfter[k]! - (udpBefore[k] ?? 0)]));
  t.comment(`b's kernel UDP counters over the window (/proc/net/snmp; RcvbufErrors = datagrams dropped on full socket buffers): ${JSON.stringify(udpDelta)}`);
  t.comment(
    `status during the flood: ${statusMs.length} answers, slowest ${Math.max(0, ...statusMs)} ms, median ${[...statusMs].sort((p, q) => p - q)[Math.floor(statusMs.length / 2)] ?? '-'} ms; ${statusFailures} unanswered`,
  );

  // recvErrors: per routine at most the bucket's burst plus its rate over the window (rounded up, + 1 s).
  const recvErrorBudget = ROUTINES * (RECV_ERROR_BURST + RECV_ERROR_PER_SECOND * (windowSeconds + 1));
  const recvErrorsCaptured = readPcapUdp(recvErrFile).length;
  const recvErrorsToAttacker = Object.entries(back.received as Record<string, number>)
    .filter(([k]) => k === `${b.underlayIp}:type2`)
    .reduce((n, [, v]) => n + v, 0);
  t.ok(
    deltas['messages.tx.recv_error']! <= recvErrorBudget,
    `recvErrors sent by b (messages.tx.recv_error): ${deltas['messages.tx.recv_error']} <= ${recvErrorBudget} = ${ROUTINES} x (${RECV_ERROR_BURST} + ${RECV_ERROR_PER_SECOND} x (${windowSeconds} + 1)); ${deltas['routine.dropped.recv_error_limited']} held back by the limit`,
  );
  t.ok(recvErrorsCaptured <= recvErrorBudget, `recvErrors leaving b on the wire (tcpdump): ${recvErrorsCaptured} <= ${recvErrorBudget} (the attacker received ${recvErrorsToAttacker})`);
  t.ok(deltas['messages.tx.recv_error']! + deltas['routine.dropped.recv_error_limited']! > recvErrorBudget, 'and the flood did ask for more recvErrors than that (the limit was exercised)');
  // Handshakes handed up to the supervisor: the whole flood comes from one source IP.
  const handedUp = deltas['messages.rx.handshake_ixpsk0']! - deltas['routine.dropped.handshake_limited']!;
  const handshakeBudget = ROUTINES * (HANDSHAKE_SOURCE_BURST + HANDSHAKES_PER_SOURCE_PER_SECOND * (windowSeconds + 1));
  t.ok(handedUp <= handshakeBudget, `handshake datagrams handed up to b's supervisor: ${handedUp} <= ${handshakeBudget} (${deltas['routine.dropped.handshake_limited']} shed)`);
  const logged: Record<string, number> = {};
  for (const l of b.output.slice(logFrom)) {
    const m = /msg="([^"]*)"/.exec(l)?.[1] ?? l.slice(0, 60);
    logged[m] = (logged[m] ?? 0) + 1;
  }
  t.comment(`b's log lines during the flood, by message: ${JSON.stringify(logged)}`);

  // Responsive right after the flood: status answered (above), the tunnel untouched and carrying traffic.
  t.comment(`b's tunnels after the flood: ${JSON.stringify(after.tunnels.map((tn) => `${tn.name}@${tn.remote}`))}`);
  t.equal(after.tunnels.find((tn) => tn.vpnIp === A)?.localIndex, tunnelToA.localIndex, "b's tunnel to a is the same tunnel");
  t.equal(after.tunnels.find((tn) => tn.vpnIp === A)?.remote, `${a.underlayIp}:${PORT}`, "and still points at a's address (no roaming to a replayer)");

  // The transfer.
  const [gotSent, gotReceived] = await Promise.all([sent, received]);
  const expected = streamSha256(transferSeed, TRANSFER_BYTES);
  t.equal(gotSent.sha256, expected, `a sent the 20 MB it meant to (${JSON.stringify(gotSent)})`);
  t.equal(gotReceived.bytes, TRANSFER_BYTES, `b received ${String(gotReceived.bytes)} bytes`);
  t.equal(gotReceived.sha256, expected, 'byte-identical (sha256)');
  const overlap = (Math.min(transferEndedAt, floodSent) - floodStarted) / Math.max(1, floodSent - floodStarted);
  t.comment(
    `transfer: ${transferEndedAt - transferStarted} ms (from the client's start); flood from +${floodStarted - transferStarted} ms to +${floodSent - transferStarted} ms; ` +
      `${Math.round(overlap * 100)}% of the flood's duration overlapped the transfer` +
      (transferEndedAt > floodSent ? ' (the transfer outlasted the flood)' : ` (the transfer ended ${floodSent - transferEndedAt} ms before the last flood datagram)`),
  );

  t.ok((await mesh.ping('a', B, 3, 2)) >= 1, 'a -> b ping through the tunnel after the flood');
  t.ok((await mesh.ping('b', A, 3, 2)) >= 1, 'b -> a ping through the tunnel after the flood');

  // No restart.
  const end = await status(mesh, 'b');
  t.equal(b.process!.exitCode, null, "b's supervisor is still running");
  t.ok(alive(supervisorPid), `same supervisor process (${supervisorPid})`);
  t.same(
    end.routines.map((r) => r.pid),
    routinePids,
    `routine pids unchanged (${routinePids.join(', ')})`,
  );
  t.same(
    end.routines.map((r) => r.restarts),
    routinePids.map(() => 0),
    'no routine restarts',
  );
  t.same(childrenOf(supervisorPid), [...routinePids].sort((p, q) => p - q), 'no other child appeared');
  t.same(linesMatching(mesh, 'b', /Routine exited|level=fatal|panic/), [], 'nothing exited or panicked');

  // Memory.
  const rssAfter = rssOf(supervisorPid) + routinePids.reduce((n, p) => n + rssOf(p), 0);
  t.comment(`b's RSS (supervisor + ${ROUTINES} routines): ${MiB(rssBefore)} before the flood, ${MiB(rssAfter)} after the transfer`);
  t.ok(rssAfter - rssBefore < RSS_LIMIT, `RSS grew by ${MiB(rssAfter - rssBefore)} < ${MiB(RSS_LIMIT)}`);
  t.comment(`test ran ${Date.now() - testStarted} ms`);
});

