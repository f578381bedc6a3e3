/**
 * nebula-ts-cert as a drop-in for nebula-cert 1.11.0: `print` and `print -json` byte-identical to 1.11.0's on the
 * same files (committed fixtures, and certificates either tool makes now), certificates each tool makes verified
 * by the other with equal fingerprints (v1 and v2, 25519 and P256, mixed CA bundles, -version on sign both ways),
 * the same usage texts, and the same error output for a table of bad invocations. Needs the 1.11.0 binary except
 * for the fixture prints (nebula-cert-111.ts: skipped outside CI without it).
 */
process.env.TZ = 'UTC'; // nebula-cert runs with TZ=UTC too, so printed times agree
delete process.env.NEBULA_CA_PASSPHRASE;
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NebulaCertificateV2, unmarshalAnyCertFromPem, unmarshalAnyCertsFromPem } from '../../src/shared/pki';
import { runCli } from './cli-helpers';
import { CLI, cliBuilt, tempDir, type RunResult } from './helpers';
import { FIXTURE_DIR, V2_CERTS, fixtureText } from './v2/fixtures';
import { needNebulaCert111, runGo } from './v2/nebula-cert-111';

function ok(t: Test, r: RunResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.stderr.trim() ? ': ' + r.stderr.trim() : ''}`);
}

const read = (dir: string, file: string): string => readFileSync(path.join(dir, file), 'utf8');

t.test('print and print -json of every nebula-cert 1.11.0 fixture are byte-identical to what it printed', async (t) => {
  for (const name of [...V2_CERTS, 'ca-v1', 'bundle-mixed']) {
    const file = path.join(FIXTURE_DIR, `${name}.crt`);
    const json = runCli(FIXTURE_DIR, 'print', '-json', '-path', file);
    ok(t, json, `print -json ${name}`);
    t.equal(json.stdout, fixtureText(`${name}.json`), `${name}: print -json byte-identical`);
    t.equal(runCli(FIXTURE_DIR, 'print', '-path', file).stdout, fixtureText(`${name}.txt`), `${name}: print byte-identical`);
  }
});

t.test('"-" as a path: certificates and keys through stdin and stdout', async (t) => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
  const dir = tempDir(t);
  const spawn = (input: string, ...args: string[]): RunResult => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, input, encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const ca = spawn('', 'ca', '-name', 'stdio', '-out-key', 'ca.key', '-out-crt', '-');
  ok(t, ca, 'ca -out-crt -');
  t.match(ca.stdout, /^-----BEGIN NEBULA CERTIFICATE V2-----\n[^]*-----END NEBULA CERTIFICATE V2-----\n$/, 'the CA certificate on stdout');
  t.notOk(existsSync(path.join(dir, '-')), 'no file named "-"');
  const host = spawn(ca.stdout, 'sign', '-ca-crt', '-', '-name', 'h', '-networks', '10.1.0.1/16', '-out-crt', '-', '-out-key', 'h.key');
  ok(t, host, 'sign -ca-crt - -out-crt -');
  t.equal(host.stdout.match(/BEGIN NEBULA CERTIFICATE V2/g)?.length, 1, 'one certificate on stdout, the key in its file');
  writeFileSync(path.join(dir, 'ca.crt'), ca.stdout);
  ok(t, spawn(host.stdout, 'verify', '-ca', 'ca.crt', '-crt', '-'), 'verify -crt -');
  const printed = spawn(ca.stdout + host.stdout, 'print', '-json', '-path', '-');
  ok(t, printed, 'print -path -');
  t.same(
    (JSON.parse(printed.stdout) as Array<{ fingerprint: string }>).map((c) => c.fingerprint),
    unmarshalAnyCertsFromPem(ca.stdout + host.stdout).map((c) => c.fingerprint()),
    'both certificates read from stdin',
  );
  const keys = spawn('', 'keygen', '-curve', 'P256', '-out-key', 'k.key', '-out-pub', '-');
  t.match(keys.stdout, /^-----BEGIN NEBULA P256 PUBLIC KEY-----\n/, 'keygen -out-pub -');
});

/** Go's stderr with its program path replaced by ours and the flag package's own echo of a parse error dropped. */
function normalizeGo(bin: string, stderr: string): string {
  const lines = stderr.replaceAll(bin, 'nebula-ts-cert').split('\n');
  return lines.filter((l, i) => lines[i + 1] !== `Error: ${l}`).join('\n');
}

t.test('usage texts are 1.11.0\'s', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  for (const args of [[], ['-h'], ['ca', '-h'], ['sign', '-h'], ['keygen', '-h'], ['print', '-h'], ['verify', '-h'], ['bogus', '-h']]) {
    const go = runGo(bin, dir, ...args);
    const ts = runCli(dir, ...args);
    t.equal(ts.stderr, normalizeGo(bin, go.stderr), `${args.join(' ') || '(no args)'}: same text`);
    t.equal(ts.code, go.code, `${args.join(' ') || '(no args)'}: same exit status`);
  }
});

t.test('certificates made by nebula-ts-cert pass nebula-cert 1.11.0 verify and print identically', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const ts = (...args: string[]): RunResult => runCli(dir, ...args);
  const go = (...args: string[]): RunResult => runGo(bin, dir, ...args);
  ok(t, ts('ca', '-name', 'TS <v2> CA', '-networks', '10.0.0.0/8,fd00::/16', '-unsafe-networks', '192.168.0.0/16,fd99::/16', '-groups', 'a,b,c'), 'ca (v2 by default)');
  ok(t, ts('ca', '-name', 'TS P256', '-curve', 'P256', '-out-crt', 'p.crt', '-out-key', 'p.key'), 'ca -curve P256');
  ok(t, ts('ca', '-name', 'TS v1', '-version', '1', '-ips', '10.0.0.0/8', '-subnets', '192.168.0.0/16', '-groups', 'x,y', '-out-crt', 'v1.crt', '-out-key', 'v1.key'), 'ca -version 1 with 1.6.1 flags');
  ok(t, ts('keygen', '-out-key', 'k.key', '-out-pub', 'k.pub'), 'keygen');
  ok(t, ts('keygen', '-curve', 'P256', '-out-key', 'pk.key', '-out-pub', 'pk.pub'), 'keygen -curve P256');
  const signs: Array<[ca: string, name: string, version: number, args: string[]]> = [
    ['ca', 'v4', 2, ['-networks', '10.1.0.1/16']],
    ['ca', 'v6', 2, ['-networks', 'fd00::6/64', '-groups', 'c']],
    ['ca', 'dual', 2, ['-networks', '10.1.2.3/16,fd00::3/64', '-unsafe-networks', '192.168.7.0/24,fd99::/64', '-groups', 'a,b']],
    ['ca', 'multi', 2, ['-networks', '10.3.0.1/16, 10.2.0.1/16,fd00::1:1/112']],
    ['ca', 'inpub', 2, ['-networks', '10.4.0.1/16', '-in-pub', 'k.pub', '-duration', '1h']],
    ['ca', 'asv1', 1, ['-version', '1', '-ip', '10.5.0.1/16', '-subnets', '192.168.8.9/24']],
    ['p', 'p256', 2, ['-networks', '10.9.0.1/16,fd09::1/64', '-unsafe-networks', '172.16.0.0/12', '-groups', 'p']],
    ['p', 'p256pub', 2, ['-networks', '10.9.0.2/16', '-in-pub', 'pk.pub']],
    ['v1', 'legacy', 1, ['-ip', '10.6.0.1/8', '-groups', 'x', '-subnets', '192.168.1.0/24']],
    ['v1', 'upgraded', 2, ['-version', '2', '-networks', '10.6.0.2/8']],
  ];
  for (const [ca, name, , args] of signs) ok(t, ts('sign', '-ca-crt', `${ca}.crt`, '-ca-key', `${ca}.key`, '-name', name, ...args), `sign ${name}`);
  writeFileSync(path.join(dir, 'bundle.crt'), read(dir, 'ca.crt') + read(dir, 'p.crt') + read(dir, 'v1.crt'));

  for (const file of ['ca.crt', 'p.crt', 'v1.crt', 'bundle.crt', ...signs.map(([, name]) => `${name}.crt`)]) {
    const printed = go('print', '-json', '-path', file);
    ok(t, printed, `nebula-cert print -json ${file}`);
    t.equal(ts('print', '-json', '-path', file).stdout, printed.stdout, `${file}: print -json byte-identical`);
    t.equal(ts('print', '-path', file).stdout, go('print', '-path', file).stdout, `${file}: print byte-identical`);
    const goFingerprints = (JSON.parse(printed.stdout) as Array<{ fingerprint: string }>).map((c) => c.fingerprint);
    t.same(unmarshalAnyCertsFromPem(read(dir, file)).map((c) => c.fingerprint()), goFingerprints, `${file}: fingerprints equal`);
  }
  for (const [, name, version] of signs) {
    ok(t, go('verify', '-ca', 'bundle.crt', '-crt', `${name}.crt`), `nebula-cert verify ${name} against the mixed bundle`);
    ok(t, ts('verify', '-ca', 'bundle.crt', '-crt', `${name}.crt`), `nebula-ts-cert verify ${name}`);
    t.equal(unmarshalAnyCertFromPem(read(dir, `${name}.crt`)).cert instanceof NebulaCertificateV2 ? 2 : 1, version, `${name}: v${version}`);
  }
  // The host key files match: nebula-cert signs for our P256 key, and our key pairs with its cert.
  ok(t, go('sign', '-ca-crt', 'p.crt', '-ca-key', 'p.key', '-name', 'go-p', '-networks', '10.9.0.3/16', '-in-pub', 'pk.pub'), 'nebula-cert signs with our P256 CA and key');
  ok(t, ts('verify', '-ca', 'p.crt', '-crt', 'go-p.crt'), 'and we verify it');
  ok(t, go('sign', '-name', 'go-v2', '-networks', '10.7.0.1/16,fd00::7/64', '-groups', 'a'), 'nebula-cert signs with our v2 CA');
  ok(t, ts('verify', '-ca', 'ca.crt', '-crt', 'go-v2.crt'), 'and we verify it');
  // A negative control: the wrong CA fails both.
  t.not(go('verify', '-ca', 'p.crt', '-crt', 'v4.crt').code, 0, 'wrong CA refused by nebula-cert');
  t.not(ts('verify', '-ca', 'p.crt', '-crt', 'v4.crt').code, 0, 'wrong CA refused by nebula-ts-cert');
});

t.test('certificates made by nebula-cert 1.11.0 pass nebula-ts-cert verify, print identically, and can sign', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const ts = (...args: string[]): RunResult => runCli(dir, ...args);
  const go = (...args: string[]): RunResult => runGo(bin, dir, ...args);
  ok(t, go('ca', '-name', 'Go R', '-networks', '10.50.0.0/16,fd50::/32', '-unsafe-networks', '172.16.0.0/12', '-groups', 'g1,g2', '-out-crt', 'r.crt', '-out-key', 'r.key'), 'go ca restricted');
  ok(t, go('ca', '-name', 'Go P', '-curve', 'P256', '-out-crt', 'p.crt', '-out-key', 'p.key'), 'go ca P256');
  ok(t, go('ca', '-name', 'Go v1', '-version', '1', '-duration', '100h', '-out-crt', 'o.crt', '-out-key', 'o.key'), 'go ca v1');
  const signs: Array<[string, string, string[]]> = [
    ['r', 'groups', ['-networks', '10.50.1.1/16,fd50::1/64', '-groups', 'g1']],
    ['r', 'unsafe', ['-networks', '10.50.2.2/24', '-unsafe-networks', '172.20.0.0/16']],
    ['p', 'p256', ['-networks', 'fd99::5/64']],
    ['o', 'v1host', ['-networks', '192.168.100.1/24']],
    ['o', 'v2fromv1', ['-version', '2', '-networks', '192.168.100.2/24']],
  ];
  for (const [ca, name, args] of signs) ok(t, go('sign', '-ca-crt', `${ca}.crt`, '-ca-key', `${ca}.key`, '-name', name, ...args), `go sign ${name}`);
  writeFileSync(path.join(dir, 'bundle.crt'), read(dir, 'o.crt') + read(dir, 'r.crt') + read(dir, 'p.crt'));
  for (const [, name] of signs) {
    ok(t, ts('verify', '-ca', 'bundle.crt', '-crt', `${name}.crt`), `nebula-ts-cert verify ${name}`);
    t.equal(ts('print', '-json', '-path', `${name}.crt`).stdout, go('print', '-json', '-path', `${name}.crt`).stdout, `${name}: print -json identical`);
  }
  t.equal(ts('print', '-path', 'bundle.crt').stdout, go('print', '-path', 'bundle.crt').stdout, 'bundle: print identical');
  // nebula-ts-cert signs with nebula-cert's CAs (each version, and across versions), honouring their limits.
  ok(t, ts('sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'ts-r', '-networks', 'fd50::9/64,10.50.9.9/16', '-groups', 'g2'), 'ts sign with go CA');
  ok(t, ts('sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'ts-r1', '-version', '1', '-networks', '10.50.9.8/16'), 'ts sign v1 with go v2 CA');
  ok(t, ts('sign', '-ca-crt', 'p.crt', '-ca-key', 'p.key', '-name', 'ts-p', '-networks', '10.1.1.1/24'), 'ts sign with go P256 CA');
  ok(t, ts('sign', '-ca-crt', 'o.crt', '-ca-key', 'o.key', '-name', 'ts-o', '-networks', '10.2.2.2/24'), 'ts sign with go v1 CA');
  for (const name of ['ts-r', 'ts-r1', 'ts-p', 'ts-o']) ok(t, go('verify', '-ca', 'bundle.crt', '-crt', `${name}.crt`), `nebula-cert verifies ${name}`);
  const refused = ts('sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'bad', '-networks', '10.70.1.2/16');
  const goRefused = go('sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'bad', '-networks', '10.70.1.2/16');
  t.equal(refused.stderr, goRefused.stderr, 'a constraint violation is reported as nebula-cert reports it');
  t.equal(refused.code, 1);
  // v1 certificates of curve P256 (field 100) read as 1.11 reads them (more in v1-p256.test.ts).
  ok(t, go('ca', '-name', 'Go v1 P256', '-version', '1', '-curve', 'P256', '-out-crt', 'v1p.crt', '-out-key', 'v1p.key'), 'go ca v1 P256');
  t.equal(ts('print', '-json', '-path', 'v1p.crt').stdout, go('print', '-json', '-path', 'v1p.crt').stdout, 'v1 P256 CA: print -json identical');
});

t.test('bad invocations fail as nebula-cert 1.11.0 fails them', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const go = (...args: string[]): RunResult => runGo(bin, dir, ...args);
  ok(t, go('ca', '-name', 'CA', '-networks', '10.0.0.0/8', '-groups', 'a'), 'ca');
  ok(t, go('ca', '-name', 'Other', '-out-crt', 'other.crt', '-out-key', 'other.key'), 'other ca');
  ok(t, go('sign', '-name', 'h', '-networks', '10.1.0.1/16'), 'host');
  ok(t, go('keygen', '-curve', 'P256', '-out-key', 'pk.key', '-out-pub', 'pk.pub'), 'keygen');
  writeFileSync(path.join(dir, 'exists.crt'), 'x');
  const cases: string[][] = [
    ['ca'],
    ['ca', '-name', 'x', '-version', '3'],
    ['ca', '-name', 'x', '-networks', 'bogus'],
    ['ca', '-name', 'x', '-version', '1', '-networks', 'fd00::/8'],
    ['ca', '-name', 'x', '-curve', 'ed448', '-out-key', 'n.key', '-out-crt', 'n.crt'],
    ['ca', '-name', 'x'],
    ['ca', '-name', 'x', '-out-key', 'n.key'],
    ['ca', '-name', 'x', '-duration', '-1h'],
    ['ca', '-name', 'x', '-duration', '1y'],
    ['ca', '-name', 'x', '-encrypt', '-argon-memory', '0'],
    ['ca', '-name', 'x', '-encrypt', '-out-key', 'n.key', '-out-crt', 'n.crt'],
    ['ca', '-name', 'x', '-out-key', '-', '-out-crt', '-'],
    ['ca', '-nmae', 'x'],
    ['sign', '-name', 'h2'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-in-pub', 'pk.pub', '-out-key', 'x.key'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-version', '7'],
    ['sign', '-name', 'h2', '-networks', '11.0.0.1/8'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-groups', 'a,zzz'],
    ['sign', '-name', 'h2', '-networks', 'nope'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-unsafe-networks', 'nope'],
    ['sign', '-name', 'h2', '-version', '1', '-networks', '10.1.0.1/16,10.1.0.2/16'],
    ['sign', '-name', 'h2', '-version', '1', '-networks', '10.1.0.1/16,fd00::1/64'],
    ['sign', '-name', 'h2', '-version', '1', '-networks', '10.1.0.1/16', '-unsafe-networks', 'fd00::/64'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-ca-key', 'missing.key'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-ca-key', 'pk.pub'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-ca-key', 'other.key'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-ca-crt', 'h.crt'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-in-pub', 'pk.pub'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-in-pub', 'ca.key'],
    ['sign', '-name', 'exists', '-networks', '10.1.0.2/16'],
    ['sign', '-name', 'h2', '-networks', '10.1.0.2/16', '-ca-key', '-', '-in-pub', '-'],
    ['keygen', '-out-key', 'a.key'],
    ['keygen', '-out-key', 'a.key', '-out-pub', 'a.pub', '-curve', 'x'],
    ['keygen', '-out-key', '-', '-out-pub', '-'],
    ['print'],
    ['print', '-path', 'missing.crt'],
    ['print', '-path', 'pk.pub'],
    ['print', '-json=maybe', '-path', 'h.crt'],
    ['verify', '-ca', 'ca.crt'],
    ['verify', '-ca', 'missing', '-crt', 'h.crt'],
    ['verify', '-ca', 'h.crt', '-crt', 'h.crt'],
    ['verify', '-ca', 'other.crt', '-crt', 'h.crt'],
    ['verify', '-ca', 'ca.crt', '-crt', 'missing'],
    ['verify', '-ca', '-', '-crt', '-'],
    ['frobnicate'],
  ];
  for (const args of cases) {
    const g = go(...args);
    const s = runCli(dir, ...args);
    const label = args.join(' ');
    t.not(g.code, 0, `${label}: nebula-cert refuses it`);
    t.equal(s.code, g.code, `${label}: same exit status`);
    t.equal(s.stderr, normalizeGo(bin, g.stderr), `${label}: same stderr`);
    t.equal(s.stdout, '', `${label}: nothing on stdout`);
  }
});
