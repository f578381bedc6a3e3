/**
 * The handshake-rate benchmark's load generator without a mesh: its stage 1s are the bytes Noise IX makes and are
 * accepted by nebula-ts' own responder code; a stage 2 counts only when it completes the handshake (garbage, a
 * tampered reply, a reply meant for another handshake, a foreign CA's responder do not); the generator run on
 * loopback against an in-process responder counts real replies and none of a garbage responder's; and the pure
 * accounting (bounds, metrics, table, /proc/net/udp drops, plan limits).
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createInitiator, createResponder } from '../../src/shared/noise';
import { generateX25519KeyPair, loadCAPool, signCert, validateHandshakeCert, type CAPool, type NebulaCertificate } from '../../src/shared/pki';
import { encodeHandshake } from '../../src/shared/protocol/handshake-payload';
import { HEADER_LEN, writeHeader } from '../../src/shared/protocol/header';
import { formatIPv4, parseIPv4 } from '../../src/shared/util/ipv4';
import { buildStage2, openHandshakePayload } from '../../src/supervisor/handshake-messages';
import { makeCA, type MeshCA } from '../../src/testbed/mesh-pki';
import { runLoad } from '../../src/bench/handshake-generator';
import { buildStage1, makeEphemerals, makeInitiators, matchStage2, Stage2Verifier } from '../../src/bench/handshake-initiators';
import { planError, sourceAddress, type LoadPlan } from '../../src/bench/handshake-plan';
import { answeredShare, boundOf, completed, handshakeMetrics, handshakeTable, type HandshakeRun, type StepResult } from '../../src/bench/handshake-report';
import { backlogDrops, counterDelta, udpDrops } from '../../src/bench/handshake-sampler';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hs-rate-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(path.join(dir, 'ca'));
const pool = loadCAPool(ca.cert.toPem()).pool;

/** A host identity signed by `by` (a responder). */
function host(by: MeshCA, ip: string): { cert: NebulaCertificate; privateKey: Buffer } {
  const kp = generateX25519KeyPair();
  const now = Math.floor(Date.now() / 1000);
  const cert = signCert(
    { name: 'responder', ips: [{ ip: parseIPv4(ip)!, mask: 0xffff0000 }], subnets: [], groups: [], notBefore: now - 60, notAfter: now + 3600, publicKey: kp.publicKey, isCA: false, issuer: by.cert.fingerprint() },
    by.privateKey,
  );
  return { cert, privateKey: kp.privateKey };
}
const responder = host(ca, '192.168.100.1');

/** nebula-ts' responder code, in process: read the stage 1, check its payload and cert, answer with a stage 2. */
function respond(stage1: Buffer, r = responder, caPool: CAPool = pool, payloadIndex?: number): { reply: Buffer; vpnIp: number; time: bigint } {
  const noise = createResponder({ cipher: 'aes', staticPrivate: r.privateKey });
  const { payload, peerStatic } = noise.readMessage1(stage1.subarray(HEADER_LEN));
  const opened = openHandshakePayload(payload, peerStatic, caPool);
  if (!opened.ok) throw new Error(`responder refused the stage 1: ${opened.message} ${opened.error ?? ''}`);
  const reply = buildStage2(noise, r.cert, opened.details.initiatorIndex, 77);
  // A reply addressed (header) to the stage 1's index whose payload names another index.
  if (payloadIndex !== undefined) {
    const forged = buildStage2(createResponderFor(stage1, r), r.cert, payloadIndex, 77);
    forged.writeUInt32BE(opened.details.initiatorIndex, 4);
    return { reply: forged, vpnIp: opened.cert.vpnIp!, time: opened.details.time };
  }
  return { reply, vpnIp: opened.cert.vpnIp!, time: opened.details.time };
}

function createResponderFor(stage1: Buffer, r: { privateKey: Buffer }): ReturnType<typeof createResponder> {
  const noise = createResponder({ cipher: 'aes', staticPrivate: r.privateKey });
  noise.readMessage1(stage1.subarray(HEADER_LEN));
  return noise;
}

const BASE = 0x40000000;
const [alice, bob] = makeInitiators(ca, 2, parseIPv4('192.168.101.254')!, 16);
const [e1, e2] = makeEphemerals(2);

t.test('initiators: distinct VPN addresses skipping .0 and .255, certificates the CA pool accepts', async (t) => {
  t.equal(formatIPv4(alice!.vpnIp), '192.168.101.254');
  t.equal(formatIPv4(bob!.vpnIp), '192.168.102.1');
  const cert = validateHandshakeCert(alice!.certBytes, alice!.publicKey, pool);
  t.equal(cert.vpnIp, alice!.vpnIp);
  t.equal(cert.details.ips[0]!.mask, 0xffff0000);
});

