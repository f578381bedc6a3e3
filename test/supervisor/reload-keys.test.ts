/**
 * Reload applies every key Go 1.6.1 reloads and names every other changed key (issue 10): listen.send_recv_error
 * goes to the routines, the socket buffers are set at every reload, lighthouse / punchy / relay / static_host_map
 * changes are announced and handed on, keys read only at start are named in a warning and keep their running value,
 * and a broken section changes nothing. Driven through reloadConfig over a real LiveConfig and config file.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NebulaConfig } from '../../src/shared/config';
import type { FirewallUpdate, SupervisorToRoutine } from '../../src/shared/ipc/messages';
import { Logger } from '../../src/shared/log';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { LiveConfig } from '../../src/supervisor/live-config';
import { reloadConfig, type ReloadResult } from '../../src/supervisor/reload';

interface Fixture {
  live: LiveConfig;
  lines: string[];
  broadcasts: SupervisorToRoutine[];
  firewalls: FirewallUpdate[];
  buffers: Array<{ read: number; write: number }>;
  adopted: Array<{ previous: NebulaConfig; next: NebulaConfig }>;
  /** Rewrites the config file with `extra` YAML after the PKI and logging lines, then reloads. */
  reloadWith(extra: string): ReloadResult;
}

function fixture(t: { teardown: (fn: () => void) => void }, extra = ''): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-reload-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCA(dir, 'ca');
  const files = makeHostCert(dir, ca, { name: 'node', ip: '192.168.100.1/24' });
  const file = path.join(dir, 'config.yml');
  const head = `pki: {ca: ${files.ca}, cert: ${files.cert}, key: ${files.key}}\nlogging: {format: json, disable_timestamp: true}\n`;
  writeFileSync(file, head + extra);
  const lines: string[] = [];
  const log = new Logger({ format: 'json', disableTimestamp: true, write: (l) => void lines.push(l) });
  const live = new LiveConfig(file, log);
  const f: Fixture = {
    live,
    lines,
    broadcasts: [],
    firewalls: [],
    buffers: [],
    adopted: [],
    reloadWith: (more) => {
      writeFileSync(file, head + more);
      return reloadConfig({
        live,
        log,
        resetConntrack: () => undefined,
        broadcastFirewall: (fw) => void f.firewalls.push(fw),
        broadcast: (msg) => void f.broadcasts.push(msg),
        applySocketBuffers: (listen) => void f.buffers.push({ read: listen.read_buffer, write: listen.write_buffer }),
        adopted: (previous, next) => void f.adopted.push({ previous, next }),
      });
    },
  };
  return f;
}

