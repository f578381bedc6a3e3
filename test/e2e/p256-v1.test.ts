/**
 * Issue 12: v1 certificates of curve P256 in a tunnel. nebula-ts and Go nebula 1.9.3 (the last v1-only release; P256
 * came in 1.7, so Go 1.6.1 cannot take part: its nebula-cert panics on a 65-byte CA key) on a CA made by
 * nebula-cert 1.9.3 -curve P256. The Go nodes' certificates are nebula-cert 1.9.3's, nebula-ts's is signed by
 * nebula-ts-cert with that CA's key, so each side's decoder and signature check meet the other side's encoder and
 * signer; the Noise handshake runs on P256 (a 65-byte static key, what the certificates carry).
 *
 *   t  (nebula-ts)  -> ga (Go 1.9.3)   t initiates
 *   gb (Go 1.9.3)   -> t               gb initiates
 *
 * Each tunnel: ping both ways, and each side names the other's certificate by the fingerprint its own tool printed.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { unmarshalCertFromPem } from '../../src/shared/pki';
import { goBinaryPrefix, installNodePki } from '../../src/testbed/mesh-v2';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { prereqs } from '../helpers/prereq';
import { needGoNebula } from '../helpers/go-nebula';
import { linesMatching, newMesh, ROOT } from './helpers';

const GO_VERSION = '1.9.3';
const IP = { t: '192.168.100.1', ga: '192.168.100.2', gb: '192.168.100.3' } as const;
type Name = keyof typeof IP;
const CERT_CLI = path.join(ROOT, 'dist', 'cert-cli', 'main.js');


const escaped = (s: string): string => s.replace(/\./g, '\\.');

/** A handshake log line about `peerIp` (nebula-ts and Go 1.9.3 both write vpnIp=). */
function handshakeRe(msg: 'Handshake message sent' | 'Handshake message received', stage: 1 | 2, peerIp: string): RegExp {
  return new RegExp(`^(?=.*msg="${msg}")(?=.*stage(\\\\?":|:)${stage}\\b)(?=.*\\bvpnIp=${escaped(peerIp)}(\\s|$))`);
}

async function assertInitiator(t: Test, mesh: Mesh, initiator: Name, responder: Name): Promise<void> {
  await mesh.waitForOutput(initiator, handshakeRe('Handshake message received', 2, IP[responder]), 15_000);
  t.ok(linesMatching(mesh, initiator, handshakeRe('Handshake message sent', 1, IP[responder])).length > 0, `${initiator} sent stage 1 to ${responder}`);
  t.same(linesMatching(mesh, responder, handshakeRe('Handshake message sent', 1, IP[initiator])), [], `${responder} never initiated towards ${initiator}`);
}

/** `node` logged a received handshake from `peer` naming the certificate fingerprint `fingerprint`. */
function sawFingerprint(mesh: Mesh, node: Name, peer: Name, fingerprint: string): boolean {
  const re = new RegExp(`^(?=.*msg="Handshake message received")(?=.*\\bvpnIp=${escaped(IP[peer])}(\\s|$))(?=.*\\bfingerprint=${fingerprint}\\b)`);
  return linesMatching(mesh, node, re).length > 0;
}

async function pingBothWays(t: Test, mesh: Mesh, a: Name, b: Name): Promise<void> {
  t.ok(await mesh.pingUntilReply(a, IP[b], 15_000), `${a} -> ${b}: ping answered`);
  const [ab, ba] = await Promise.all([mesh.ping(a, IP[b], 5, 2), mesh.ping(b, IP[a], 5, 2)]);
  t.equal(ab, 5, `${a} -> ${b}: 5/5 pings`);
  t.equal(ba, 5, `${b} -> ${a}: 5/5 pings`);
}