t.test('a stage 1 is the bytes Noise IX makes with the same keys, framed as stage 1', async (t) => {
  const time = 1_700_000_000_000_000_123n;
  const stage1 = buildStage1(alice!, e1!, BASE + 5, time);
  const noise = createInitiator({ cipher: 'aes', staticPrivate: alice!.privateKey, ephemeralPrivate: e1!.privateRaw });
  const payload = encodeHandshake({ details: { cert: alice!.certBytes, initiatorIndex: BASE + 5, responderIndex: 0, cookie: 0n, time } });
  const header = Buffer.alloc(HEADER_LEN);
  writeHeader(header, 0, 0, 0, 0, 0, 1);
  t.same(stage1, Buffer.concat([header, noise.writeMessage1(payload)]));
});

t.test('nebula-ts accepts the stage 1 and its stage 2 is matched and counted', async (t) => {
  const time = 1_700_000_000_000_000_500n;
  const stage1 = buildStage1(alice!, e1!, BASE + 3, time);
  const { reply, vpnIp, time: seenTime } = respond(stage1);
  t.equal(vpnIp, alice!.vpnIp, 'the responder saw the initiator of the certificate');
  t.equal(seenTime, time);
  t.equal(matchStage2(reply, BASE, 10), 3);
  t.equal(new Stage2Verifier(pool, 'aes').verify(alice!, e1!, stage1, reply), undefined);
});

t.test('a reply that would not make a tunnel is not counted', async (t) => {
  const verifier = new Stage2Verifier(pool, 'aes');
  const stage1 = buildStage1(alice!, e1!, BASE + 1, 1n);
  const { reply } = respond(stage1);

  const garbage = Buffer.concat([reply.subarray(0, HEADER_LEN), randomBytes(reply.length - HEADER_LEN)]);
  t.equal(matchStage2(garbage, BASE, 10), 1, 'garbage with a stage 2 header passes the cheap match...');
  t.match(verifier.verify(alice!, e1!, stage1, garbage), /^noise:/, '...but not verification');

  const tampered = Buffer.from(reply);
  tampered[tampered.length - 1]! ^= 1;
  t.match(verifier.verify(alice!, e1!, stage1, tampered), /^noise:/);

  // Bob's genuine stage 2, re-addressed to Alice's attempt: another handshake's keys.
  const bobStage1 = buildStage1(bob!, e2!, BASE + 2, 2n);
  const bobReply = Buffer.from(respond(bobStage1).reply);
  bobReply.writeUInt32BE(BASE + 1, 4);
  t.equal(matchStage2(bobReply, BASE, 10), 1);
  t.match(verifier.verify(alice!, e1!, stage1, bobReply), /^noise:/);

  const wrongIndex = respond(stage1, responder, pool, BASE + 9).reply;
  t.equal(verifier.verify(alice!, e1!, stage1, wrongIndex), 'wrong initiator index');

  // A responder whose certificate another CA signed (it accepts our CA, we do not accept its).
  const otherCA = makeCA(path.join(dir, 'other-ca'), 'other CA');
  const stranger = host(otherCA, '192.168.100.9');
  const strangerReply = respond(stage1, stranger).reply;
  t.match(verifier.verify(alice!, e1!, stage1, strangerReply), /^certificate:/);
});

t.test('the cheap match refuses what is no stage 2 to one of our attempts', async (t) => {
  const { reply } = respond(buildStage1(alice!, e1!, BASE + 4, 4n));
  t.equal(matchStage2(reply.subarray(0, 60), BASE, 10), -1, 'too short');
  t.equal(matchStage2(reply, BASE, 4), -1, 'index past the attempts');
  t.equal(matchStage2(reply, BASE + 5, 10), -1, 'index below the base');
  const counter1 = Buffer.from(reply);
  counter1.writeUInt32BE(1, 12);
  t.equal(matchStage2(counter1, BASE, 10), -1, 'counter 1');
  const test = Buffer.from(reply);
  test[0] = 0x14; // type test
  t.equal(matchStage2(test, BASE, 10), -1, 'another type');
});

