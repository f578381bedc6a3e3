/**
 * Issue 10: reload re-reads the PKI files (rotation = overwrite in place + reload). A nebula-ts node a and two peers,
 * p (nebula-ts) and g (Go nebula 1.6.1), whose certs are signed by a second CA that a trusts through a two-CA bundle.
 *  (a) a's host cert is overwritten in place with one carrying other groups and `nebula-ctl reload` is run while p
 *      and g ping a: a re-handshakes both tunnels with the new cert, both peers take the newer handshake (their
 *      logs show the new cert's fingerprint), and each loses at most one of the pings it sent (ping's own summary).
 *  (b) the second CA is removed from a's bundle in place and a gets SIGHUP: a disconnects both peers at once
 *      (closeTunnel) and neither can reconnect: their handshakes are refused, a keeps no tunnel, pings fail.
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
const G = '192.168.100.3';
const CTL = path.join(ROOT, 'dist', 'ctl', 'main.js');

function ctlReload(ns: string, socket: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, CTL, '-socket', socket, 'reload'], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('reload picks up PKI files overwritten in place', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula'])) return;
  const mesh = await newMesh(t);
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A, groups: ['old-group'] });
  const p = await mesh.add({ name: 'p', kind: 'ts', overlayIp: P, staticHosts: ['a'] });
  const g = await mesh.add({ name: 'g', kind: 'go', overlayIp: G, staticHosts: ['a'] });
  // p and g are re-signed by a second CA; all trust both through a bundle file of a's own (overwritten in (b)).
  const ca2 = makeCA(path.join(mesh.dir, 'ca2'), 'second CA');
  makeHostCert(p.dir, ca2, { name: 'p', ip: `${P}/24` });
  makeHostCert(g.dir, ca2, { name: 'g', ip: `${G}/24` });
  const bundle = path.join(a.dir, 'ca-bundle.crt');
  writeFileSync(bundle, mesh.ca.cert.toPem() + ca2.cert.toPem(), { mode: 0o600 });
  for (const n of [a, p, g]) n.config = { pki: { ca: bundle } };
  mesh.writeConfigs();
  await Promise.all([mesh.start('p'), mesh.start('g'), mesh.start('a')]);
  t.same(await Promise.all([mesh.pingUntilReply('p', A, 15_000), mesh.pingUntilReply('g', A, 15_000)]), [true, true], 'p -> a and g -> a: tunnels up');
  const tunnels0 = (await status(mesh, 'a')).tunnels;
  const tunnel0 = tunnels0.find((x) => x.vpnIp === P);
  const goTunnel0 = tunnels0.find((x) => x.vpnIp === G);
  t.ok(tunnel0 && goTunnel0, 'a has a tunnel to p and to g');

  t.test('(a) a new host cert: tunnels re-handshake while pings keep working, with nebula-ts and Go peers', async (t) => {
    const made = makeHostCert(path.join(mesh.dir, 'a-new'), mesh.ca, { name: 'a', ip: `${A}/24`, groups: ['new-group'] });
    const aLog0 = a.output.length;
    const pLog0 = p.output.length;
    const gLog0 = g.output.length;
    // Pings from p and from g to a across the reload: 100 each, 50 ms apart.
    const pings = [p, g].map((n) => {
      const child = spawn('ip', ['netns', 'exec', n.ns, 'ping', '-c', '100', '-i', '0.05', '-W', '1', A], { stdio: ['ignore', 'pipe', 'pipe'] });
      const ping = { name: n.name, out: '', exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
      child.stdout.on('data', (c: Buffer) => (ping.out += c.toString('utf8')));
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return ping;
    });
    for (const ping of pings) {
      await until(`${ping.name}'s ping has replies before the reload`, () => (ping.out.match(/bytes from/g) ?? []).length, (n) => n >= 5, 10_000);
    }

    // Rotation: overwrite cert and key in place, then reload.
    writeFileSync(path.join(a.dir, 'a.crt'), readFileSync(made.cert));
    writeFileSync(path.join(a.dir, 'a.key'), readFileSync(made.key));
    const r = await ctlReload(a.ns, a.controlSocket);
    t.equal(r.code, 0, `nebula-ctl reload: ${r.stderr.trim()}`);
    t.match(r.stdout, /^reloaded: pki changed; pki: cert reloaded; 2 tunnels re-handshaked$/m, r.stdout.trim());
    t.ok(await mesh.waitForOutput('a', /Re-handshaking tunnels with the new certificate/, 10_000, aLog0), 'a says why it re-handshakes');
    const fp = made.certObj.fingerprint();
    for (const [peer, log0] of [['p', pLog0], ['g', gLog0]] as const) {
      // Go 1.6.1 and nebula-ts both log this when they replace a tunnel with a newer handshake (CheckAndComplete).
      const taking = await mesh.waitForOutput(peer, /Taking new handshake/, 10_000, log0);
      t.ok(taking, `${peer} took a's new handshake: ${taking}`);
      t.ok(
        linesMatching(mesh, peer, new RegExp(`Handshake message (received|sent).*fingerprint=${fp}`), log0).length > 0,
        `${peer}'s handshake log shows a's new cert fingerprint`,
      );
    }
    const tunnel1 = await until(
      'tunnels to p and g under new indexes',
      () => status(mesh, 'a'),
      (s) =>
        s.tunnels.some((x) => x.vpnIp === P && x.localIndex !== tunnel0?.localIndex) && s.tunnels.some((x) => x.vpnIp === G && x.localIndex !== goTunnel0?.localIndex),
      10_000,
    );
    t.equal(tunnel1.tunnels.length, 2, 'one tunnel each');

    for (const ping of pings) {
      await ping.exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(ping.out);
      t.ok(m, `${ping.name}'s ping summary: ${ping.out.split('\n').slice(-3).join(' ')}`);
      const sent = Number(m?.[1]);
      const received = Number(m?.[2]);
      t.ok(sent - received <= 1, `${ping.name}: at most 1 of ${sent} pings lost across the reload (lost ${sent - received})`);
    }
  });

  t.test("(b) the peers' CA removed from the bundle: both peers are disconnected and cannot reconnect", async (t) => {
    const aLog0 = a.output.length;
    const pLog0 = p.output.length;
    const gLog0 = g.output.length;
    writeFileSync(bundle, mesh.ca.cert.toPem()); // in place: only the first CA
    a.process!.kill('SIGHUP');
    const summary = await mesh.waitForOutput('a', /msg="Config reloaded"/, 10_000, aLog0);
    t.match(summary, /pki: ca reloaded/, 'the summary says the CA pool was reloaded');
    t.match(summary, /2 peers disconnected/, 'and that both peers were disconnected');
    t.equal(linesMatching(mesh, 'a', /Remote certificate is no longer valid, tearing down the tunnel/, aLog0).length, 2, 'a logs both teardowns');
    await until('a has no tunnel to p or g', () => status(mesh, 'a'), (s) => !s.tunnels.some((x) => x.vpnIp === P || x.vpnIp === G), 10_000);
    await until('p has no tunnel to a (closeTunnel received)', () => status(mesh, 'p'), (s) => !s.tunnels.some((x) => x.vpnIp === A), 10_000);
    const goClosed = await mesh.waitForOutput('g', /Close tunnel received, tearing down/, 10_000, gLog0);
    t.ok(goClosed, `g (Go 1.6.1) was told: ${goClosed}`);

    // p and g try again (traffic to a) and their handshakes are refused: p's until they time out (Go 1.6.1 retries
    // for ~9 s; a's refusals of them, during p's ~5 s, are what matters).
    const pLog1 = p.output.length;
    const aLog1 = a.output.length;
    t.same(await Promise.all([mesh.ping('p', A, 3, 1), mesh.ping('g', A, 3, 1)]), [0, 0], 'no ping reply to either');
    const timedOut = await mesh.waitForOutput('p', new RegExp(`Handshake timed out.*vpnIp=${A.replace(/\./g, '\\.')}`), 30_000, pLog1);
    t.ok(timedOut, `p's handshakes to a timed out: ${timedOut}`);
    const refusedGo = linesMatching(mesh, 'a', new RegExp(`Invalid certificate from host.*udpAddr="?${g.underlayIp.replace(/\./g, '\\.')}:`), aLog1);
    t.ok(refusedGo.length > 0, `a refused g's handshakes (${refusedGo.length} times)`);
    const sa = await status(mesh, 'a');
    t.notOk(sa.tunnels.some((x) => x.vpnIp === P || x.vpnIp === G), 'a has no tunnel to p or g after their retries');
    t.notOk((await status(mesh, 'p')).tunnels.some((x) => x.vpnIp === A), 'p has no tunnel to a');
    t.equal(await mesh.ping('a', P, 2, 1), 0, 'a -> p fails too');
    t.equal(linesMatching(mesh, 'p', /Received close tunnel message/, pLog0).length, 1, 'p was told (closeTunnel)');
  });
});
