/**
 * v1 P256 certificates between nebula-ts-cert and Go's nebula-cert 1.9.3 (the last v1-only release; P256 exists since
 * 1.7) and 1.11.0 (`-version 1`), in both directions: what Go makes re-encodes byte for byte here with the
 * fingerprints both Go versions print; what nebula-ts-cert makes passes both `nebula-cert verify`s, prints as 1.11.0
 * prints it, and its key files carry Go's banners; Go signs with our CA key and we with Go's; the other ECDSA form of
 * a signature verifies in Go too, under the alternate fingerprint. nebula-cert 1.6.1 knows no P256 (it panics on a
 * 65-byte CA key), so it has no part here. Binaries from $NEBULA_BIN_DIR (../shared/tools/fetch-nebula.sh); outside
 * CI a missing one skips with the reason, under CI=true it fails.
 */
process.env.TZ = 'UTC'; // nebula-cert runs with TZ=UTC too, so printed times agree
delete process.env.NEBULA_CA_PASSPHRASE;
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NebulaCertificate, swapP256Signature, unmarshalCertFromPem, pemDecode } from '../../src/shared/pki';
import { findGoBinary, goBinaryCandidates } from '../../src/testbed/mesh-v2';
import { inCI } from '../helpers/prereq';
import { runCli } from './cli-helpers';
import { tempDir, type RunResult } from './helpers';
import { runGo } from './v2/nebula-cert-111';

const ROOT = path.resolve(__dirname, '..', '..');

/** nebula-cert of `version`, or undefined after skipping (outside CI) / failing (CI) with the reason. */
function needGoCert(t: Test, version: string): string | undefined {
  const bin = findGoBinary(ROOT, version, 'nebula-cert');
  if (bin) return bin;
  const reason = `missing prerequisite: Go nebula-cert ${version} (looked at ${goBinaryCandidates(ROOT, version, 'nebula-cert').join(', ')}; run ../shared/tools/fetch-nebula.sh DIR and set NEBULA_BIN_DIR=DIR)`;
  if (inCI) t.fail(`${reason} (CI must fetch it)`);
  else {
    console.error(`# SKIP ${reason}`);
    t.skip(reason, () => undefined);
  }
  return undefined;
}

function bins(t: Test): { go193: string; go111: string } | undefined {
  const go193 = needGoCert(t, '1.9.3');
  const go111 = needGoCert(t, '1.11.0');
  return go193 && go111 ? { go193, go111 } : undefined;
}