t.test('v1 P256 certificates: nebula-ts with Go nebula 1.9.3, each side initiating', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const go = needGoNebula(t, GO_VERSION);
  if (!go) return;
  t.setTimeout(90_000);
  const mesh = await newMesh(t);
  const pki = path.join(mesh.dir, 'pki-v1-p256');
  const goCert = (...args: string[]): string => execFileSync(go.cert, args, { cwd: pki, encoding: 'utf8', timeout: 30_000 });
  const tsCert = (...args: string[]): string => execFileSync(process.execPath, [CERT_CLI, ...args], { cwd: pki, encoding: 'utf8', timeout: 30_000 });
  const fingerprints = {} as Record<Name, string>;

  await mesh.add({ name: 't', kind: 'ts', overlayIp: IP.t, staticHosts: ['ga'], config: { pki: { ca: path.join(pki, 'ca.crt') } } });
  for (const [name, hosts] of [['ga', []], ['gb', ['t']]] as const) {
    await mesh.add({ name, kind: 'go', overlayIp: IP[name], staticHosts: [...hosts], config: { pki: { ca: path.join(pki, 'ca.crt') } }, commandPrefix: goBinaryPrefix(go.nebula) });
  }
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  goCert('ca', '-curve', 'P256', '-name', 'v1 p256 mesh ca', '-duration', '24h', '-out-crt', 'ca.crt', '-out-key', 'ca.key');
  for (const name of ['ga', 'gb'] as const) {
    goCert('sign', '-ca-crt', 'ca.crt', '-ca-key', 'ca.key', '-name', name, '-ip', `${IP[name]}/24`, '-out-crt', `${name}.crt`, '-out-key', `${name}.key`);
    fingerprints[name] = (JSON.parse(goCert('print', '-json', '-path', `${name}.crt`)) as { fingerprint: string }).fingerprint;
  }
  tsCert('sign', '-ca-crt', 'ca.crt', '-ca-key', 'ca.key', '-name', 't', '-networks', `${IP.t}/24`, '-out-crt', 't.crt', '-out-key', 't.key');
  fingerprints.t = (JSON.parse(tsCert('print', '-json', '-path', 't.crt')) as Array<{ fingerprint: string }>)[0]!.fingerprint;
  for (const name of Object.keys(IP) as Name[]) {
    const crt = path.join(pki, `${name}.crt`);
    const c = unmarshalCertFromPem(readFileSync(crt, 'utf8')).cert;
    t.same([c.version, c.curve, c.details.publicKey.length], [1, 'P256', 65], `${name}: a v1 P256 certificate`);
    installNodePki(mesh.node(name), { certs: [crt], key: path.join(pki, `${name}.key`) });
  }
  mesh.writeConfigs();
  await Promise.all([mesh.start('ga'), mesh.start('gb')]);
  await mesh.start('t');
  for (const name of ['ga', 'gb'] as const) t.match(linesMatching(mesh, name, /Nebula interface is active/)[0], /\bbuild=1\.9\.3\b/, `${name} runs Go 1.9.3`);

  await t.test('nebula-ts initiates: t -> ga', async (t) => {
    await pingBothWays(t, mesh, 't', 'ga');
    await assertInitiator(t, mesh, 't', 'ga');
    t.ok(sawFingerprint(mesh, 't', 'ga', fingerprints.ga), 't names ga\'s certificate by nebula-cert 1.9.3\'s fingerprint');
    t.ok(sawFingerprint(mesh, 'ga', 't', fingerprints.t), 'ga names t\'s certificate by nebula-ts-cert\'s fingerprint');
  });

  await t.test('Go 1.9.3 initiates: gb -> t', async (t) => {
    await pingBothWays(t, mesh, 'gb', 't');
    await assertInitiator(t, mesh, 'gb', 't');
    t.ok(sawFingerprint(mesh, 't', 'gb', fingerprints.gb), 't names gb\'s certificate by nebula-cert 1.9.3\'s fingerprint');
    t.ok(sawFingerprint(mesh, 'gb', 't', fingerprints.t), 'gb names t\'s certificate by nebula-ts-cert\'s fingerprint');
  });
});
