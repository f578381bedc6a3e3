/**
 * Issue 3 acceptance, part 4: hostile datagrams at a nebula-ts node with a live tunnel.
 *  - a captured data packet (type 1) sent again is dropped as a duplicate and nothing is delivered twice;
 *  - a valid header followed by garbage fails to decrypt and is dropped;
 *  - a truncated header is counted invalid and dropped;
 *  - handshakes (type 0, counter 1) with malformed payloads are dropped;
 * and none of it crashes anything: routine pids unchanged, 0 restarts, the supervisor alive, the tunnel untouched
 * and still carrying traffic.
 * The packets come from a spare namespace (`x`, never started) on the same underlay.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { prereqs } from '../helpers/prereq';
import { linesMatching, newMesh, status, udpTool, waitForStatus, waitUntil, type NodeStatus } from './helpers';

const A = '192.168.100.1';
const B = '192.168.100.2';

/** The UDP payloads of an Ethernet pcap stream (tcpdump -w -). */
function udpPayloadsFromPcap(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (buf.length < 24) return out;
  const le = buf.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  for (let off = 24; off + 16 <= buf.length; ) {
    const incl = u32(off + 8);
    const frame = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[14 + 9] !== 17) continue;
    const udp = frame.subarray(14 + ihl);
    out.push(Buffer.from(udp.subarray(8, udp.readUInt16BE(4))));
  }
  return out;
}

/** Refused stage 1s. Go 1.6.1 logs a payload that is not a NebulaHandshake as "Failed unmarshal handshake message". */
const failRe = /msg="(Failed to call noise\.ReadMessage|Failed unmarshal handshake message)"/;

const routineTotal = (s: NodeStatus, k: 'insideTx' | 'insideRx' | 'outsideRx' | 'outsideTx'): number => s.routines.reduce((n, r) => n + r[k], 0);

