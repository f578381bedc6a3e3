/**
 * lighthouse.remote_allow_list end to end, two nebula-ts nodes in the testbed mesh: b denies a's underlay address
 * (10.99.0.1/32: false), so a's handshakes get no tunnel and b logs why (at debug level, as Go does); a reload that
 * also sets a key nebula-ts refuses (sshd.enabled) is rejected and the deny stays in force; a reload
 * that only lifts the deny lets the tunnel come up (the allow list is reloadable, as in Go).
 */
import t from 'tap';
import { prereqs } from '../helpers/prereq';
import { linesMatching, newMesh, status, until } from './helpers';

const A_VPN = '192.168.100.1';
const B_VPN = '192.168.100.2';

t.test('remote_allow_list: a denied underlay address gets no tunnel; lifting the deny by reload lets it up', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const mesh = await newMesh(t);
  const a = await mesh.add({ name: 'a', kind: 'ts', overlayIp: A_VPN });
  const b = await mesh.add({
    name: 'b',
    kind: 'ts',
    overlayIp: B_VPN,
    config: { logging: { level: 'debug' }, lighthouse: { remote_allow_list: { [`${a.underlayIp}/32`]: false } } },
  });
  mesh.writeConfigs();
  await mesh.start('b');
  await mesh.start('a');

  // a handshakes b at start (static host) and again for the pings below; b must refuse every one of them.
  const denied = new RegExp(`msg="lighthouse\\.remote_allow_list denied incoming handshake" udpAddr="${a.underlayIp.replace(/\./g, '\\.')}:4242"`);
  await mesh.waitForOutput('b', denied, 15_000);
  t.equal(await mesh.ping('a', B_VPN, 3, 1), 0, 'no reply from b');
  const sb = await status(mesh, 'b');
  t.same(sb.tunnels, [], 'b has no tunnel to a');
  t.same((await status(mesh, 'a')).tunnels, [], 'a has no tunnel to b');
  t.ok(linesMatching(mesh, 'b', denied).length >= 1, "b's log says why");
  t.same(linesMatching(mesh, 'b', /Handshake message sent.*stage:2/), [], 'b never answered a stage 1');

  // A reload that lifts the deny but also sets a key nebula-ts cannot honour is refused as a whole.
  const bNode = mesh.node('b');
  bNode.config = { logging: { level: 'debug' }, sshd: { enabled: true } };
  mesh.writeConfig(bNode);
  let from = bNode.output.length;
  bNode.process!.kill('SIGHUP');
  const failed = await mesh.waitForOutput('b', /Failed to reload config, keeping the running config/, 10_000, from);
  t.match(failed, /sshd\.enabled: not supported yet \(nebula-ts has no ssh server\); remove it/, 'the refusal names the key');
  from = bNode.output.length;
  t.equal(await mesh.ping('a', B_VPN, 2, 1), 0, 'the deny is still in force');
  await mesh.waitForOutput('b', denied, 15_000, from);

  // The same change without the refused key goes through, and the next handshake is answered.
  bNode.config = { logging: { level: 'debug' } };
  mesh.writeConfig(bNode);
  from = bNode.output.length;
  bNode.process!.kill('SIGHUP');
  await mesh.waitForOutput('b', /lighthouse\.remote_allow_list and\/or lighthouse\.remote_allow_ranges has changed/, 10_000, from);
  t.ok(await mesh.pingUntilReply('a', B_VPN, 20_000), 'a reaches b once the deny is lifted');
  const up = await until('b to have a tunnel to a', () => status(mesh, 'b'), (s) => s.tunnels.some((x) => x.vpnIp === A_VPN), 10_000);
  t.equal(up.tunnels.find((x) => x.vpnIp === A_VPN)?.remote, `${a.underlayIp}:4242`, "b's tunnel is at a's (now allowed) address");
});
