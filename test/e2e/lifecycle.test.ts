/**
 * A nebula-ts node's life as an operator sees it: it stops cleanly on SIGTERM and SIGINT (peers told with
 * closeTunnel, routines gone, tun device removed, exit 0), logs JSON when asked, and a reload with a bad config
 * keeps the running one (SIGHUP and nebula-ctl alike).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { prereqs } from '../helpers/prereq';
import { alive, newMesh, status, ROOT } from './helpers';


function linkExists(ns: string, dev: string): boolean {
  return spawnSync('ip', ['-n', ns, 'link', 'show', dev], { stdio: 'ignore' }).status === 0;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: closeTunnel to peers, routines stopped, tun removed, exit 0`, async (t) => {
    if (!prereqs(t, ['root', 'tun'])) return;
    const mesh = await newMesh(t);
    await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1', routines: 2 });
    await mesh.add({ name: 'b', kind: 'ts', overlayIp: '192.168.100.2' });
    mesh.writeConfigs();
    await mesh.start('a');
    await mesh.start('b');
    t.ok(await mesh.pingUntilReply('a', '192.168.100.2'), 'tunnel up');
    const before = await status(mesh, 'a');
    const pids = before.routines.map((r) => r.pid);
    t.equal(pids.length, 2);
    t.ok(linkExists(mesh.node('a').ns, 'nebula1'), 'device exists while running');

    const code = await mesh.stop('a', signal);
    t.equal(code, 0, 'supervisor exits 0');
    t.ok(mesh.node('a').output.some((l) => /Caught signal, shutting down/.test(l)));
    t.ok(mesh.node('a').output.some((l) => /Goodbye/.test(l)));
    for (const pid of pids) t.notOk(alive(pid), `routine ${pid} is gone`);
    t.notOk(linkExists(mesh.node('a').ns, 'nebula1'), 'tun device removed');
    await mesh.waitForOutput('b', /Received close tunnel message.*vpnIp=192\.168\.100\.1/, 5000);
    t.equal((await status(mesh, 'b')).tunnels.length, 0, 'the peer dropped the tunnel at once');
  });
}

t.test('logging.format json: every log line is a JSON object with level, msg and time', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1', config: { logging: { format: 'json' } } });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: '192.168.100.2' });
  mesh.writeConfigs();
  await mesh.start('a');
  await mesh.start('b');
  t.ok(await mesh.pingUntilReply('a', '192.168.100.2'));
  await mesh.waitForOutput('a', /Handshake message/, 5000);
  const lines = mesh.node('a').output.filter((l) => l.trim() !== '');
  t.ok(lines.length >= 3);
  for (const line of lines) {
    const obj = JSON.parse(line) as Record<string, unknown>;
    t.type(obj.level, 'string');
    t.type(obj.msg, 'string');
    t.type(obj.time, 'string');
  }
});

t.test('a bad config on reload is rejected and the running config is kept', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  await mesh.add({ name: 'a', kind: 'ts', overlayIp: '192.168.100.1' });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: '192.168.100.2' });
  mesh.writeConfigs();
  await mesh.start('a');
  await mesh.start('b');
  t.ok(await mesh.pingUntilReply('a', '192.168.100.2'));
  const a = mesh.node('a');
  const good = YAML.parse(readFileSync(a.configPath, 'utf8')) as { firewall: { outbound: Array<Record<string, string>>; inbound: Array<Record<string, string>> } };
  const bad = structuredClone(good);
  bad.firewall.outbound[0]!.proto = 'bogus';
  writeFileSync(a.configPath, YAML.stringify(bad));

  const from = a.output.length;
  a.process!.kill('SIGHUP');
  const line = await mesh.waitForOutput('a', /Failed to reload config/, 5000, from);
  t.match(line, /firewall\.(outbound|inbound)\[0\]\.proto/, 'the error names the key path');

  const ctl = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'nebula-ctl'), '-socket', a.controlSocket, 'reload'], { encoding: 'utf8' });
  t.not(ctl.status, 0, 'nebula-ctl reload exits non-zero');
  t.match(ctl.stderr, /reload failed, running config kept/);
  t.equal(await mesh.ping('a', '192.168.100.2', 3, 2), 3, 'traffic still flows under the old config');

  // Both directions: the ICMP conntrack entry was made by a's outbound pings, and after a reload an entry is
  // re-verified against the rules of its ORIGINAL direction (nebula-spec §7.5), so only a stricter outbound cuts it.
  const tcpOnly = structuredClone(good);
  tcpOnly.firewall.inbound[0]!.proto = 'tcp';
  tcpOnly.firewall.outbound[0]!.proto = 'tcp';
  writeFileSync(a.configPath, YAML.stringify(tcpOnly));
  const ok = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'nebula-ctl'), '-socket', a.controlSocket, 'reload'], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /firewall changed/);
  await mesh.waitForOutput('a', /New firewall has been installed/, 5000, from);
  t.equal(await mesh.ping('b', '192.168.100.1', 2, 1), 0, 'conntrack entry re-verified against the new rules and cut: ICMP is now dropped');
});
