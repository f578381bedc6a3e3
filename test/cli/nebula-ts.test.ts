/**
 * `bin/nebula-ts -config FILE -test`: validates a config, prints the effective config, exits non-zero on errors
 * with the key path named, never a stack trace. Runs the compiled CLI (npm test builds first).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const bin = path.join(root, 'bin', 'nebula-ts');

function runTest(yaml: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-cli-'));
  try {
    const file = path.join(dir, 'config.yml');
    writeFileSync(file, yaml);
    const r = spawnSync(process.execPath, [bin, '-config', file, '-test'], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PKI = 'pki: {ca: /etc/ca.crt, cert: /etc/host.crt, key: /etc/host.key}\n';

t.test('a valid config prints the effective config with defaults and exits 0', async (t) => {
  const r = runTest(PKI + 'listen: {port: 4242}\n');
  t.equal(r.status, 0, r.stderr);
  const cfg = JSON.parse(r.stdout) as { listen: { port: number; host: string }; tun: { mtu: number }; cipher: string; routines: number };
  t.equal(cfg.listen.port, 4242);
  t.equal(cfg.listen.host, '0.0.0.0');
  t.equal(cfg.tun.mtu, 1300);
  t.equal(cfg.cipher, 'aes');
  t.equal(cfg.routines, 1);
});

t.test('the deprecated routine keys warn once and give their maximum', async (t) => {
  const r = runTest(PKI + 'tun: {routines: 2}\nlisten: {routines: 3}\n');
  t.equal(r.status, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('Setting tun.routines and listen.routines is deprecated'));
  t.equal(warnings.length, 1, 'one WARN line');
  t.match(warnings[0], /level=warning/);
  t.match(r.stdout, /"routines": 3/);
});

t.test('an invalid config names the key path and exits non-zero without a stack trace', async (t) => {
  const r = runTest(PKI + 'firewall:\n  inbound:\n    - {port: any, proto: any, host: any}\n    - {port: any, proto: any, host: any}\n    - {port: 8o, proto: tcp, host: any}\n');
  t.not(r.status, 0);
  t.match(r.stderr, /firewall\.inbound\[2\]\.port: "8o" is not a port or range/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a YAML syntax error is reported with its line', async (t) => {
  const r = runTest(PKI + 'listen:\n  port: [4242\n');
  t.not(r.status, 0);
  t.match(r.stderr, /line \d+/);
  t.notMatch(r.stderr, /\n\s+at /);
});

t.test('a missing -config flag is an error', async (t) => {
  const r = spawnSync(process.execPath, [bin], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /-config flag must be set/);
});
