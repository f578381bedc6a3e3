/**
 * Issue 3 acceptance, part 2: a peer whose certificate is from an untrusted CA, expired, blocklisted, or does not
 * match its Noise static key gets no tunnel, and nebula-ts logs why ("Invalid certificate from host" with the
 * validation error).
 *
 * Stage 1 (nebula-ts responding): a crafted initiator (fixtures/udp-tool.ts) sends Noise IX stage 1 messages from a
 * spare namespace, first a valid one as a control, then one per bad certificate. Stage 2 (nebula-ts initiating):
 * Go nebula 1.6.1 peers answer nebula-ts's handshake with a certificate from a CA nebula-ts does not trust, or one
 * nebula-ts has blocklisted. (An expired or key-mismatched Go peer cannot be built: Go refuses to start with one.)
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prereqs } from '../helpers/prereq';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { linesMatching, newMesh, status, udpTool, waitForStatus } from './helpers';

const V = '192.168.100.1';
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('stage 1: nebula-ts refuses crafted handshakes with bad certificates', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(90_000);
  const mesh = await newMesh(t, { cipher: 'aes' });
  const now = Math.floor(Date.now() / 1000);
  // `x` is never started: its namespace is the crafted initiator's, its certificate the valid control.
  const v = await mesh.add({ name: 'v', kind: 'ts', overlayIp: V, staticHosts: [] });
  const x = await mesh.add({ name: 'x', kind: 'ts', overlayIp: '192.168.100.9' });
  const certs = path.join(mesh.dir, 'crafted');
  const otherCA = makeCA(path.join(certs, 'other-ca'), 'some other CA');
  const untrusted = makeHostCert(path.join(certs, 'untrusted'), otherCA, { name: 'untrusted', ip: '192.168.100.10/24' });
  const expired = makeHostCert(path.join(certs, 'expired'), mesh.ca, { name: 'expired', ip: '192.168.100.11/24', notBefore: now - 7200, notAfter: now - 3600 });
  const blocked = makeHostCert(path.join(certs, 'blocked'), mesh.ca, { name: 'blocked', ip: '192.168.100.12/24' });
  const mismatched = makeHostCert(path.join(certs, 'mismatched'), mesh.ca, { name: 'mismatched', ip: '192.168.100.13/24' });
  v.config = { pki: { blocklist: [blocked.certObj.fingerprint()] } };
  mesh.writeConfigs();
  await mesh.start('v');
  const pidsBefore = (await status(mesh, 'v')).routines.map((r) => r.pid);

  const hs = (cert: string, key: string, waitMs: number): Promise<Record<string, unknown>> =>
    udpTool(mesh, 'x', { op: 'handshake', to: v.underlayIp, port: 4242, cipher: 'aes', cert, key, waitMs });

  // Control: the crafted initiator with a good certificate and its own key does get a tunnel, so the refusals below
  // are about the certificates, not about the tool.
  const ok = await hs(path.join(x.dir, 'x.crt'), path.join(x.dir, 'x.key'), 5000);
  t.match(ok, { reply: true, certName: 'v' }, 'control: a valid stage 1 gets a stage 2 from v');
  await waitForStatus(mesh, 'v', (s) => s.tunnels.some((tn) => tn.vpnIp === '192.168.100.9'), 5000, 'tunnel to the control');
  t.pass('control: v lists a tunnel to 192.168.100.9');

  const cases = [
    { what: 'certificate from an untrusted CA', cert: untrusted.cert, key: untrusted.key, ip: '192.168.100.10', error: 'certificate validation failed: could not find ca for the certificate' },
    { what: 'expired certificate', cert: expired.cert, key: expired.key, ip: '192.168.100.11', error: 'certificate validation failed: certificate is expired' },
    { what: 'blocklisted certificate', cert: blocked.cert, key: blocked.key, ip: '192.168.100.12', error: 'certificate validation failed: certificate is in the block list' },
    { what: 'Noise static key not matching the certificate', cert: mismatched.cert, key: 'random', ip: '192.168.100.13', error: 'certificate validation failed: certificate signature did not match' },
  ];
  for (const c of cases) {
    const from = v.output.length;
    await hs(c.cert, c.key, 0);
    const line = await mesh.waitForOutput('v', /msg="Invalid certificate from host"/, 5000, from);
    t.match(line, new RegExp(`error="${esc(c.error)}"`), `${c.what}: v logs why ("${c.error}")`);
    t.match(line, new RegExp(`udpAddr="?${esc(x.underlayIp)}:\\d+`), `${c.what}: the log names the sender's address`);
    const s = await status(mesh, 'v');
    t.notOk(s.tunnels.some((tn) => tn.vpnIp === c.ip), `${c.what}: no tunnel to ${c.ip}`);
    t.same(linesMatching(mesh, 'v', /msg="Handshake message sent"/, from), [], `${c.what}: v sent no stage 2`);
  }
  // The bad cert was also offered with an answer awaited: still nothing comes back.
  t.match(await hs(expired.cert, expired.key, 1500), { reply: false }, 'expired: no stage 2 reply reaches the sender');

  const s = await status(mesh, 'v');
  t.same(s.tunnels.map((tn) => tn.vpnIp), ['192.168.100.9'], 'only the control has a tunnel');
  t.same(s.routines.map((r) => r.pid), pidsBefore, 'routine pids unchanged');
  t.ok(s.routines.every((r) => r.restarts === 0), 'no routine restarts');
});

t.test('stage 2: nebula-ts refuses Go 1.6.1 responders with an untrusted or blocklisted certificate', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  t.setTimeout(60_000);
  const mesh = await newMesh(t, { cipher: 'aes' });
  const GCA = '192.168.100.3';
  const GBL = '192.168.100.4';
  const GOK = '192.168.100.5';
  const v = await mesh.add({ name: 'v', kind: 'ts', overlayIp: V });
  const gca = await mesh.add({ name: 'gca', kind: 'go', overlayIp: GCA, staticHosts: [] });
  const gbl = await mesh.add({ name: 'gbl', kind: 'go', overlayIp: GBL, staticHosts: [] });
  await mesh.add({ name: 'gok', kind: 'go', overlayIp: GOK, staticHosts: [] });
  // gca: a certificate from another CA; it trusts both CAs itself, so it accepts v's stage 1 and answers.
  const otherCA = makeCA(path.join(mesh.dir, 'other-ca'), 'some other CA');
  makeHostCert(gca.dir, otherCA, { name: 'gca', ip: `${GCA}/24` });
  const bundle = path.join(mesh.dir, 'both-cas.crt');
  writeFileSync(bundle, readFileSync(otherCA.caPath, 'utf8') + readFileSync(mesh.ca.caPath, 'utf8'));
  gca.config = { pki: { ca: bundle } };
  // gbl: a good certificate that v has blocklisted (re-issued here to learn its fingerprint).
  const gblCert = makeHostCert(gbl.dir, mesh.ca, { name: 'gbl', ip: `${GBL}/24` });
  v.config = { pki: { blocklist: [gblCert.certObj.fingerprint()] } };
  mesh.writeConfigs();
  await Promise.all([mesh.start('gca'), mesh.start('gbl'), mesh.start('gok')]);
  await mesh.start('v'); // v initiates to all three at start

  const invalid = (ip: string): RegExp => new RegExp(`msg="Invalid certificate from host".*vpnIp=${esc(ip)}(\\s|$)`);
  const lineCa = await mesh.waitForOutput('v', invalid(GCA), 10_000);
  t.match(lineCa, /error="certificate validation failed: could not find ca for the certificate"/, 'untrusted CA: v logs why');
  t.match(lineCa, /stage:2/, 'untrusted CA: refused at stage 2');
  const lineBl = await mesh.waitForOutput('v', invalid(GBL), 10_000);
  t.match(lineBl, /error="certificate validation failed: certificate is in the block list"/, 'blocklisted: v logs why');

  // The control peer from the same CA does get its tunnel.
  t.ok(await mesh.pingUntilReply('v', GOK, 10_000), 'control: v <-> gok works');
  const s = await status(mesh, 'v');
  t.same(s.tunnels.map((tn) => tn.name), ['gok'], 'v has a tunnel to gok only');
  t.equal(await mesh.ping('v', GCA, 2, 1), 0, 'v -> gca: no replies');
  t.equal(await mesh.ping('v', GBL, 2, 1), 0, 'v -> gbl: no replies');
  t.same((await status(mesh, 'v')).tunnels.map((tn) => tn.name), ['gok'], 'still no tunnel to gca or gbl after traffic');

  // Go 1.6.1 tears a handshake down when the responder's certificate is invalid and starts again only on new
  // traffic (handshake_ix.go ixHandshakeStage2 returns true, the caller deletes the pending host info). A refused
  // responder must not be re-handshaked in a tight loop.
  const rejections = linesMatching(mesh, 'v', invalid(GCA)).length;
  const stage1s = linesMatching(mesh, 'v', new RegExp(`msg="Handshake message sent".*vpnIp=${esc(GCA)}(\\s|$)`)).length;
  t.ok(rejections <= 20, `untrusted responder refused a bounded number of times (got ${rejections} "Invalid certificate" lines, ${stage1s} stage 1s sent)`);
  const st = await status(mesh, 'v');
  t.ok(st.routines.every((r) => r.restarts === 0), 'no routine restarts');
});
