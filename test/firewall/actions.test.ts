/**
 * firewall.inbound_action / outbound_action in the config and through a reload: `drop` by default, `reject`
 * accepted, anything else refused naming the key path (Go warns and drops; a typo in a security setting should not
 * pass silently). A reload that changes only an action hands the routines a rule set carrying it and says so.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../src/shared/config';
import { Firewall } from '../../src/shared/firewall';
import type { FirewallUpdate } from '../../src/shared/ipc/messages';
import { Logger } from '../../src/shared/log';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { LiveConfig } from '../../src/supervisor/live-config';
import { reloadConfig, summarize } from '../../src/supervisor/reload';

const PKI = 'pki: {ca: a, cert: b, key: c}\n';

t.test('defaults to drop both ways; reject is accepted per direction', async (t) => {
  t.same(
    [parseConfig(PKI).config.firewall.inbound_action, parseConfig(PKI).config.firewall.outbound_action],
    ['drop', 'drop'],
  );
  const { config, warnings } = parseConfig(PKI + 'firewall: {inbound_action: reject, outbound_action: drop}\n');
  t.equal(config.firewall.inbound_action, 'reject');
  t.equal(config.firewall.outbound_action, 'drop');
  t.same(warnings.filter((w) => /action/.test(String(w.fields.key))), [], 'known keys: no unknown-key warning');
});

t.test('a bad action is refused, naming the key path', async (t) => {
  for (const [key, value] of [['inbound_action', 'deny'], ['outbound_action', 'Reject'], ['inbound_action', 'true']] as const) {
    try {
      parseConfig(`${PKI}firewall: {${key}: ${value}}\n`);
      t.fail(`${key}: ${value} accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError, 'a ConfigError');
      t.match((err as Error).message, new RegExp(`^firewall\\.${key}: must be one of drop, reject, got`), `${key}: ${value}`);
    }
  }
});

t.test('the Firewall exposes the actions (absent: drop)', async (t) => {
  const local = { ips: [1], subnets: [] };
  const none = new Firewall({ inbound: [], outbound: [], local });
  t.same([none.rejectInbound, none.rejectOutbound], [false, false]);
  const both = new Firewall({ inbound: [], outbound: [], local, inboundAction: 'reject', outboundAction: 'reject' });
  t.same([both.rejectInbound, both.rejectOutbound], [true, true]);
  const inOnly = new Firewall({ inbound: [], outbound: [], local, inboundAction: 'reject', outboundAction: 'drop' });
  t.same([inOnly.rejectInbound, inOnly.rejectOutbound], [true, false]);
});

t.test('reload: an action change alone reaches the routines and the summary; a bad one keeps the running rules', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-fw-actions-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCA(path.join(dir, 'pki'), 'ca-one');
  const host = makeHostCert(path.join(dir, 'pki'), ca, { name: 'node', ip: '192.168.100.1/24' });
  const file = path.join(dir, 'config.yml');
  const write = (firewall: string): void =>
    writeFileSync(file, `pki: {ca: ${host.ca}, cert: ${host.cert}, key: ${host.key}}\ntun: {disabled: true}\nfirewall: {${firewall}}\n`);
  write('outbound_action: reject');
  const log = new Logger({ format: 'json', disableTimestamp: true, write: () => undefined });
  const live = new LiveConfig(file, log);
  t.equal(live.firewall.inboundAction, 'drop', 'the initial rule set carries the actions');
  t.equal(live.firewall.outboundAction, 'reject');

  const broadcast: FirewallUpdate[] = [];
  const reload = () => reloadConfig({ live, log, resetConntrack: () => undefined, broadcastFirewall: (f) => void broadcast.push(f) });
  write('outbound_action: reject, inbound_action: reject');
  const r = reload();
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.ok(r.changed.includes('firewall'));
  t.equal(broadcast.length, 1, 'handed to the routines');
  t.equal(broadcast[0]!.inboundAction, 'reject');
  t.equal(broadcast[0]!.outboundAction, 'reject');
  t.same(r.firewall?.inboundAction, { old: 'drop', new: 'reject' });
  t.match(r.summary, /inbound_action drop -> reject/);
  t.notMatch(r.summary, /outbound_action/, 'only what changed is named');

  write('outbound_action: reject, inbound_action: bounce');
  const bad = reload();
  t.equal(bad.ok, false);
  t.match(bad.error, /firewall\.inbound_action: must be one of drop, reject/);
  t.equal(broadcast.length, 1, 'nothing handed out');
  t.equal(live.firewall.inboundAction, 'reject', 'the running action is kept');
});

t.test('summary: both action changes are named after the rules version', async (t) => {
  const s = summarize({
    ok: true,
    changed: ['firewall'],
    firewall: { oldHash: 'h', hash: 'h', rulesVersion: 4, inboundAction: { old: 'reject', new: 'drop' }, outboundAction: { old: 'drop', new: 'reject' } },
  });
  t.equal(s, 'firewall changed; firewall h -> h (rules version 4, inbound_action reject -> drop, outbound_action drop -> reject)');
});