function ok(t: Test, r: RunResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.stderr.trim() ? ': ' + r.stderr.trim() : ''}`);
}

const read = (dir: string, file: string): string => readFileSync(path.join(dir, file), 'utf8');
const certIn = (dir: string, file: string): NebulaCertificate => unmarshalCertFromPem(read(dir, file)).cert;
const firstLine = (dir: string, file: string): string => read(dir, file).split('\n')[0]!;

/** The fingerprint nebula-cert 1.9.3 prints (one JSON object per line) and 1.11.0 prints (one JSON array). */
function goFingerprints(dir: string, go193: string, go111: string, file: string): { v193: string; v111: string } {
  const a = runGo(go193, dir, 'print', '-json', '-path', file);
  const b = runGo(go111, dir, 'print', '-json', '-path', file);
  if (a.code !== 0 || b.code !== 0) throw new Error(`print ${file}: ${a.stderr}${b.stderr}`);
  return { v193: (JSON.parse(a.stdout) as { fingerprint: string }).fingerprint, v111: (JSON.parse(b.stdout) as Array<{ fingerprint: string }>)[0]!.fingerprint };
}

t.test('v1 P256 certificates made now by nebula-cert 1.9.3 and 1.11.0 read byte-identically, with both Go fingerprints', async (t) => {
  const b = bins(t);
  if (!b) return;
  const dir = tempDir(t);
  const g193 = (...args: string[]): RunResult => runGo(b.go193, dir, ...args);
  const g111 = (...args: string[]): RunResult => runGo(b.go111, dir, ...args);
  ok(t, g193('ca', '-curve', 'P256', '-name', 'ca 193', '-ips', '10.0.0.0/8', '-subnets', '192.168.0.0/16', '-groups', 'a,b', '-out-crt', 'c193.crt', '-out-key', 'c193.key'), '1.9.3 ca -curve P256');
  ok(t, g193('sign', '-ca-crt', 'c193.crt', '-ca-key', 'c193.key', '-name', 'h193', '-ip', '10.1.0.1/16', '-groups', 'b', '-subnets', '192.168.7.0/24'), '1.9.3 sign');
  ok(t, g193('keygen', '-curve', 'P256', '-out-key', 'k193.key', '-out-pub', 'k193.pub'), '1.9.3 keygen -curve P256');
  ok(t, g193('sign', '-ca-crt', 'c193.crt', '-ca-key', 'c193.key', '-name', 'p193', '-ip', '10.1.0.2/16', '-in-pub', 'k193.pub'), '1.9.3 sign -in-pub');
  ok(t, g111('ca', '-version', '1', '-curve', 'P256', '-name', 'ca 111', '-out-crt', 'c111.crt', '-out-key', 'c111.key'), '1.11.0 ca -version 1 -curve P256');
  ok(t, g111('sign', '-ca-crt', 'c111.crt', '-ca-key', 'c111.key', '-name', 'h111', '-networks', '10.2.0.1/16'), '1.11.0 sign (v1 from the v1 CA)');
  ok(t, g111('ca', '-curve', 'P256', '-name', 'ca 111 v2', '-out-crt', 'c2.crt', '-out-key', 'c2.key'), '1.11.0 v2 P256 CA');
  ok(t, g111('sign', '-version', '1', '-ca-crt', 'c2.crt', '-ca-key', 'c2.key', '-name', 'x111', '-networks', '10.3.0.1/16'), '1.11.0 sign -version 1 from a v2 CA');
  for (const [file, ca] of [['c193.crt', 'c193.crt'], ['h193.crt', 'c193.crt'], ['p193.crt', 'c193.crt'], ['c111.crt', 'c111.crt'], ['h111.crt', 'c111.crt'], ['x111.crt', 'c2.crt']] as const) {
    const c = certIn(dir, file);
    t.equal(c.curve, 'P256', `${file}: P256`);
    t.same(c.marshal(), pemDecode(read(dir, file))!.block.bytes, `${file}: re-encoded byte-identically`);
    const go = goFingerprints(dir, b.go193, b.go111, file);
    t.same({ v193: c.fingerprint(), v111: c.fingerprint() }, go, `${file}: the fingerprint both Go versions print`);
    t.equal(runCli(dir, 'print', '-json', '-path', file).stdout, g111('print', '-json', '-path', file).stdout, `${file}: print -json as 1.11.0`);
    if (file !== ca) ok(t, runCli(dir, 'verify', '-ca', ca, '-crt', file), `nebula-ts-cert verifies ${file}`);
  }
});

t.test('nebula-ts-cert ca / keygen / sign -version 1 -curve P256: verified by nebula-cert 1.9.3 and 1.11.0', async (t) => {
  const b = bins(t);
  if (!b) return;
  const dir = tempDir(t);
  const ts = (...args: string[]): RunResult => runCli(dir, ...args);
  const g193 = (...args: string[]): RunResult => runGo(b.go193, dir, ...args);
  const g111 = (...args: string[]): RunResult => runGo(b.go111, dir, ...args);
  ok(t, ts('ca', '-version', '1', '-curve', 'P256', '-name', 'TS v1 P256', '-networks', '10.0.0.0/8', '-unsafe-networks', '192.168.0.0/16', '-groups', 'a,b'), 'ca -version 1 -curve P256');
  ok(t, ts('keygen', '-curve', 'P256', '-out-key', 'k.key', '-out-pub', 'k.pub'), 'keygen -curve P256');
  ok(t, ts('sign', '-name', 'gen', '-networks', '10.1.0.1/16', '-groups', 'a', '-unsafe-networks', '192.168.1.0/24'), 'sign (v1, as the CA)');
  ok(t, ts('sign', '-name', 'pub', '-networks', '10.1.0.2/16', '-in-pub', 'k.pub', '-duration', '1h'), 'sign -in-pub');
  ok(t, g111('ca', '-version', '1', '-curve', 'P256', '-name', 'Go', '-out-crt', 'go.crt', '-out-key', 'go-ca.key'), '1.11.0 ca, for its key banners');
  ok(t, g111('keygen', '-curve', 'P256', '-out-key', 'go.key', '-out-pub', 'go.pub'), '1.11.0 keygen');
  t.same([firstLine(dir, 'ca.key'), firstLine(dir, 'gen.key'), firstLine(dir, 'k.key'), firstLine(dir, 'k.pub')], [firstLine(dir, 'go-ca.key'), firstLine(dir, 'go.key'), firstLine(dir, 'go.key'), firstLine(dir, 'go.pub')], 'the key files carry Go\'s banners');
  t.equal(firstLine(dir, 'ca.key'), '-----BEGIN NEBULA ECDSA P256 PRIVATE KEY-----');
  for (const file of ['ca.crt', 'gen.crt', 'pub.crt']) {
    const c = certIn(dir, file);
    t.equal(c.curve, 'P256', `${file}: P256`);
    t.same(goFingerprints(dir, b.go193, b.go111, file), { v193: c.fingerprint(), v111: c.fingerprint() }, `${file}: both Go versions print our fingerprint`);
    t.equal(ts('print', '-json', '-path', file).stdout, g111('print', '-json', '-path', file).stdout, `${file}: print -json as 1.11.0`);
    t.equal(ts('print', '-path', file).stdout, g111('print', '-path', file).stdout, `${file}: print as 1.11.0`);
  }
  for (const host of ['gen.crt', 'pub.crt']) {
    ok(t, g193('verify', '-ca', 'ca.crt', '-crt', host), `nebula-cert 1.9.3 verifies ${host}`);
    ok(t, g111('verify', '-ca', 'ca.crt', '-crt', host), `nebula-cert 1.11.0 verifies ${host}`);
    t.not(g111('verify', '-ca', 'go.crt', '-crt', host).code, 0, `negative control: ${host} against another CA is refused`);
  }
  // Go signs with our CA key, we verify; both Go versions read it.
  ok(t, g193('sign', '-ca-crt', 'ca.crt', '-ca-key', 'ca.key', '-name', 'by193', '-ip', '10.1.0.3/16', '-groups', 'b'), 'nebula-cert 1.9.3 signs with our CA');
  ok(t, g111('sign', '-ca-crt', 'ca.crt', '-ca-key', 'ca.key', '-name', 'by111', '-networks', '10.1.0.4/16'), 'nebula-cert 1.11.0 signs with our CA');
  for (const host of ['by193.crt', 'by111.crt']) ok(t, ts('verify', '-ca', 'ca.crt', '-crt', host), `nebula-ts-cert verifies ${host}`);
  // The other form of our (low-s) signature: Go verifies it too, and names it by our alternate fingerprint.
  const gen = certIn(dir, 'gen.crt');
  writeFileSync(path.join(dir, 'twin.crt'), new NebulaCertificate(gen.details, swapP256Signature(gen.signature)).toPem());
  ok(t, g193('verify', '-ca', 'ca.crt', '-crt', 'twin.crt'), 'nebula-cert 1.9.3 verifies the high-s twin');
  ok(t, g111('verify', '-ca', 'ca.crt', '-crt', 'twin.crt'), 'nebula-cert 1.11.0 verifies the high-s twin');
  t.same(goFingerprints(dir, b.go193, b.go111, 'twin.crt'), { v193: gen.alternateFingerprint(), v111: gen.alternateFingerprint() }, 'the twin\'s fingerprint is our alternate one');
});

/** Go's stderr with its program path replaced by ours and the flag package's own echo of a parse error dropped. */
function normalizeGo(bin: string, stderr: string): string {
  const lines = stderr.replaceAll(bin, 'nebula-ts-cert').split('\n');
  return lines.filter((l, i) => lines[i + 1] !== `Error: ${l}`).join('\n');
}

t.test('bad v1 P256 invocations fail as nebula-cert 1.11.0 fails them', async (t) => {
  const b = bins(t);
  if (!b) return;
  const dir = tempDir(t);
  const go = (...args: string[]): RunResult => runGo(b.go111, dir, ...args);
  ok(t, go('ca', '-version', '1', '-curve', 'P256', '-name', 'P', '-networks', '10.0.0.0/8', '-groups', 'a'), 'v1 P256 CA');
  ok(t, go('ca', '-version', '1', '-name', 'E', '-out-crt', 'e.crt', '-out-key', 'e.key'), 'v1 25519 CA');
  ok(t, go('keygen', '-out-key', 'x.key', '-out-pub', 'x.pub'), '25519 key pair');
  const cases: string[][] = [
    ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-in-pub', 'x.pub'],
    ['sign', '-name', 'h', '-networks', '11.1.0.1/16'],
    ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-groups', 'a,z'],
    ['sign', '-name', 'h', '-networks', '10.1.0.1/16,10.1.0.2/16'],
    ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-ca-key', 'e.key'],
    ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-ca-crt', 'e.crt'],
    ['ca', '-version', '1', '-curve', 'P256', '-name', 'v6', '-networks', 'fd00::/8', '-out-crt', 'n.crt', '-out-key', 'n.key'],
    ['ca', '-version', '1', '-curve', 'P384', '-name', 'bad', '-out-crt', 'n.crt', '-out-key', 'n.key'],
    ['keygen', '-curve', 'p256', '-out-key', 'n.key', '-out-pub', 'n.pub'],
  ];
  for (const args of cases) {
    const g = go(...args);
    const s = runCli(dir, ...args);
    const label = args.join(' ');
    t.not(g.code, 0, `${label}: nebula-cert refuses it`);
    t.equal(s.code, g.code, `${label}: same exit status`);
    t.equal(s.stderr, normalizeGo(b.go111, g.stderr), `${label}: same stderr`);
  }
});