/** The log lines (JSON) with message `msg`. */
function logged(f: Fixture, msg: string): Array<Record<string, unknown>> {
  return f.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

t.test('listen.send_recv_error: a change goes to every routine, as Go logs it; no change sends nothing', async (t) => {
  const f = fixture(t);
  t.equal(f.live.config.listen.send_recv_error, 'always');
  const r = f.reloadWith('listen: {send_recv_error: never}\n');
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(f.broadcasts, [{ type: 'sendRecvError', sendRecvError: 'never' }], 'one message to the routines');
  t.same(r.changed, ['listen.send_recv_error']);
  t.equal(r.summary, 'listen.send_recv_error changed');
  t.equal(f.live.config.listen.send_recv_error, 'never', 'in force for routines spawned later');
  t.same(logged(f, 'Loaded send_recv_error config').map((l) => l.sendRecvError), ['never']);

  t.equal(f.reloadWith('listen: {send_recv_error: never}\n').summary, 'nothing changed');
  t.equal(f.broadcasts.length, 1, 'an unchanged value sends nothing');
  f.reloadWith('listen: {send_recv_error: private}\n');
  t.same(f.broadcasts[1], { type: 'sendRecvError', sendRecvError: 'private' });
});

t.test('listen.read_buffer / write_buffer: set at every reload as Go does; back to 0 needs a restart', async (t) => {
  const f = fixture(t);
  f.reloadWith('');
  t.same(f.buffers, [{ read: 0, write: 0 }], 'handed to the sockets at every reload (0: left alone)');
  const r = f.reloadWith('listen: {read_buffer: 1048576, write_buffer: 524288}\n');
  t.same(r.changed, ['listen.read_buffer', 'listen.write_buffer']);
  t.same(f.buffers[1], { read: 1048576, write: 524288 });
  t.equal(r.restartNeeded, undefined);
  const back = f.reloadWith('');
  t.same(back.restartNeeded, ['listen.read_buffer', 'listen.write_buffer'], 'a socket keeps its size when set back to 0');
  t.same(f.buffers[2], { read: 1048576, write: 524288 }, 'the running sizes stay in force');
  t.equal(f.live.config.listen.read_buffer, 1048576);
});

t.test('keys read only at start: named in a warning, in the summary, and kept at their running value', async (t) => {
  const f = fixture(t);
  const r = f.reloadWith('tun: {mtu: 1400}\ncipher: chachapoly\nhandshakes: {try_interval: 200ms}\nlisten: {port: 4243}\n');
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(r.restartNeeded, ['listen.port', 'cipher', 'tun.mtu', 'handshakes']);
  t.equal(r.summary, 'listen.port, cipher, tun.mtu, handshakes changed; restart needed for listen.port, cipher, tun.mtu, handshakes');
  const warn = logged(f, 'Some changed keys need a restart to take effect');
  t.same(warn.map((l) => l.keys), [['listen.port', 'cipher', 'tun.mtu', 'handshakes']]);
  t.equal(warn[0]?.level, 'warning');
  const c = f.live.config;
  t.same([c.tun.mtu, c.cipher, c.handshakes.try_interval, c.listen.port], [1300, 'aes', 100, 0], 'the running values stay in force');
  t.same(f.broadcasts, [], 'nothing reaches the routines');
  t.same(f.firewalls, []);
  const again = f.reloadWith('tun: {mtu: 1400}\ncipher: chachapoly\nhandshakes: {try_interval: 200ms}\nlisten: {port: 4243}\n');
  t.same(again.restartNeeded, r.restartNeeded, 'every later reload says it again until the restart');
});

t.test('lighthouse, punchy, relay and static_host_map changes are applied, announced and handed on', async (t) => {
  const f = fixture(t, 'static_host_map: {"192.168.100.2": ["10.0.0.2:4242"]}\n');
  const r = f.reloadWith(
    'static_host_map: {"192.168.100.2": ["10.0.0.2:4242"], "192.168.100.3": ["10.0.0.3:4242"]}\n' +
      'punchy: {respond: true, delay: 2s}\nrelay: {am_relay: true}\nlighthouse: {interval: 30, remote_allow_list: {"10.0.0.0/8": false}}\n',
  );
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(r.changed, ['static_host_map', 'lighthouse.interval', 'lighthouse.remote_allow_list', 'punchy.respond', 'punchy.delay', 'relay.am_relay']);
  t.equal(r.restartNeeded, undefined);
  for (const key of ['static_host_map', 'lighthouse.interval', 'punchy.respond', 'punchy.delay', 'relay.am_relay']) {
    t.equal(logged(f, `${key} has changed`).length, 1, `"${key} has changed" logged`);
  }
  t.equal(logged(f, 'lighthouse.remote_allow_list and/or lighthouse.remote_allow_ranges has changed').length, 1);
  const c = f.live.config;
  t.same([c.punchy.respond, c.punchy.delay, c.relay.am_relay, c.lighthouse.interval], [true, 2000, true, 30000], 'in force');
  t.equal(f.adopted.length, 1, 'the parts that keep state are told');
  t.same(Object.keys(f.adopted[0]!.previous.static_host_map), ['192.168.100.2']);
  t.same(Object.keys(f.adopted[0]!.next.static_host_map), ['192.168.100.2', '192.168.100.3'], 'with the new static host');
});

t.test('a broken firewall section refuses the reload with the key path and changes nothing', async (t) => {
  const good = 'firewall: {inbound: [{port: 7001, proto: udp, host: any}], outbound: [{port: any, proto: any, host: any}]}\n';
  const f = fixture(t, good);
  const hash = f.live.firewallHash;
  const rules = f.live.firewall;
  const r = f.reloadWith('firewall: {inbound: [{port: 7001, proto: bogus, host: any}], outbound: [{port: any, proto: any, host: any}]}\nlisten: {send_recv_error: never}\n');
  t.equal(r.ok, false);
  t.match(r.error, /firewall\.inbound\[0\]\.proto/, `the error names the key path: ${r.error}`);
  t.equal(f.live.firewallHash, hash, 'the running rules stay');
  t.equal(f.live.firewall, rules);
  t.equal(f.live.config.listen.send_recv_error, 'always', 'and nothing else of the file is taken');
  t.same(f.firewalls, []);
  t.same(f.broadcasts, []);
  t.same(f.buffers, [], 'not even the socket buffers');
  t.equal(logged(f, 'Failed to reload config, keeping the running config').length, 1);
});
