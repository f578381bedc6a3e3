/**
 * Issue 3 acceptance, part 1: tunnels between nebula-ts and nebula-ts, and between nebula-ts and Go nebula 1.6.1,
 * with each implementation as the handshake initiator, under both ciphers. Each tunnel carries pings both ways
 * and a 20 MB TCP transfer that must arrive byte-identical (sha256 on both ends and computed here).
 *
 * Who initiates is forced through the static host maps (a node cannot initiate towards a peer it has no address
 * for) and then checked in the logs: the initiator logs stage 1 sent / stage 2 received, the responder logs
 * stage 1 received / stage 2 sent, and the responder never sends a stage 1 to that peer.
 */
import t, { type Test } from 'tap';
import { prereqs } from '../helpers/prereq';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { linesMatching, newMesh, status, tcpTransfer } from './helpers';

const IP = { t1: '192.168.100.1', t2: '192.168.100.2', g1: '192.168.100.3', g2: '192.168.100.4' } as const;
const TRANSFER_BYTES = 20 * 1024 * 1024;

/** A handshake log line (both implementations write handshake="map[stage:1 style:ix_psk0]"). */
function handshakeRe(msg: 'Handshake message sent' | 'Handshake message received', stage: 1 | 2, peerIp: string): RegExp {
  return new RegExp(`^(?=.*msg="${msg}")(?=.*stage(\\\\?":|:)${stage}\\b)(?=.*\\bvpnIp=${peerIp.replace(/\./g, '\\.')}(\\s|$))`);
}

function handshakeLines(mesh: Mesh, node: string, msg: 'Handshake message sent' | 'Handshake message received', stage: 1 | 2, peerIp: string): string[] {
  return linesMatching(mesh, node, handshakeRe(msg, stage, peerIp));
}

async function assertInitiator(t: Test, mesh: Mesh, initiator: string, responder: string): Promise<void> {
  const [iIp, rIp] = [IP[initiator as keyof typeof IP], IP[responder as keyof typeof IP]];
  // The initiator's last word on the handshake is receiving stage 2; wait for it rather than sleeping.
  await mesh.waitForOutput(initiator, handshakeRe('Handshake message received', 2, rIp), 15_000);
  await mesh.waitForOutput(responder, handshakeRe('Handshake message sent', 2, iIp), 5_000);
  t.ok(handshakeLines(mesh, initiator, 'Handshake message sent', 1, rIp).length > 0, `${initiator} sent stage 1 to ${responder}`);
  t.ok(handshakeLines(mesh, initiator, 'Handshake message received', 2, rIp).length > 0, `${initiator} received stage 2 from ${responder}`);
  t.ok(handshakeLines(mesh, responder, 'Handshake message received', 1, iIp).length > 0, `${responder} received stage 1 from ${initiator}`);
  t.ok(handshakeLines(mesh, responder, 'Handshake message sent', 2, iIp).length > 0, `${responder} sent stage 2 to ${initiator}`);
  t.same(handshakeLines(mesh, responder, 'Handshake message sent', 1, iIp), [], `${responder} never initiated towards ${initiator}`);
}

async function pingBothWays(t: Test, mesh: Mesh, a: string, b: string): Promise<void> {
  const [aIp, bIp] = [IP[a as keyof typeof IP], IP[b as keyof typeof IP]];
  t.ok(await mesh.pingUntilReply(a, bIp, 15_000), `${a} -> ${b}: ping answered`);
  t.ok(await mesh.pingUntilReply(b, aIp, 15_000), `${b} -> ${a}: ping answered`);
  t.equal(await mesh.ping(a, bIp, 5, 2), 5, `${a} -> ${b}: 5/5 pings`);
  t.equal(await mesh.ping(b, aIp, 5, 2), 5, `${b} -> ${a}: 5/5 pings`);
}

async function transfer(t: Test, mesh: Mesh, from: string, to: string, seed: string): Promise<void> {
  const r = await tcpTransfer(mesh, from, to, IP[to as keyof typeof IP], TRANSFER_BYTES, seed);
  t.comment(`${from} -> ${to}: ${TRANSFER_BYTES} bytes in ${r.ms} ms (${((TRANSFER_BYTES * 8) / r.ms / 1000).toFixed(1)} Mbit/s)`);
  t.same(r.sent, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${from} sent the expected 20 MB`);
  t.same(r.received, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${to} received the same 20 MB, byte for byte`);
}

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`cipher ${cipher}: ts<->ts and ts<->go 1.6.1, each as initiator; pings and a 20 MB transfer`, async (t) => {
    if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
    t.setTimeout(150_000);
    const mesh = await newMesh(t, { cipher });
    // t1 knows t2 and g1 (so it initiates to both at start); t2 and g1 know nobody; g2 knows only t2 and
    // initiates to it when it has traffic.
    await mesh.add({ name: 't1', kind: 'ts', overlayIp: IP.t1, staticHosts: ['t2', 'g1'] });
    await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2, staticHosts: [] });
    await mesh.add({ name: 'g1', kind: 'go', overlayIp: IP.g1, staticHosts: [] });
    await mesh.add({ name: 'g2', kind: 'go', overlayIp: IP.g2, staticHosts: ['t2'] });
    mesh.writeConfigs();
    // Responders first, so the initiator's very first stage 1 finds them listening.
    await Promise.all([mesh.start('t2'), mesh.start('g1'), mesh.start('g2')]);
    await mesh.start('t1');
    t.match(linesMatching(mesh, 't1', /Nebula interface is active/)[0], new RegExp(`cipher=${cipher}\\b`), 'nebula-ts runs the configured cipher');

    t.test('ts initiator, ts responder', async (t) => {
      await assertInitiator(t, mesh, 't1', 't2');
      await pingBothWays(t, mesh, 't1', 't2');
      await transfer(t, mesh, 't1', 't2', `${cipher}-t1-t2`);
    });

    t.test('ts initiator, go responder', async (t) => {
      await assertInitiator(t, mesh, 't1', 'g1');
      await pingBothWays(t, mesh, 't1', 'g1');
      // Go encrypts, nebula-ts decrypts the bulk data.
      await transfer(t, mesh, 'g1', 't1', `${cipher}-g1-t1`);
    });

    t.test('go initiator, ts responder', async (t) => {
      // g2 only handshakes when it has something to send.
      t.ok(await mesh.pingUntilReply('g2', IP.t2, 15_000), 'g2 -> t2: first ping answered (g2 initiated)');
      await assertInitiator(t, mesh, 'g2', 't2');
      await pingBothWays(t, mesh, 't2', 'g2');
      // nebula-ts encrypts, Go decrypts the bulk data.
      await transfer(t, mesh, 't2', 'g2', `${cipher}-t2-g2`);
    });

    t.test('nebula-ts status lists the tunnels, routines never restarted', async (t) => {
      const s1 = await status(mesh, 't1');
      const s2 = await status(mesh, 't2');
      t.same(s1.tunnels.map((x) => x.name).sort(), ['g1', 't2'], 't1 has tunnels to t2 and g1');
      t.same(s2.tunnels.map((x) => x.name).sort(), ['g2', 't1'], 't2 has tunnels to t1 and g2');
      for (const s of [s1, s2]) {
        t.ok(s.routines.every((r) => r.restarts === 0), `${s.vpnIp}: no routine restarts`);
        t.equal(s.counters['routine.dropped.decrypt_failed'], 0, `${s.vpnIp}: nothing failed to decrypt`);
      }
    });
  });
}
