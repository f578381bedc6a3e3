/**
 * `bin/nebula-ts -config FILE -test`: validates a config, prints the effective config, exits non-zero on errors
 * with the key path named, never a stack trace. Runs the compiled CLI (npm test builds first).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';

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

// -test loads the PKI files as a start would: the good configs name a real CA, cert and key.
const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'nts-cli-pki-'));
t.teardown(() => rmSync(pkiDir, { recursive: true, force: true }));
const ca = makeCA(pkiDir, 'cli-ca', 24 * 3600, Math.floor(Date.now() / 1000) - 86_400); // old enough to sign an expired cert
const good = makeHostCert(pkiDir, ca, { name: 'good', ip: '192.168.100.1/24' });
const PKI = pkiYaml(good);

function pkiYaml(files: { ca: string; cert: string; key: string }): string {
  return `pki: {ca: ${files.ca}, cert: ${files.cert}, key: ${files.key}}\n`;
}

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

t.test('-test loads the PKI as a start would: one line per problem, exit 1', async (t) => {
  // Config warnings are log lines (time=... level=warning ...); the problems are the plain lines.
  const problems = (r: { stderr: string }): string[] => r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('time='));

  const noCA = runTest(pkiYaml({ ...good, ca: path.join(pkiDir, 'missing-ca.crt') }));
  t.equal(noCA.status, 1, 'a missing CA file');
  t.same(problems(noCA), [`unable to read pki.ca file ${path.join(pkiDir, 'missing-ca.crt')}: ENOENT: no such file or directory, open '${path.join(pkiDir, 'missing-ca.crt')}'`]);
  t.equal(noCA.stdout, '', 'no effective config printed');

  const otherCA = makeCA(path.join(pkiDir, 'other'), 'other-ca');
  const foreign = makeHostCert(path.join(pkiDir, 'other'), otherCA, { name: 'foreign', ip: '192.168.100.2/24' });
  const unsigned = runTest(pkiYaml({ ...foreign, ca: good.ca }));
  t.equal(unsigned.status, 1, 'a cert not signed by the CA');
  t.same(problems(unsigned), ['pki.cert: certificate is not signed by any CA in pki.ca (could not find ca for the certificate)']);

  const now = Math.floor(Date.now() / 1000);
  const old = makeHostCert(pkiDir, ca, { name: 'expired', ip: '192.168.100.3/24', notBefore: now - 7200, notAfter: now - 3600 });
  const expired = runTest(pkiYaml(old));
  t.equal(expired.status, 1, 'an expired cert');
  t.same(problems(expired), ['pki.cert: certificate is expired']);

  const mismatch = runTest(pkiYaml({ ...good, key: foreign.key }));
  t.equal(mismatch.status, 1, 'a key that does not match');
  t.same(problems(mismatch), ["pki.key: public key in cert and private key supplied don't match"]);

  const all = runTest(pkiYaml({ ca: path.join(pkiDir, 'missing-ca.crt'), cert: old.cert, key: foreign.key }));
  t.equal(all.status, 1);
  t.equal(problems(all).length, 3, 'every problem reported, one line each: ' + all.stderr);
  t.notMatch(all.stderr, /\n\s+at /, 'no stack trace');
});

t.test('the example config fails -test when /etc/nebula/ca.crt does not exist', { skip: existsSync('/etc/nebula/ca.crt') && 'a CA exists at /etc/nebula/ca.crt' }, async (t) => {
  const r = spawnSync(process.execPath, [bin, '-config', path.join(root, 'config', 'example.yml'), '-test'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /^unable to read pki\.ca file \/etc\/nebula\/ca\.crt: /m);
});
