/**
 * `nebula-ts -config F -test` checks the lighthouse and static hosts as a start would (Go 1.6.1 refuses a lighthouse
 * without a static_host_map entry, and hosts outside the certificate's network): one line per problem naming the
 * key path, exit 1; the same hosts written correctly exit 0. Runs the compiled CLI (npm test builds first).
 * The PKI cases (missing CA, unsigned, expired, key mismatch) are in nebula-ts.test.ts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { parseConfig, vpnNetworkIssues } from '../../src/shared/config';

const bin = path.resolve(__dirname, '..', '..', 'bin', 'nebula-ts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-cli-hosts-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const host = makeHostCert(dir, makeCA(dir, 'cli-ca'), { name: 'host', ip: '192.168.100.1/24' });
const PKI = `pki: {ca: ${host.ca}, cert: ${host.cert}, key: ${host.key}}\n`;

function runTest(yaml: string): { status: number | null; stdout: string; problems: string[] } {
  const file = path.join(dir, 'config.yml');
  writeFileSync(file, PKI + yaml);
  // Without the test runner's loaders (NODE_OPTIONS): the CLI starts in a fraction of the time.
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, bin, '-config', file, '-test'], { encoding: 'utf8' });
  // Config warnings are log lines (time=... level=warning ...); the problems are the plain lines.
  return { status: r.status, stdout: r.stdout, problems: r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('time=')) };
}

t.test('a lighthouse host missing from static_host_map: exit 1, named', async (t) => {
  const r = runTest('lighthouse: {hosts: [192.168.100.9]}\n');
  t.equal(r.status, 1);
  t.same(r.problems, ['lighthouse.hosts[0]: 192.168.100.9 has no static_host_map entry']);
  t.equal(r.stdout, '', 'no effective config printed');
});

t.test('hosts outside the network of the certificate: one line each', async (t) => {
  const r = runTest('lighthouse: {hosts: [10.1.1.1]}\nstatic_host_map: {"10.1.1.1": ["10.99.0.1:4242"]}\n');
  t.equal(r.status, 1);
  t.same(r.problems.sort(), [
    'lighthouse.hosts[0]: lighthouse host 10.1.1.1 is not in our subnet (192.168.100.0/24), invalid',
    'static_host_map.10.1.1.1: static_host_map key is not in our subnet (192.168.100.0/24), invalid',
  ]);
});

t.test('a static host address that is not host:port: exit 1, named', async (t) => {
  const r = runTest('static_host_map: {"192.168.100.5": ["not an address!"]}\n');
  t.equal(r.status, 1);
  t.same(r.problems, ['static_host_map["192.168.100.5"][0]: "not an address!" is not a host:port address']);
});

t.test('the same hosts written correctly: exit 0, the effective config printed', async (t) => {
  const r = runTest('lighthouse: {hosts: [192.168.100.9]}\nstatic_host_map: {"192.168.100.9": ["10.99.0.9:4242"]}\n');
  t.equal(r.status, 0, r.problems.join('\n'));
  t.same(r.problems, []);
  const cfg = JSON.parse(r.stdout) as { lighthouse: { hosts: string[] }; static_host_map: Record<string, string[]> };
  t.same(cfg.lighthouse.hosts, ['192.168.100.9']);
  t.same(cfg.static_host_map, { '192.168.100.9': ['10.99.0.9:4242'] });
});

t.test('an IPv6 static_host_map key (first contact by IPv6 address) must lie in an IPv6 network of the certificate', async (t) => {
  const r = runTest('static_host_map: {"fd42::5": ["10.99.0.5:4242"]}\n');
  t.equal(r.status, 1, 'a v1 certificate has no IPv6 network');
  t.same(r.problems, ['static_host_map.fd42::5: static_host_map key is not in our subnet (no IPv6 network), invalid']);
  const cfg = parseConfig(PKI + 'static_host_map: {"fd42::5": ["10.99.0.5:4242"], "fd43::5": ["10.99.0.6:4242"], "192.168.100.5": ["10.99.0.7:4242"]}\n').config;
  const issues = vpnNetworkIssues(cfg, { ip: 0xc0a86401, mask: 0xffffff00 }, ['fd42::1/64']);
  t.same(issues.map((i) => `${i.path}: ${i.message}`), ['static_host_map.fd43::5: static_host_map key is not in our subnet (fd42::1/64), invalid'], 'inside the IPv6 network: accepted');
});