/** An in-process responder on loopback: nebula-ts' responder code, or (garbage) header-shaped noise plus a test packet. */
async function loopbackResponder(mode: 'real' | 'garbage'): Promise<{ port: number; junkSent: () => number; close: () => void }> {
  const socket = dgram.createSocket('udp4');
  let junk = 0;
  socket.on('message', (msg, from) => {
    let reply: Buffer;
    if (mode === 'real') reply = respond(msg).reply;
    else {
      reply = Buffer.concat([Buffer.alloc(HEADER_LEN), randomBytes(300)]);
      writeHeader(reply, 0, 0, 0, initiatorIndexOf(msg), 0, 2);
      const other = Buffer.alloc(HEADER_LEN + 20);
      writeHeader(other, 0, 4, 0, 12345, 0, 1);
      socket.send(other, from.port, from.address);
      junk++;
    }
    socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, junkSent: () => junk, close: () => socket.close() };
}

/** The initiator index a stage 1 carries (decoded the responder's way). */
function initiatorIndexOf(stage1: Buffer): number {
  const noise = createResponder({ cipher: 'aes', staticPrivate: responder.privateKey });
  const { payload, peerStatic } = noise.readMessage1(stage1.subarray(HEADER_LEN));
  const opened = openHandshakePayload(payload, peerStatic, pool);
  if (!opened.ok) throw new Error('bad stage 1');
  return opened.details.initiatorIndex;
}

function plan(port: number): LoadPlan {
  return {
    caCertPem: ca.cert.toPem(),
    caKeyHex: ca.privateKey.toString('hex'),
    cipher: 'aes',
    target: { ip: '127.0.0.1', port },
    sources: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
    firstVpnIp: '192.168.101.1',
    vpnPrefix: 16,
    rates: [100],
    stepMs: 450,
    warmFraction: 1 / 3,
    verifyPerStep: 1000,
    ephemerals: 7,
    responderPid: process.pid,
    responderPort: port,
  };
}

t.test('on loopback, every reply of a real responder completes and is counted', async (t) => {
  const r = await loopbackResponder('real');
  t.teardown(r.close);
  const result = await runLoad(plan(r.port));
  const [step] = result.steps;
  t.equal(result.steps.length, 1);
  t.ok(step!.matched > 0, `replies in the window: ${step!.matched}`);
  t.equal(step!.sampled, step!.matched, 'every reply sampled');
  t.equal(step!.verified, step!.matched, 'and every one completed');
  t.same(step!.failures, {});
  t.equal(completed(step!), step!.matched);
  t.equal(result.otherReplies, 0);
  t.equal(result.duplicateReplies, 0);
});

t.test('on loopback, a garbage responder completes nothing, and its other datagrams are counted apart', async (t) => {
  const r = await loopbackResponder('garbage');
  t.teardown(r.close);
  const result = await runLoad(plan(r.port));
  const [step] = result.steps;
  t.ok(step!.matched > 0, 'garbage shaped as stage 2s passes the cheap match');
  t.equal(step!.verified, 0);
  t.equal(completed(step!), 0);
  t.equal(result.otherReplies, r.junkSent(), 'every non-handshake datagram it sent');
  t.match(boundOf(step!), /failing verification/);
});

const step = (over: Partial<StepResult>): StepResult => ({
  rate: 1000, windowS: 1, sent: 1000, sendErrors: 0, matched: 1000, late: 0, sampled: 100, verified: 100, failures: {}, latencyMs: 1,
  responderCpuS: 0.5, generatorCpuS: 0.1, responderRunS: 0.5, responderWaitS: 0.1, responderSocketDrops: 0, generatorSocketDrops: 0, backlogDrops: 0, ...over,
});

t.test('completed handshakes scale the matched replies by the verified share of the sample', async (t) => {
  t.equal(completed(step({ matched: 800, sampled: 100, verified: 75 })), 600);
  t.equal(completed(step({ matched: 800, sampled: 0, verified: 0 })), 0);
  t.equal(answeredShare(step({ sent: 1000, matched: 500 })), 0.5);
});

t.test('what bounded a step is read from its evidence', async (t) => {
  t.match(boundOf(step({})), /not saturated/);
  const limited = step({ matched: 500, handshakesRx: 1000, limited: 500, refused: 0, supervisorRunS: 0.5, supervisorWaitS: 0.1 });
  t.equal(boundOf(limited), 'handshake limiter (shed 50 %)');
  const go = step({ matched: 300, responderSocketDrops: 700, responderRunS: 0.7, responderWaitS: 0.3 });
  t.equal(boundOf(go), 'responder socket overflowed (70 % dropped: not read fast enough); responder CPU (ran 0.70 + waited 0.30 cores)');
  const supervisor = step({ matched: 400, refused: 3, supervisorRunS: 0.6, supervisorWaitS: 0.35, responderRunS: 1.1, latencyMs: 2500 });
  t.equal(boundOf(supervisor), 'host map full, tunnels.max (3 refused); supervisor event loop saturated (ran 0.60 + waited 0.35 cores); stage 1s queue before the handshake code (median answer after 2.5 s)');
  t.equal(boundOf(step({ matched: 500, backlogDrops: 400 })), 'kernel input backlog dropped 400 (softirqs starved: machine overloaded)');
  t.match(boundOf(step({ matched: 100 })), /90 % unanswered, cause not seen/);
});

t.test('run metrics: the top step is the sustained rate, the lowest the unloaded cost', async (t) => {
  const low = step({ rate: 250, sent: 250, matched: 250, responderCpuS: 0.25, latencyMs: 2 });
  const mid = step({ rate: 1000, matched: 900, responderCpuS: 0.9 });
  const top = step({ rate: 4000, sent: 4000, matched: 800, responderCpuS: 1.6, generatorCpuS: 0.3, responderWaitS: 0.5, latencyMs: 300, windowS: 2 });
  const m = handshakeMetrics([low, mid, top]);
  t.equal(m.hs_per_s, 400);
  t.equal(m.hs_peak_per_s, 900);
  t.equal(m.hs_cpu_s_per_1000, 2);
  t.equal(m.hs_cpu_s_per_1000_low, 1);
  t.equal(m.hs_latency_ms_low, 2);
  t.equal(m.hs_answered_top, 0.2);
  t.equal(m.hs_responder_cpus_top, 0.8);
  t.equal(m.hs_generator_cpus_top, 0.15);
  t.equal(m.hs_responder_wait_top, 0.25);
  t.equal(m.hs_latency_ms_top, 300);
  t.equal(m.hs_supervisor_cpus_top, undefined, 'Go: no supervisor');
  t.equal(handshakeMetrics([step({ supervisorRunS: 0.75, supervisorWaitS: 0.1 })]).hs_supervisor_cpus_top, 0.75);
});

t.test('the table orients ratios so > 1 is better, and names each implementation\'s bound', async (t) => {
  const rec = (impl: string, rep: number, hs: number, cpu: number, bound: string): HandshakeRun => ({ impl, cipher: 'aes', routines: 1, rep, load1: 1, metrics: { hs_per_s: hs, hs_cpu_s_per_1000: cpu }, bound });
  const text = handshakeTable([rec('go', 0, 2000, 0.5, 'responder CPU'), rec('ts', 0, 500, 2, 'handshake limiter'), rec('go', 1, 3000, 0.5, 'responder CPU'), rec('ts', 1, 700, 2, 'handshake limiter')], ['go', 'ts']);
  t.match(text, /\| handshakes completed per s, sustained \(top offered rate\) \| 2500 \| 600 \| 0\.24 \|/);
  t.match(text, /\| responder CPU-s per 1000 handshakes \(top rate\) \| 0\.50 \| 2\.00 \| 0\.25 \|/);
  t.match(text, /ts top step bounded by: handshake limiter/);
});

t.test('socket drops are read from /proc/net/udp, for one port or all', async (t) => {
  const table = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  123: 0100000A:1092 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1111 2 0000000000000000 17',
    '  124: 0200620A:A001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1112 2 0000000000000000 5',
  ].join('\n');
  t.equal(udpDrops(table, 4242), 17);
  t.equal(udpDrops(table), 22);
  const udp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  500: 00000000000000000000000000000000:1092 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2221 2 0000000000000000 1234',
  ].join('\n');
  t.equal(udpDrops(udp6, 4242), 1234, 'Go nebula binds an AF_INET6 socket');
  t.equal(backlogDrops('0ab58d7a 00000010 00000002\n0a6812da 0000000a 00000003\n'), 26);
  t.equal(counterDelta({ a: 1 }, { a: 4, b: 2 }, 'b'), 2, 'a supervisor counter absent before is 0');
  t.equal(counterDelta(undefined, { a: 4 }, 'a'), undefined);
});

t.test('plans are bounded', async (t) => {
  const ok = { rates: [100], stepMs: 1000, sources: ['10.98.1.1'], warmFraction: 0.3 };
  t.equal(planError(ok), undefined);
  t.match(planError({ ...ok, rates: [] }), /rates/);
  t.match(planError({ ...ok, rates: [100_000, 100_000, 100_000] }), /at most 250000/);
  t.match(planError({ ...ok, sources: [] }), /initiators/);
  t.equal(sourceAddress(0), '10.98.1.1');
  t.equal(sourceAddress(250), '10.98.2.1');
});
