/**
 * Issue 12: nebula-ts in a mesh built with today's nebula-cert (1.11.0, v2 certificates), over the IPv4 overlay,
 * curves 25519 and P256. One mesh of eight nodes:
 *
 *   t2  (nebula-ts, v2 only)    <-> g11a (Go 1.11.0, v2)  t2 initiates: ping both ways, TCP transfer t2 -> g11a
 *   g11b (Go 1.11.0, v2)        <-> t2                    g11b initiates: ping both ways, TCP transfer g11b -> t2
 *   t1  (nebula-ts, v1 + v2)    <-> g16  (Go 1.6.1, v1)   t1 initiates with its v1 certificate
 *   g11b                        <-> t1                    g11b initiates in v2, t1 answers with its v2 certificate
 *   t3  (nebula-ts, v2, P256)   <-> g11c (Go 1.11.0, P256) t3 initiates: ping both ways, TCP transfer g11c -> t3
 *   g11d (Go 1.11.0, v2, P256)  <-> t3                    g11d initiates: ping both ways, TCP transfer t3 -> g11d
 *
 * Every certificate is made by nebula-cert 1.11.0 (a v2 CA and a v1 CA; t1 holds a v1 and a v2 certificate for one
 * key). That mesh runs cipher aes; a second, two-node mesh runs chachapoly (t2 initiates to g11a: pings, a small
 * transfer each way). Who initiates is forced through the static host maps; which certificate each side holds is read back from
 * nebula-ts's print-cert and Go 1.11's handshake log lines (certVersion).
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../../src/ctl/client';
import { goBinaryPrefix, GoCertMaker, installNodePki } from '../../src/testbed/mesh-v2';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { needGoNebula } from '../helpers/go-nebula';
import { linesMatching, newMesh, tcpTransfer } from './helpers';

const GO_VERSION = '1.11.0';
const IP = {
  t1: '192.168.100.1',
  t2: '192.168.100.2',
  g16: '192.168.100.3',
  g11a: '192.168.100.4',
  g11b: '192.168.100.5',
  t3: '192.168.100.6',
  g11c: '192.168.100.7',
  g11d: '192.168.100.8',
} as const;
type Name = keyof typeof IP;
const TRANSFER_BYTES = 20 * 1024 * 1024;


/** The certificate a nebula-ts node holds for a peer (print-cert -json <vpn ip>). */
async function peerCert(mesh: Mesh, node: Name, peer: Name): Promise<{ version?: number; curve?: string; details: { name: string } }> {
  const reply = (await request(mesh.node(node).controlSocket, { cmd: 'print-cert', args: ['-json', IP[peer]] })) as { ok: boolean; output?: string; error?: string };
  if (!reply.ok || reply.output === undefined) throw new Error(`print-cert on ${node} for ${peer}: ${reply.error}`);
  const cert = JSON.parse(reply.output) as { version?: number; curve?: string; details: { name: string } };
  if (cert.details.name !== peer) throw new Error(`print-cert on ${node} for ${peer} named ${cert.details.name}`);
  return cert;
}

/** Its version: v2 JSON carries `version: 2`, 1.6.1's v1 JSON has no such key. */
async function peerCertVersion(mesh: Mesh, node: Name, peer: Name): Promise<number> {
  return (await peerCert(mesh, node, peer)).version ?? 1;
}

async function peerCertCurve(mesh: Mesh, node: Name, peer: Name): Promise<string | undefined> {
  return (await peerCert(mesh, node, peer)).curve;
}

const escaped = (ip: string): string => ip.replace(/\./g, '\\.');

/** A handshake log line about `peerIp`: nebula-ts and 1.6.1 write vpnIp=, 1.11 writes vpnAddrs=[...]. */
function handshakeRe(msg: 'Handshake message sent' | 'Handshake message received', stage: 1 | 2, peerIp: string): RegExp {
  return new RegExp(`^(?=.*msg="${msg}")(?=.*stage(\\\\?":|:)${stage}\\b)(?=.*\\b(vpnIp=|vpnAddrs="?\\[)${escaped(peerIp)}(\\s|\\]|$))`);
}

async function assertInitiator(t: Test, mesh: Mesh, initiator: Name, responder: Name): Promise<void> {
  await mesh.waitForOutput(initiator, handshakeRe('Handshake message received', 2, IP[responder]), 15_000);
  t.ok(linesMatching(mesh, initiator, handshakeRe('Handshake message sent', 1, IP[responder])).length > 0, `${initiator} sent stage 1 to ${responder}`);
  // Go 1.11 labels the stage 1 it received "stage:2" (its machine's index after answering): check the answer instead.
  t.ok(linesMatching(mesh, responder, handshakeRe('Handshake message sent', 2, IP[initiator])).length > 0, `${responder} answered ${initiator} with stage 2`);
  t.same(linesMatching(mesh, responder, handshakeRe('Handshake message sent', 1, IP[initiator])), [], `${responder} never initiated towards ${initiator}`);
}

