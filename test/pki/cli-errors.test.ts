/**
 * Bad input to nebula-ts-cert: every case must exit non-zero with exactly one "Error: ..." line on stderr (no stack
 * trace), with nebula-cert 1.11's wording where nebula has one. Usage errors are that line followed by the usage.
 * The tables run the CLI in-process (cheap); a few cases spawn the built binary to check the real process.
 */
process.env.TZ = 'UTC';
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CERT_BANNER,
  CERT_V2_BANNER,
  generateX25519KeyPair,
  marshalPublicKeyPem,
  marshalX25519PrivateKey,
  generateP256KeyPair,
  pemDecode,
  pemEncode,
} from '../../src/shared/pki';
import { fixtureText } from './v2/fixtures';
import { runCli } from './cli-helpers';
import { cliBuilt, makeCA, makeHost, tempDir, tsCert } from './helpers';

t.before(() => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
});

/** Runs the CLI and checks: non-zero exit, one stderr line, equal to `expected` (string) or matching it (RegExp). */
function expectError(t: Test, dir: string, args: string[], expected: string | RegExp): void {
  const r = runCli(dir, ...args);
  const label = args.join(' ');
  t.not(r.code, 0, `${label}: non-zero exit`);
  t.equal(r.stdout, '', `${label}: nothing on stdout`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, `${label}: exactly one stderr line (${JSON.stringify(r.stderr)})`);
  t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`);
  if (typeof expected === 'string') t.equal(lines[0], `Error: ${expected}`, label);
  else t.match(lines[0] ?? '', expected, label);
}

/** A usage error: the error line, then the mode's usage text; exit 1. */
function expectUsageError(t: Test, dir: string, args: string[], message: string): void {
  const r = runCli(dir, ...args);
  t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
  t.equal(r.stdout, '');
  t.equal(r.stderr.split('\n')[0], `Error: ${message}`, args.join(' '));
  t.match(r.stderr, new RegExp(`\\nUsage of nebula-ts-cert ${args[0]} <flags>`), `${args.join(' ')}: usage follows`);
}

const hour = 3600;
const now = (): number => Math.floor(Date.now() / 1000);

t.test('print: corrupt, truncated, wrong-banner, malformed-protobuf and malformed-DER input', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA();
  const host = makeHost(ca);
  const pem = host.cert.toPem();
  const w = (name: string, text: string): string => {
    writeFileSync(path.join(dir, name), text);
    return name;
  };
  const raw = pemDecode(pem)!.block.bytes;
  const prefix = 'error while unmarshaling cert: ';
  expectError(t, dir, ['print', '-path', w('garbage.crt', 'not a certificate at all\n')], prefix + 'input did not contain a valid PEM encoded block');
  expectError(t, dir, ['print', '-path', w('corrupt.crt', pem.replace(/\n([A-Za-z0-9+/]{10})/, '\n!!!!!!!!!!'))], prefix + 'input did not contain a valid PEM encoded block');
  expectError(t, dir, ['print', '-path', w('truncated.crt', pem.slice(0, Math.floor(pem.length / 2)))], prefix + 'input did not contain a valid PEM encoded block');
  expectError(t, dir, ['print', '-path', w('banner.crt', marshalX25519PrivateKey(host.privateKey))], prefix + 'bytes did not contain a proper certificate banner');
  expectError(t, dir, ['print', '-path', w('wrongbanner.crt', pem.replace(/NEBULA CERTIFICATE/g, 'CERTIFICATE'))], prefix + 'bytes did not contain a proper certificate banner');
  expectError(t, dir, ['print', '-path', w('proto.crt', pemEncode(CERT_BANNER, raw.subarray(0, 60)))], /^Error: error while unmarshaling cert: proto: cannot parse invalid wire-format data/);
  expectError(t, dir, ['print', '-path', w('empty.crt', pemEncode(CERT_BANNER, Buffer.alloc(0)))], prefix + 'nil byte array');
  expectError(t, dir, ['print', '-path', 'missing.crt'], 'unable to read cert; open missing.crt: no such file or directory');
  // A v1 host without a network: 1.6.1 printed it, 1.11 refuses it at decode time, and so does nebula-ts-cert.
  expectError(t, dir, ['print', '-path', w('no-net.crt', makeHost(ca, { ips: [] }).cert.toPem())], prefix + 'non-CA certificates must contain exactly one network');
  // v2: truncated DER, a wrong outer tag, and a v1 body under the v2 banner.
  const v2 = pemDecode(fixtureText('host-v4.crt'))!.block.bytes;
  expectError(t, dir, ['print', '-path', w('v2-trunc.crt', pemEncode(CERT_V2_BANNER, v2.subarray(0, v2.length - 7)))], /^Error: error while unmarshaling cert: bad wire format/);
  const wrongTag = Buffer.from(v2);
  wrongTag[0] = 0x31;
  expectError(t, dir, ['print', '-path', w('v2-tag.crt', pemEncode(CERT_V2_BANNER, wrongTag))], /^Error: error while unmarshaling cert: bad wire format/);
  expectError(t, dir, ['print', '-path', w('v2-v1body.crt', pemEncode(CERT_V2_BANNER, raw))], /^Error: error while unmarshaling cert: bad wire format/);
  // The good cert before a broken one is printed, then the error (Go's loop does the same); -json prints nothing.
  const r = tsCert(dir, 'print', '-path', w('mixed.crt', pem + 'trailing junk\n'));
  t.equal(r.code, 1);
  t.match(r.stdout, /^\{\n\t"details": \{\n/);
  t.equal(r.stderr, `Error: ${prefix}input did not contain a valid PEM encoded block\n`);
  const j = runCli(dir, 'print', '-json', '-path', 'mixed.crt');
  t.equal(j.code, 1);
  t.equal(j.stdout, '', 'print -json writes nothing when any block is bad');
  // Corrupt inputs in verify and sign get the same one-line treatment.
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert.toPem());
  expectError(t, dir, ['verify', '-ca', 'ca.crt', '-crt', 'proto.crt'], /^Error: error while parsing crt: proto: cannot parse invalid wire-format data/);
  expectError(t, dir, ['verify', '-ca', 'ca.crt', '-crt', 'v2-trunc.crt'], /^Error: error while parsing crt: bad wire format/);
  expectError(t, dir, ['verify', '-ca', 'truncated.crt', '-crt', 'proto.crt'], 'error while adding ca cert to pool: input did not contain a valid PEM encoded block');
  expectError(t, dir, ['verify', '-ca', w('ca-junk.crt', ca.cert.toPem() + 'junk\n'), '-crt', 'proto.crt'], 'error while adding ca cert to pool: input did not contain a valid PEM encoded block');
  expectError(t, dir, ['verify', '-ca', 'ca.crt', '-crt', w('blank.crt', '')], 'error while parsing crt: input did not contain a valid PEM encoded block');
  expectError(t, dir, ['sign', '-ca-crt', 'v2-tag.crt', '-ca-key', w('ca.key', pemEncode('NEBULA ED25519 PRIVATE KEY', ca.privateKey)), '-name', 'x', '-networks', '10.1.0.9/16'], /^Error: error while parsing ca-crt: bad wire format/);
});

t.test('verify: signature, expiry, issuer, constraints, CA-as-host, missing network and several certificates', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA({ name: 'root', ips: ['10.1.0.0/16'], groups: ['ops'], subnets: ['192.168.0.0/16'] });
  const w = (name: string, text: string): string => {
    writeFileSync(path.join(dir, name), text);
    return name;
  };
  w('ca.crt', ca.cert.toPem());
  const good = makeHost(ca, { groups: ['ops'] });
  const v = (crt: string, expected: string | RegExp, caFile = 'ca.crt'): void => expectError(t, dir, ['verify', '-ca', caFile, '-crt', crt], expected);
  /** Go's one-line naming of the certificate that failed, then its reason. */
  const failed = (made: { cert: { details: { name: string; issuer: string } } }, reason: string): string =>
    `error while verifying certificate v1 ${made.cert.details.name} with issuer ${made.cert.details.issuer}: ${reason}`;
  t.equal(runCli(dir, 'verify', '-ca', 'ca.crt', '-crt', w('good.crt', good.cert.toPem())).code, 0, 'a good cert verifies');
  t.equal(tsCert(dir, 'verify', '-ca', 'ca.crt', '-crt', 'good.crt').stdout, '', 'verify prints nothing on success');

  // Tampered signature: flip the last signature byte.
  const raw = pemDecode(good.cert.toPem())!.block.bytes;
  const tampered = Buffer.from(raw);
  tampered[tampered.length - 1]! ^= 1;
  v(w('tampered-sig.crt', pemEncode(CERT_BANNER, tampered)), failed(good, 'certificate signature did not match'));
  // Tampered details (name changed, same length) also break the signature.
  const renamed = Buffer.from(raw.toString('latin1').replace('host', 'hosT'), 'latin1');
  v(w('tampered-details.crt', pemEncode(CERT_BANNER, renamed)), `error while verifying certificate v1 hosT with issuer ${good.cert.details.issuer}: certificate signature did not match`);

  const expired = makeHost(ca, { notBefore: now() - hour + 10, notAfter: now() - 60 });
  v(w('expired.crt', expired.cert.toPem()), failed(expired, 'certificate is expired'));
  const future = makeHost(ca, { notBefore: now() + 600 });
  v(w('future.crt', future.cert.toPem()), failed(future, 'certificate is expired'));
  // An expired CA loads (1.11 no longer refuses the bundle); what it signed fails as "root certificate is expired".
  const oldCa = makeCA({ name: 'old', notBefore: now() - 2 * hour, notAfter: now() - hour });
  w('old-ca.crt', oldCa.cert.toPem());
  const byOld = makeHost(oldCa);
  v(w('by-old.crt', byOld.cert.toPem()), failed(byOld, 'root certificate is expired'), 'old-ca.crt');

  const stranger = makeCA({ name: 'stranger' });
  const unknown = makeHost(stranger);
  v(w('unknown-issuer.crt', unknown.cert.toPem()), failed(unknown, 'could not find ca for the certificate'));

  const outside = makeHost(ca, { ips: ['10.2.0.1/16'] });
  v(w('outside.crt', outside.cert.toPem()), failed(outside, 'certificate contained a network assignment outside the limitations of the signing ca: 10.2.0.1/16'));
  const wide = makeHost(ca, { ips: ['10.1.0.1/8'] });
  v(w('wide-mask.crt', wide.cert.toPem()), failed(wide, 'certificate contained a network assignment outside the limitations of the signing ca: 10.1.0.1/8'));
  const group = makeHost(ca, { groups: ['ops', 'root'] });
  v(w('group.crt', group.cert.toPem()), failed(group, 'certificate contained a group not present on the signing ca: root'));
  const subnet = makeHost(ca, { subnets: ['10.9.0.0/16'] });
  v(w('subnet.crt', subnet.cert.toPem()), failed(subnet, 'certificate contained an unsafe network assignment outside the limitations of the signing ca: 10.9.0.0/16'));
  const outlives = makeHost(ca, { notAfter: ca.cert.details.notAfter + 1 });
  v(w('outlives.crt', outlives.cert.toPem()), failed(outlives, 'certificate expires after signing certificate'));
  const predates = makeHost(ca, { notBefore: ca.cert.details.notBefore - 1 });
  v(w('predates.crt', predates.cert.toPem()), failed(predates, 'certificate is valid before the signing certificate'));

  // A CA certificate presented as the host cert: the root itself (no issuer), and a CA-flagged cert signed by it.
  v('ca.crt', 'error while verifying certificate v1 root: no issuer in certificate');
  const caLeaf = makeHost(ca, { isCA: true, publicKey: makeCA().cert.details.publicKey });
  v(w('ca-leaf.crt', caLeaf.cert.toPem()), failed(caLeaf, 'certificate is a CA certificate, not a host certificate'));
  v(w('no-ip.crt', makeHost(ca, { ips: [] }).cert.toPem()), 'error while parsing crt: non-CA certificates must contain exactly one network');

  // Several certificates in -crt: each is checked, the failures are joined on one line.
  v(w('two.crt', good.cert.toPem() + expired.cert.toPem() + unknown.cert.toPem()), `${failed(expired, 'certificate is expired')}; ${failed(unknown, 'could not find ca for the certificate')}`);
  t.equal(runCli(dir, 'verify', '-ca', 'ca.crt', '-crt', w('good-nl.crt', good.cert.toPem() + '\n\n')).code, 0, 'trailing blank lines are fine');

  // A host cert or key file where the CA's is expected.
  w('host.key', marshalX25519PrivateKey(generateX25519KeyPair().privateKey));
  v('good.crt', 'error while adding ca cert to pool: host: certificate is not a CA', 'good.crt');
  expectError(t, dir, ['sign', '-ca-crt', 'ca.crt', '-ca-key', 'host.key', '-name', 'x', '-ip', '10.1.0.9/16'], 'error while parsing ca-key: bytes did not contain a proper Ed25519/ECDSA private key banner');
  // A CA that is not self-signed (signed by another CA) is refused in a bundle.
  const notSelfSigned = makeHost(stranger, { isCA: true, issuer: '', name: 'fake', ips: [] });
  v('good.crt', 'error while adding ca cert to pool: fake: certificate is not self-signed', w('fake-ca.crt', notSelfSigned.cert.toPem()));
});

t.test('sign, ca and keygen: bad flags, bad keys and a CA that cannot sign', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA({ ips: ['10.1.0.0/16'] });
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert.toPem());
  writeFileSync(path.join(dir, 'ca.key'), pemEncode('NEBULA ED25519 PRIVATE KEY', ca.privateKey));
  const other = makeCA();
  writeFileSync(path.join(dir, 'other.key'), pemEncode('NEBULA ED25519 PRIVATE KEY', other.privateKey));
  writeFileSync(path.join(dir, 'p256.pub'), marshalPublicKeyPem('P256', generateP256KeyPair().publicKey));
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.2.0.1/16'], 'error while signing: certificate contained a network assignment outside the limitations of the signing ca: 10.2.0.1/16');
  expectError(t, dir, ['sign', '-ca-key', 'other.key', '-name', 'h', '-ip', '10.1.0.1/16'], 'refusing to sign, root certificate does not match private key');
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.1.0.1/16', '-in-pub', 'nope.pub'], 'error while reading in-pub: open nope.pub: no such file or directory');
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.1.0.1/16', '-in-pub', 'ca.key'], 'error while parsing in-pub: bytes did not contain a proper public key banner');
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.1.0.1/16', '-in-pub', 'p256.pub'], 'curve of in-pub does not match ca');
  expectError(t, dir, ['sign', '-name', 'h', '-ca-key', 'missing.key', '-networks', '10.1.0.1/16'], 'error while reading ca-key: open missing.key: no such file or directory');
  expectError(t, dir, ['sign', '-name', 'h', '-ca-key', '-', '-in-pub', '-', '-networks', '10.1.0.1/16'], '-ca-key and -in-pub both set to "-", only one input may read from stdin');
  const expired = makeCA({ notBefore: now() - 2 * hour, notAfter: now() - hour });
  writeFileSync(path.join(dir, 'exp.crt'), expired.cert.toPem());
  writeFileSync(path.join(dir, 'exp.key'), pemEncode('NEBULA ED25519 PRIVATE KEY', expired.privateKey));
  expectError(t, dir, ['sign', '-ca-crt', 'exp.crt', '-ca-key', 'exp.key', '-name', 'h', '-ip', '10.1.0.1/16'], 'ca certificate is expired');
  expectError(t, dir, ['sign', '-version', '1', '-name', 'h', '-networks', '10.1.0.1/16', '-curve', 'P256'], 'flag provided but not defined: -curve');
  expectError(t, dir, ['ca', '-name', 'x', '-duration', '1y'], 'invalid value "1y" for flag -duration: parse error');
  expectError(t, dir, ['ca', '-name', 'x', '-version', 'two'], 'invalid value "two" for flag -version: parse error');
  expectError(t, dir, ['ca', '-name', 'x', '-version', '99999999999999999999'], 'invalid value "99999999999999999999" for flag -version: value out of range');
  expectError(t, dir, ['ca', '-name', 'x', '-curve', 'ed448', '-out-key', 'n.key', '-out-crt', 'n.crt'], 'invalid curve: ed448');
  expectError(t, dir, ['ca', '-name', 'x', '-out-key', '-', '-out-crt', '-'], '-out-key and -out-crt both set to "-", only one output may write to stdout');
  expectError(t, dir, ['ca', '-nmae', 'x'], 'flag provided but not defined: -nmae');
  expectError(t, dir, ['sign', '-name'], 'flag needs an argument: -name');
  expectError(t, dir, ['print', '-json=maybe', '-path', 'ca.crt'], 'invalid boolean value "maybe" for -json: parse error');
  expectError(t, dir, ['keygen', '-out-key', 'k.key', '-out-pub', 'k.pub', '-curve', 'P384'], 'invalid curve: P384');
  expectError(t, dir, ['keygen', '-out-key', '-', '-out-pub', '-'], '-out-key and -out-pub both set to "-", only one output may write to stdout');
  expectError(t, dir, ['frobnicate'], 'unknown mode: frobnicate');
  expectError(t, dir, ['print', '-path', 'ca.crt', '-out-qr', 'q.png'], '-out-qr is not supported by nebula-ts-cert');

  // Usage errors: the error line comes first, followed by the mode's usage (as nebula-cert does).
  expectUsageError(t, dir, ['ca'], '-name is required');
  expectUsageError(t, dir, ['ca', '-name', 'x', '-version', '3'], '-version must be either 1 or 2');
  expectUsageError(t, dir, ['ca', '-name', 'x', '-duration', '-1h'], '-duration must be greater than 0');
  expectUsageError(t, dir, ['ca', '-name', 'x', '-networks', '10.0.0.0/8,bogus'], 'invalid -networks definition: bogus');
  expectUsageError(t, dir, ['ca', '-name', 'x', '-version', '1', '-subnets', 'fd00::/8'], 'invalid -unsafe-networks definition: v1 certificates can only be ipv4, have fd00::/8');
  expectUsageError(t, dir, ['ca', '-name', 'x', '-encrypt', '-argon-parallelism', '256'], '-argon-parallelism must be be greater than 0 and no more than 255');
  expectUsageError(t, dir, ['sign', '-name', 'h'], '-networks is required');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-version', '3'], '-version must be either 1 or 2');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-in-pub', 'p256.pub', '-out-key', 'h.key'], 'cannot set both -in-pub and -out-key');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-networks', '10.1.0.1/33'], 'invalid -networks definition: 10.1.0.1/33');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-networks', '10.1.0.1/16', '-unsafe-networks', '10.9.0.0'], 'invalid -unsafe-networks definition: 10.9.0.0');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-version', '1', '-networks', '10.1.0.1/16,10.1.0.2/16'], 'invalid -networks definition: v1 certificates can only have a single ipv4 address');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-version', '1', '-networks', '10.1.0.1/16,fd00::1/64'], 'invalid -networks definition: v1 certificates can only contain ipv4 addresses');
  expectUsageError(t, dir, ['sign', '-name', 'h', '-version', '1', '-networks', '10.1.0.1/16', '-unsafe-networks', 'fd00::/64'], 'invalid -unsafe-networks definition: v1 certificates can only contain ipv4 addresses');
  expectUsageError(t, dir, ['keygen', '-out-key', 'k.key'], '-out-pub is required');
  expectUsageError(t, dir, ['print'], '-path is required');
  expectUsageError(t, dir, ['verify', '-ca', 'ca.crt'], '-crt is required');
  t.equal(readFileSync(path.join(dir, 'ca.crt'), 'utf8'), ca.cert.toPem(), 'nothing was overwritten');
});

t.test('help and version', async (t) => {
  const dir = tempDir(t);
  const v = tsCert(dir, '-version');
  t.equal(v.code, 0);
  t.equal(v.stdout, 'Version: 1.11.0\n');
  for (const args of [['-h'], ['--help'], ['ca', '-h'], ['sign', '--help'], ['-h', 'print']]) {
    const r = runCli(dir, ...args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stderr, /^Usage of nebula-ts-cert/);
  }
  t.match(runCli(dir, 'sign', '-h').stderr, /\n {2}-networks string\n {4}\tRequired: comma separated list/, 'sign lists -networks');
  t.match(runCli(dir, 'ca', '-h').stderr, /\n {2}-version uint\n {4}\tOptional: version of the certificate format to use \(default 2\)\n/, 'ca defaults to v2');
  const none = tsCert(dir);
  t.equal(none.code, 1);
  t.match(none.stderr, /^Error: No mode was provided\n/);
});
