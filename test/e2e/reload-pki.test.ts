/**
 * Issue 10: reload re-reads the PKI files (rotation = overwrite in place + reload). Two nebula-ts nodes, a and p;
 * p's cert is signed by a second CA that a trusts through a two-CA bundle.
 *  (a) a's host cert is overwritten in place with one carrying other groups and `nebula-ctl reload` is run while p
 *      pings a: a re-handshakes its tunnel with the new cert, p takes the newer handshake, and at most one of the
 *      pings sent is lost (counted from ping's own summary).
 *  (b) p's CA is removed from a's bundle in place and a gets SIGHUP: a disconnects p at once (closeTunnel) and p
 *      cannot reconnect: its handshakes time out, a keeps no tunnel, pings fail.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { prereqs } from '../helpers/prereq';
import { linesMatching, newMesh, ROOT, status, until } from './helpers';

const A = '192.168.100.1';
const P = '192.168.100.2';
const CTL = path.join(ROOT, 'dist', 'ctl', 'main.js');

function ctlReload(ns: string, socket: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, CTL, '-socket', socket, 'reload'], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('reload picks up PKI files overwritten in place', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, groups: ['old-group'] });
  const p = await mesh.add({ name: 'p', kind: 'ts', overlayIp: P });
  // p is re-signed by a second CA; a and p trust both through a bundle file of a's own (overwritten in (b)).
  const ca2 = makeCA(path.join(mesh.dir, 'ca2'), 'second CA');
  makeHostCert(p.dir, ca2, { name: 'p', ip: `${P}/24` });
  const bundle = path.join(a.dir, 'ca-bundle.crt');
  writeFileSync(bundle, mesh.ca.cert.toPem() + ca2.cert.toPem(), { mode: 0o600 });
  a.config = { pki: { ca: bundle } };
  p.config = { pki: { ca: bundle } };
  mesh.writeConfigs();
  await mesh.start('p');
  await mesh.start('a');
  t.ok(await mesh.pingUntilReply('p', A, 15_000), 'p -> a: tunnel up');
  const tunnel0 = (await status(mesh, 'a')).tunnels.find((x) => x.vpnIp === P);
  t.ok(tunnel0, 'a has a tunnel to p');

  t.test('(a) a new host cert: tunnels re-handshake while a ping keeps working', async (t) => {
    const made = makeHostCert(path.join(mesh.dir, 'a-new'), mesh.ca, { name: 'a', ip: `${A}/24`, groups: ['new-group'] });
    const aLog0 = a.output.length;
    const pLog0 = p.output.length;
    // A ping from p to a across the reload: 100 pings 50 ms apart.
    const ping = spawn('ip', ['netns', 'exec', p.ns, 'ping', '-c', '100', '-i', '0.05', '-W', '1', A], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ping.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise<void>((resolve) => ping.once('exit', () => resolve()));
    t.teardown(() => {
      if (ping.exitCode === null && ping.signalCode === null) ping.kill('SIGKILL');
    });
    await until('the ping has replies before the reload', () => (out.match(/bytes from/g) ?? []).length, (n) => n >= 5, 10_000);

    // Rotation: overwrite cert and key in place, then reload.
    writeFileSync(path.join(a.dir, 'a.crt'), readFileSync(made.cert));
    writeFileSync(path.join(a.dir, 'a.key'), readFileSync(made.key));
    const r = await ctlReload(a.ns, a.controlSocket);
    t.equal(r.code, 0, `nebula-ctl reload: ${r.stderr.trim()}`);
    t.match(r.stdout, /^reloaded: pki changed; pki: cert reloaded; 1 tunnel re-handshaked$/m, r.stdout.trim());
    t.ok(await mesh.waitForOutput('a', /Re-handshaking tunnels with the new certificate/, 10_000, aLog0), 'a says why it re-handshakes');
    const taking = await mesh.waitForOutput('p', /Taking new handshake/, 10_000, pLog0);
    t.ok(taking, `p took a's new handshake: ${taking}`);
    const fp = made.certObj.fingerprint();
    t.ok(linesMatching(mesh, 'p', new RegExp(`Handshake message (received|sent).*fingerprint=${fp}`), pLog0).length > 0, "p's handshake log shows a's new cert fingerprint");
    const tunnel1 = await until('a tunnel to p under a new index', () => status(mesh, 'a'), (s) => s.tunnels.some((x) => x.vpnIp === P && x.localIndex !== tunnel0?.localIndex), 10_000);
    t.equal(tunnel1.tunnels.length, 1, 'one tunnel');

    await exited;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    t.ok(m, `ping summary: ${out.split('\n').slice(-3).join(' ')}`);
    const sent = Number(m?.[1]);
    const received = Number(m?.[2]);
    t.ok(sent - received <= 1, `at most 1 of ${sent} pings lost across the reload (lost ${sent - received})`);
  });

  t.test("(b) the peer's CA removed from the bundle: the peer is disconnected and cannot reconnect", async (t) => {
    const aLog0 = a.output.length;
    const pLog0 = p.output.length;
    writeFileSync(bundle, mesh.ca.cert.toPem()); // in place: only the first CA
    a.process!.kill('SIGHUP');
    const summary = await mesh.waitForOutput('a', /msg="Config reloaded"/, 10_000, aLog0);
    t.match(summary, /pki: ca reloaded/, 'the summary says the CA pool was reloaded');
    t.match(summary, /1 peer disconnected/, 'and that one peer was disconnected');
    t.ok(linesMatching(mesh, 'a', /Remote certificate is no longer valid, tearing down the tunnel/, aLog0).length === 1, 'a logs the teardown');
    await until('a has no tunnel to p', () => status(mesh, 'a'), (s) => !s.tunnels.some((x) => x.vpnIp === P), 10_000);
    await until('p has no tunnel to a (closeTunnel received)', () => status(mesh, 'p'), (s) => !s.tunnels.some((x) => x.vpnIp === A), 10_000);

    // p tries again (traffic to a) and its handshakes are refused until they time out.
    const pLog1 = p.output.length;
    const replies = await mesh.ping('p', A, 3, 1);
    t.equal(replies, 0, 'no ping reply');
    const timedOut = await mesh.waitForOutput('p', new RegExp(`Handshake timed out.*vpnIp=${A.replace(/\./g, '\\.')}`), 30_000, pLog1);
    t.ok(timedOut, `p's handshakes to a timed out: ${timedOut}`);
    t.notOk((await status(mesh, 'a')).tunnels.some((x) => x.vpnIp === P), 'a has no tunnel to p after its retries');
    t.notOk((await status(mesh, 'p')).tunnels.some((x) => x.vpnIp === A), 'p has no tunnel to a');
    t.equal(await mesh.ping('a', P, 2, 1), 0, 'a -> p fails too');
    t.equal(linesMatching(mesh, 'p', /Received close tunnel message/, pLog0).length, 1, 'p was told (closeTunnel)');
  });
});