async function pingBothWays(t: Test, mesh: Mesh, a: Name, b: Name): Promise<void> {
  t.ok(await mesh.pingUntilReply(a, IP[b], 15_000), `${a} -> ${b}: ping answered`);
  const [ab, ba] = await Promise.all([mesh.ping(a, IP[b], 5, 2), mesh.ping(b, IP[a], 5, 2)]);
  t.equal(ab, 5, `${a} -> ${b}: 5/5 pings`);
  t.equal(ba, 5, `${b} -> ${a}: 5/5 pings`);
}

async function transfer(t: Test, mesh: Mesh, from: Name, to: Name, bytes = TRANSFER_BYTES): Promise<void> {
  const r = await tcpTransfer(mesh, from, to, IP[to], bytes, `v2-${from}-${to}`);
  t.comment(`${from} -> ${to}: ${bytes} bytes in ${r.ms} ms (${((bytes * 8) / r.ms / 1000).toFixed(1)} Mbit/s)`);
  t.same(r.sent, { bytes, sha256: r.expected }, `${from} sent the expected ${bytes} bytes`);
  t.same(r.received, { bytes, sha256: r.expected }, `${to} received them byte for byte`);
}

t.test('v2 certificates from nebula-cert 1.11.0: nebula-ts with Go 1.11.0 (v2) and Go 1.6.1 (v1)', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(150_000);
  const mesh = await newMesh(t);

  // The PKI, all by nebula-cert 1.11.0.
  const nc = new GoCertMaker(go.cert, path.join(mesh.dir, 'pki-111'));
  const caV2 = nc.ca('mesh ca v2', 2);
  const caV1 = nc.ca('mesh ca v1', 1);
  const caP256 = nc.ca('mesh ca p256', 2, 'P256');
  const bothCAs = nc.bundle('ca-v1-v2.crt', [caV1.crt, caV2.crt]);
  const p256CAs = nc.bundle('ca-p256.crt', [caV1.crt, caV2.crt, caP256.crt]);
  const go111 = { commandPrefix: goBinaryPrefix(go.nebula) };
  await mesh.add({ name: 't1', kind: 'ts', overlayIp: IP.t1, staticHosts: ['g16'], config: { pki: { ca: bothCAs } } });
  await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2, staticHosts: ['g11a'], config: { pki: { ca: bothCAs } } });
  await mesh.add({ name: 'g16', kind: 'go', overlayIp: IP.g16, staticHosts: [], config: { pki: { ca: caV1.crt } } });
  await mesh.add({ name: 'g11a', kind: 'go', overlayIp: IP.g11a, staticHosts: [], config: { pki: { ca: bothCAs } }, ...go111 });
  await mesh.add({ name: 'g11b', kind: 'go', overlayIp: IP.g11b, staticHosts: ['t1', 't2'], config: { pki: { ca: bothCAs } }, ...go111 });
  await mesh.add({ name: 't3', kind: 'ts', overlayIp: IP.t3, staticHosts: ['g11c'], config: { pki: { ca: p256CAs } } });
  await mesh.add({ name: 'g11c', kind: 'go', overlayIp: IP.g11c, staticHosts: [], config: { pki: { ca: p256CAs } }, ...go111 });
  await mesh.add({ name: 'g11d', kind: 'go', overlayIp: IP.g11d, staticHosts: ['t3'], config: { pki: { ca: p256CAs } }, ...go111 });
  const versions: Record<Name, Array<1 | 2>> = { t1: [1, 2], t2: [2], g16: [1], g11a: [2], g11b: [2], t3: [2], g11c: [2], g11d: [2] };
  const p256: ReadonlySet<Name> = new Set(['t3', 'g11c', 'g11d']);
  for (const name of Object.keys(IP) as Name[]) {
    const curve = p256.has(name) ? 'P256' : '25519';
    const keys = nc.keygen(name, curve);
    const certs = versions[name].map((v) => nc.sign(curve === 'P256' ? caP256 : v === 1 ? caV1 : caV2, name, `${IP[name]}/24`, keys.pub));
    installNodePki(mesh.node(name), { certs, key: keys.key });
  }
  mesh.writeConfigs();
  await Promise.all((['g16', 'g11a', 'g11b', 'g11c', 'g11d'] as const).map((n) => mesh.start(n)));
  await Promise.all([mesh.start('t1'), mesh.start('t2'), mesh.start('t3')]);
  for (const name of ['g11a', 'g11b', 'g11c', 'g11d'] as const) t.match(linesMatching(mesh, name, /Nebula interface is active/)[0], /\bbuild=1\.11\.0\b/, `${name} runs Go 1.11.0`);
  t.match(linesMatching(mesh, 'g16', /Nebula interface is active/)[0], /\bbuild=1\.6\.1\b/, 'g16 runs Go 1.6.1');

  await t.test('v2 only, nebula-ts initiates: t2 -> g11a', async (t) => {
    await pingBothWays(t, mesh, 't2', 'g11a');
    await assertInitiator(t, mesh, 't2', 'g11a');
    t.equal(await peerCertVersion(mesh, 't2', 'g11a'), 2, 't2 holds g11a\'s v2 certificate');
    t.ok(linesMatching(mesh, 'g11a', /msg="Handshake message received".*certVersion=2/).length > 0, 'g11a took t2\'s v2 certificate');
    await transfer(t, mesh, 't2', 'g11a');
  });

  await t.test('v2 only, Go 1.11.0 initiates: g11b -> t2', async (t) => {
    await pingBothWays(t, mesh, 'g11b', 't2');
    await assertInitiator(t, mesh, 'g11b', 't2');
    t.equal(await peerCertVersion(mesh, 't2', 'g11b'), 2, 't2 holds g11b\'s v2 certificate');
    await transfer(t, mesh, 'g11b', 't2');
  });

  await t.test('a v1 + v2 nebula-ts node talks at once to Go 1.6.1 (v1) and Go 1.11.0 (v2)', async (t) => {
    // g11b reaches t1 (it initiates, in v2), t1 reaches g16 (it initiates, in its default version 1): both at once.
    const [toG16, fromG11b] = await Promise.all([mesh.pingUntilReply('t1', IP.g16, 15_000), mesh.pingUntilReply('g11b', IP.t1, 15_000)]);
    t.ok(toG16, 't1 -> g16 (1.6.1): ping answered');
    t.ok(fromG11b, 'g11b (1.11.0) -> t1: ping answered');
    await assertInitiator(t, mesh, 't1', 'g16');
    await assertInitiator(t, mesh, 'g11b', 't1');
    t.equal(await peerCertVersion(mesh, 't1', 'g16'), 1, 't1 holds g16\'s v1 certificate');
    t.equal(await peerCertVersion(mesh, 't1', 'g11b'), 2, 't1 holds g11b\'s v2 certificate');
    const answered = linesMatching(mesh, 'g11b', new RegExp(`msg="Handshake message received".*vpnAddrs=\\[${escaped(IP.t1)}\\].*certVersion=2`));
    t.ok(answered.length > 0, 't1 answered g11b with its v2 certificate (the initiator\'s version)');
    const [a, b, c, d] = await Promise.all([mesh.ping('t1', IP.g16, 5, 2), mesh.ping('t1', IP.g11b, 5, 2), mesh.ping('g16', IP.t1, 5, 2), mesh.ping('g11b', IP.t1, 5, 2)]);
    t.same([a, b, c, d], [5, 5, 5, 5], '5/5 pings each way on both tunnels, at the same time');
  });

  await t.test('P256, nebula-ts initiates: t3 -> g11c', async (t) => {
    await pingBothWays(t, mesh, 't3', 'g11c');
    await assertInitiator(t, mesh, 't3', 'g11c');
    t.equal(await peerCertCurve(mesh, 't3', 'g11c'), 'P256', 't3 holds g11c\'s P256 certificate');
    await transfer(t, mesh, 'g11c', 't3');
  });

  await t.test('P256, Go 1.11.0 initiates: g11d -> t3', async (t) => {
    await pingBothWays(t, mesh, 'g11d', 't3');
    await assertInitiator(t, mesh, 'g11d', 't3');
    t.equal(await peerCertCurve(mesh, 't3', 'g11d'), 'P256', 't3 holds g11d\'s P256 certificate');
    await transfer(t, mesh, 't3', 'g11d');
  });
});