t.test('replayed, garbage, truncated and malformed-handshake datagrams are dropped without harm', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula', 'tcpdump'])) return;
  t.setTimeout(90_000);
  const mesh = await newMesh(t, { cipher: 'aes' });
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, staticHosts: ['b'] });
  const b = await mesh.add({ name: 'b', kind: 'ts', overlayIp: B, staticHosts: ['a'] });
  await mesh.add({ name: 'x', kind: 'ts', overlayIp: '192.168.100.9', staticHosts: [] });
  mesh.writeConfigs();
  await Promise.all([mesh.start('a'), mesh.start('b')]);
  t.ok(await mesh.pingUntilReply('a', B, 15_000), 'a -> b tunnel up');
  const initial = await status(mesh, 'b');
  const tunnelToA = initial.tunnels.find((x) => x.vpnIp === A)!;
  t.ok(tunnelToA, 'b has a tunnel to a');
  const send = (packets: Buffer[]): Promise<Record<string, unknown>> =>
    udpTool(mesh, 'x', { op: 'send', to: b.underlayIp, port: 4242, packets: packets.map((p) => p.toString('hex')) });

  // Capture one a -> b data packet (first payload byte 0x11: version 1, type 1 message) in b's namespace.
  const dump = spawn('ip', ['netns', 'exec', b.ns, 'tcpdump', '-i', 'eth0', '-n', '-U', '-c', '1', '-w', '-', `udp dst port 4242 and src host ${a.underlayIp} and udp[8] = 0x11`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (dump.exitCode === null && dump.signalCode === null) dump.kill('SIGKILL');
  });
  const pcap: Buffer[] = [];
  dump.stdout.on('data', (c: Buffer) => pcap.push(c));
  const dumpDone = new Promise<void>((resolve) => dump.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    dump.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  t.equal(await mesh.ping('a', B, 1, 2), 1, 'a -> b: one ping (captured)');
  await dumpDone;
  const [captured] = udpPayloadsFromPcap(Buffer.concat(pcap));
  t.ok(captured && captured.length > 16 + 16, 'captured a type-1 datagram');
  if (!captured) return;
  t.equal(captured.readUInt32BE(4), tunnelToA.localIndex, "its remote index is b's local index for the tunnel");
  const counter = captured.readUInt32BE(12);

  const pidsBefore = initial.routines.map((r) => r.pid);
  const supervisorPid = b.process!.pid;

  t.test('a replayed data packet is dropped as a duplicate, nothing delivered twice', async (t) => {
    const s0 = await status(mesh, 'b');
    const a0 = await status(mesh, 'a');
    await send([captured]);
    const s1 = await waitForStatus(mesh, 'b', (s) => s.counters['network.packets.duplicate']! > s0.counters['network.packets.duplicate']!, 5000, 'duplicate counted');
    t.equal(s1.counters['network.packets.duplicate']! - s0.counters['network.packets.duplicate']!, 1, 'network.packets.duplicate +1');
    t.equal(routineTotal(s1, 'insideTx'), routineTotal(s0, 'insideTx'), 'b wrote nothing more to its tun');
    t.equal(routineTotal(s1, 'outsideTx'), routineTotal(s0, 'outsideTx'), 'b sent nothing (no echo reply to a replayed request)');
    const a1 = await status(mesh, 'a');
    t.equal(routineTotal(a1, 'insideTx'), routineTotal(a0, 'insideTx'), 'a received no second echo reply');
    t.equal(s1.tunnels.find((x) => x.vpnIp === A)?.remote, `${a.underlayIp}:4242`, "b did not roam a's tunnel to the replayer's address");
  });

  t.test('a valid header with garbage after it fails to decrypt and is dropped', async (t) => {
    const s0 = await status(mesh, 'b');
    const forged = Buffer.concat([captured.subarray(0, 16), randomBytes(captured.length - 16)]);
    forged.writeUInt32BE(counter + 50, 12); // fresh counter, inside the window: only the AEAD can reject it
    await send([forged]);
    const s1 = await waitForStatus(mesh, 'b', (s) => s.counters['routine.dropped.decrypt_failed']! > s0.counters['routine.dropped.decrypt_failed']!, 5000, 'decrypt failure counted');
    t.equal(s1.counters['routine.dropped.decrypt_failed']! - s0.counters['routine.dropped.decrypt_failed']!, 1, 'routine.dropped.decrypt_failed +1');
    t.equal(routineTotal(s1, 'insideTx'), routineTotal(s0, 'insideTx'), 'nothing written to the tun');
    t.equal(s1.tunnels.find((x) => x.vpnIp === A)?.localIndex, tunnelToA.localIndex, 'tunnel untouched');
  });

  t.test('a forged closeTunnel (right index, no valid tag) does not tear the tunnel down', async (t) => {
    // Nebula 1.6.1 acts on closeTunnel after the replay check alone (spec §6.3); we only act on one that decrypts.
    const s0 = await status(mesh, 'b');
    const from = b.output.length;
    const forged = Buffer.concat([captured.subarray(0, 16), randomBytes(16)]); // header + a random "tag"
    forged[0] = 0x15; // version 1, type 5 closeTunnel
    forged[1] = 0;
    forged.writeUInt32BE(counter + 60, 12);
    await send([forged]);
    const s1 = await waitForStatus(mesh, 'b', (s) => s.counters['routine.dropped.decrypt_failed']! > s0.counters['routine.dropped.decrypt_failed']!, 5000, 'forged closeTunnel rejected');
    t.equal(s1.counters['messages.rx.close_tunnel'], s0.counters['messages.rx.close_tunnel'], 'not counted as a closeTunnel');
    t.equal(s1.tunnels.find((x) => x.vpnIp === A)?.localIndex, tunnelToA.localIndex, 'the tunnel is still there');
    t.same(linesMatching(mesh, 'b', /close tunnel/i, from), [], 'no close logged');
    t.equal(await mesh.ping('a', B, 2, 2), 2, 'and still carries traffic');
  });

  t.test('a truncated header is counted invalid and dropped', async (t) => {
    const s0 = await status(mesh, 'b');
    await send([captured.subarray(0, 10)]);
    const s1 = await waitForStatus(mesh, 'b', (s) => s.counters['messages.rx.invalid']! > s0.counters['messages.rx.invalid']!, 5000, 'invalid message counted');
    t.equal(s1.counters['messages.rx.invalid']! - s0.counters['messages.rx.invalid']!, 1, 'messages.rx.invalid +1');
    t.equal(routineTotal(s1, 'insideTx'), routineTotal(s0, 'insideTx'), 'nothing written to the tun');
  });

  t.test('handshakes (type 0, counter 1) with malformed payloads are dropped', async (t) => {
    const stage1Header = Buffer.from('10000000' + '00000000' + '0000000000000001', 'hex');
    const bad = (re: RegExp): string[] => linesMatching(mesh, 'b', re);
    const before = bad(failRe).length;
    const from = b.output.length;
    // Random bytes where the Noise message should be; one too short to hold even the two public keys.
    await send([Buffer.concat([stage1Header, randomBytes(150)]), Buffer.concat([stage1Header, randomBytes(7)])]);
    // A genuine Noise stage 1 whose payload is not a NebulaHandshake protobuf.
    await udpTool(mesh, 'x', { op: 'handshake', to: b.underlayIp, port: 4242, cipher: 'aes', cert: `${mesh.node('x').dir}/x.crt`, key: `${mesh.node('x').dir}/x.key`, payload: 'junk', waitMs: 0 });
    // A stage 1 header with nothing after it at all.
    await send([stage1Header]);
    await waitUntil(() => bad(failRe).length >= before + 4, 5000);
    const lines = bad(failRe).slice(before);
    t.equal(lines.length, 4, `b logged 4 refusals:\n${lines.join('\n')}`);
    t.ok(lines.every((l) => /stage:1/.test(l) && l.includes(`udpAddr="${mesh.node('x').underlayIp}:`)), 'each names stage 1 and the sender');
    t.same(linesMatching(mesh, 'b', /msg="Handshake message sent"/, from), [], 'b answered none of them');
    const s = await status(mesh, 'b');
    t.same(s.tunnels.map((x) => x.vpnIp), [A], 'no new tunnel');
  });

  t.test('nothing crashed; the tunnel still carries traffic', async (t) => {
    const s = await status(mesh, 'b');
    t.same(s.routines.map((r) => r.pid), pidsBefore, 'routine pids unchanged');
    t.ok(s.routines.every((r) => r.restarts === 0), 'no routine restarts');
    t.equal(b.process!.exitCode, null, 'b supervisor still running');
    t.equal(b.process!.pid, supervisorPid, 'same supervisor process');
    t.equal(s.tunnels.find((x) => x.vpnIp === A)?.localIndex, tunnelToA.localIndex, 'same tunnel as before');
    t.equal(await mesh.ping('a', B, 3, 2), 3, 'a -> b: 3/3 pings');
    t.equal(await mesh.ping('b', A, 3, 2), 3, 'b -> a: 3/3 pings');
    t.same(linesMatching(mesh, 'b', /level=(error|fatal|panic)/).filter((l) => !failRe.test(l)), [], 'b logged no other errors');
  });
});
