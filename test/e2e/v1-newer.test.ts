/**
 * Issue 12: with v1 certificates, nebula-ts keeps interoperating with the newer Go nebula releases too: 1.9.3
 * (Debian stable, the last v1-only release) and 1.11.0 (the newest), each cipher, each side initiating once.
 *
 *   aes:        t -> g19 (nebula-ts initiates),  g111 -> t (Go 1.11.0 initiates)
 *   chachapoly: g19 -> t (Go 1.9.3 initiates),   t -> g111 (nebula-ts initiates)
 *
 * Each tunnel: 5/5 pings both ways and a byte-identical TCP transfer. Who initiated is read from nebula-ts's log.
 */
import t, { type Test } from 'tap';
import { goBinaryPrefix } from '../../src/testbed/mesh-v2';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { needGoNebula } from '../helpers/go-nebula';
import { linesMatching, newMesh, tcpTransfer } from './helpers';

const IP = { t: '192.168.100.1', g19: '192.168.100.2', g111: '192.168.100.3' } as const;
type Name = keyof typeof IP;
const TRANSFER_BYTES = 2 * 1024 * 1024;


/** nebula-ts's own log line for a stage 1 it sent to `peer`. */
const sentStage1 = (peer: Name): RegExp => new RegExp(`^(?=.*msg="Handshake message sent")(?=.*stage(\\\\?":|:)1\\b)(?=.*\\bvpnIp=${IP[peer].replace(/\./g, '\\.')}(\\s|$))`);

async function tunnel(t: Test, mesh: Mesh, initiator: Name, responder: Name): Promise<void> {
  t.ok(await mesh.pingUntilReply(initiator, IP[responder], 15_000), `${initiator} -> ${responder}: ping answered`);
  const peer: Name = initiator === 't' ? responder : initiator;
  const tSent = linesMatching(mesh, 't', sentStage1(peer)).length > 0;
  t.equal(tSent, initiator === 't', initiator === 't' ? 'nebula-ts sent the stage 1' : 'nebula-ts only answered');
  const [ab, ba] = await Promise.all([mesh.ping(initiator, IP[responder], 5, 2), mesh.ping(responder, IP[initiator], 5, 2)]);
  t.same([ab, ba], [5, 5], '5/5 pings each way');
  const r = await tcpTransfer(mesh, initiator, responder, IP[responder], TRANSFER_BYTES, `v1-${initiator}-${responder}`);
  t.same(r.received, { bytes: TRANSFER_BYTES, sha256: r.expected }, `${responder} received ${TRANSFER_BYTES} bytes byte for byte`);
}

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`v1 certificates, ${cipher}: nebula-ts with Go nebula 1.9.3 and 1.11.0`, async (t) => {
    if (!prereqs(t, ['root', 'tun'])) return;
    const go19 = needGoNebula(t, '1.9.3')?.nebula;
    const go111 = needGoNebula(t, '1.11.0')?.nebula;
    if (!go19 || !go111) return;
    t.setTimeout(90_000);
    const mesh = await newMesh(t, { cipher });
    // aes: t initiates to g19, g111 to t; chachapoly: the other way round.
    const tInitiatesTo: Name = cipher === 'aes' ? 'g19' : 'g111';
    const goInitiator: Name = cipher === 'aes' ? 'g111' : 'g19';
    await mesh.add({ name: 't', kind: 'ts', overlayIp: IP.t, staticHosts: [tInitiatesTo] });
    await mesh.add({ name: 'g19', kind: 'go', overlayIp: IP.g19, staticHosts: goInitiator === 'g19' ? ['t'] : [], commandPrefix: goBinaryPrefix(go19) });
    await mesh.add({ name: 'g111', kind: 'go', overlayIp: IP.g111, staticHosts: goInitiator === 'g111' ? ['t'] : [], commandPrefix: goBinaryPrefix(go111) });
    mesh.writeConfigs();
    await Promise.all([mesh.start('g19'), mesh.start('g111')]);
    await mesh.start('t');
    t.match(linesMatching(mesh, 'g19', /Nebula interface is active/)[0], /\bbuild=1\.9\.3\b/, 'g19 runs Go 1.9.3');
    t.match(linesMatching(mesh, 'g111', /Nebula interface is active/)[0], /\bbuild=1\.11\.0\b/, 'g111 runs Go 1.11.0');
    await t.test(`nebula-ts initiates to ${tInitiatesTo}`, (t) => tunnel(t, mesh, 't', tInitiatesTo));
    await t.test(`${goInitiator} initiates to nebula-ts`, (t) => tunnel(t, mesh, goInitiator, 't'));
  });
}