t.test('v2 certificates, cipher chachapoly: nebula-ts with Go 1.11.0', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(60_000);
  const mesh = await newMesh(t, { cipher: 'chachapoly' });
  const nc = new GoCertMaker(go.cert, path.join(mesh.dir, 'pki-111'));
  const ca = nc.ca('mesh ca chachapoly', 2);
  await mesh.add({ name: 't2', kind: 'ts', overlayIp: IP.t2, staticHosts: ['g11a'], config: { pki: { ca: ca.crt } } });
  await mesh.add({ name: 'g11a', kind: 'go', overlayIp: IP.g11a, staticHosts: [], config: { pki: { ca: ca.crt } }, commandPrefix: goBinaryPrefix(go.nebula) });
  for (const name of ['t2', 'g11a'] as const) {
    const keys = nc.keygen(name);
    installNodePki(mesh.node(name), { certs: [nc.sign(ca, name, `${IP[name]}/24`, keys.pub)], key: keys.key });
  }
  mesh.writeConfigs();
  // Go logs no cipher: its config says it (a cipher mismatch would fail the Noise handshake anyway).
  t.match(readFileSync(mesh.node('g11a').configPath, 'utf8'), /^cipher: chachapoly$/m, 'g11a is configured for chachapoly');
  await mesh.start('g11a');
  await mesh.start('t2');
  t.match(linesMatching(mesh, 't2', /Nebula interface is active/)[0], /\bcipher=chachapoly\b/, 't2 runs chachapoly');
  await pingBothWays(t, mesh, 't2', 'g11a');
  await assertInitiator(t, mesh, 't2', 'g11a');
  t.equal(await peerCertVersion(mesh, 't2', 'g11a'), 2, 't2 holds g11a\'s v2 certificate');
  await transfer(t, mesh, 't2', 'g11a');
  await transfer(t, mesh, 'g11a', 't2');
});
