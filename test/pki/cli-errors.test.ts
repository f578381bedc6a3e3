/**
 * Bad input to nebula-ts-cert: every case must exit non-zero with exactly one "Error: ..." line on stderr (no stack
 * trace), with nebula-cert's wording where nebula has one.
 */
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pemDecode, pemEncode, marshalX25519PrivateKey, generateX25519KeyPair, CERT_BANNER } from '../../src/shared/pki';
import { cliBuilt, makeCA, makeHost, tempDir, tsCert } from './helpers';

t.before(() => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
});

/** Runs the CLI and checks: non-zero exit, one stderr line, equal to `expected` (string) or matching it (RegExp). */
function expectError(t: Test, dir: string, args: string[], expected: string | RegExp): void {
  const r = tsCert(dir, ...args);
  const label = args.join(' ');
  t.not(r.code, 0, `${label}: non-zero exit`);
  t.equal(r.stdout, '', `${label}: nothing on stdout`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, `${label}: exactly one stderr line (${JSON.stringify(r.stderr)})`);
  t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`);
  if (typeof expected === 'string') t.equal(lines[0], `Error: ${expected}`, label);
  else t.match(lines[0] ?? '', expected, label);
}

const hour = 3600;
const now = (): number => Math.floor(Date.now() / 1000);

t.test('print: corrupt, truncated, wrong-banner and malformed-protobuf input', async (t) => {
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
  expectError(t, dir, ['print', '-path', w('banner.crt', marshalX25519PrivateKey(host.privateKey))], prefix + 'bytes did not contain a proper nebula certificate banner');
  expectError(t, dir, ['print', '-path', w('wrongbanner.crt', pem.replace(/NEBULA CERTIFICATE/g, 'CERTIFICATE'))], prefix + 'bytes did not contain a proper nebula certificate banner');
  expectError(t, dir, ['print', '-path', w('proto.crt', pemEncode(CERT_BANNER, raw.subarray(0, 60)))], /^Error: error while unmarshaling cert: proto: cannot parse invalid wire-format data/);
  expectError(t, dir, ['print', '-path', w('empty.crt', pemEncode(CERT_BANNER, Buffer.alloc(0)))], prefix + 'nil byte array');
  expectError(t, dir, ['print', '-path', 'missing.crt'], 'unable to read cert; open missing.crt: no such file or directory');
  // The good cert before a broken one is printed, then the error (Go's loop does the same).
  const r = tsCert(dir, 'print', '-path', w('mixed.crt', pem + 'trailing junk\n'));
  t.equal(r.code, 1);
  t.match(r.stdout, /^NebulaCertificate \{/);
  t.equal(r.stderr, `Error: ${prefix}input did not contain a valid PEM encoded block\n`);
  // Corrupt inputs in verify and sign get the same one-line treatment.
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert.toPem());
  expectError(t, dir, ['verify', '-ca', 'ca.crt', '-crt', 'proto.crt'], /^Error: error while parsing crt: proto: cannot parse invalid wire-format data/);
  expectError(t, dir, ['verify', '-ca', 'truncated.crt', '-crt', 'proto.crt'], 'error while adding ca cert to pool: input did not contain a valid PEM encoded block');
});

t.test('verify: signature, expiry, issuer, constraints, CA-as-host and missing IP', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA({ name: 'root', ips: ['10.1.0.0/16'], groups: ['ops'], subnets: ['192.168.0.0/16'] });
  const w = (name: string, text: string): string => {
    writeFileSync(path.join(dir, name), text);
    return name;
  };
  w('ca.crt', ca.cert.toPem());
  const good = makeHost(ca, { groups: ['ops'] });
  const v = (crt: string, expected: string | RegExp, caFile = 'ca.crt'): void => expectError(t, dir, ['verify', '-ca', caFile, '-crt', crt], expected);
  t.equal(tsCert(dir, 'verify', '-ca', 'ca.crt', '-crt', w('good.crt', good.cert.toPem())).code, 0, 'a good cert verifies');
  t.equal(tsCert(dir, 'verify', '-ca', 'ca.crt', '-crt', 'good.crt').stdout, '', 'verify prints nothing on success');

  // Tampered signature: flip the last signature byte.
  const raw = pemDecode(good.cert.toPem())!.block.bytes;
  const tampered = Buffer.from(raw);
  tampered[tampered.length - 1]! ^= 1;
  v(w('tampered-sig.crt', pemEncode(CERT_BANNER, tampered)), 'certificate signature did not match');
  // Tampered details (name changed, same length) also break the signature.
  const renamed = Buffer.from(raw.toString('latin1').replace('host', 'hosT'), 'latin1');
  v(w('tampered-details.crt', pemEncode(CERT_BANNER, renamed)), 'certificate signature did not match');

  v(w('expired.crt', makeHost(ca, { notBefore: now() - hour + 10, notAfter: now() - 60 }).cert.toPem()), 'certificate is expired');
  v(w('future.crt', makeHost(ca, { notBefore: now() + 600 }).cert.toPem()), 'certificate is expired');
  const oldCa = makeCA({ name: 'old', notBefore: now() - 2 * hour, notAfter: now() - hour });
  w('old-ca.crt', oldCa.cert.toPem());
  v(w('by-old.crt', makeHost(oldCa).cert.toPem()), 'error while adding ca cert to pool: old: certificate is expired', 'old-ca.crt');

  const stranger = makeCA({ name: 'stranger' });
  v(w('unknown-issuer.crt', makeHost(stranger).cert.toPem()), 'could not find ca for the certificate');

  v(w('outside.crt', makeHost(ca, { ips: ['10.2.0.1/16'] }).cert.toPem()), 'certificate contained an ip assignment outside the limitations of the signing ca: 10.2.0.1/16');
  v(w('wide-mask.crt', makeHost(ca, { ips: ['10.1.0.1/8'] }).cert.toPem()), 'certificate contained an ip assignment outside the limitations of the signing ca: 10.1.0.1/8');
  v(w('group.crt', makeHost(ca, { groups: ['ops', 'root'] }).cert.toPem()), 'certificate contained a group not present on the signing ca: root');
  v(w('subnet.crt', makeHost(ca, { subnets: ['10.9.0.0/16'] }).cert.toPem()), 'certificate contained a subnet assignment outside the limitations of the signing ca: 10.9.0.0/16');
  v(w('outlives.crt', makeHost(ca, { notAfter: ca.cert.details.notAfter + 1 }).cert.toPem()), 'certificate expires after signing certificate');
  v(w('predates.crt', makeHost(ca, { notBefore: ca.cert.details.notBefore - 1 }).cert.toPem()), 'certificate is valid before the signing certificate');

  // A CA certificate presented as the host cert: the root itself, and a CA-flagged cert signed by the root.
  v('ca.crt', 'certificate is a CA certificate, not a host certificate');
  v(w('ca-leaf.crt', makeHost(ca, { isCA: true, publicKey: makeCA().cert.details.publicKey }).cert.toPem()), 'certificate is a CA certificate, not a host certificate');
  v(w('no-ip.crt', makeHost(ca, { ips: [] }).cert.toPem()), 'certificate does not contain any ip');

  // A host cert or key file where the CA's is expected.
  w('host.key', marshalX25519PrivateKey(generateX25519KeyPair().privateKey));
  v('good.crt', 'error while adding ca cert to pool: host: certificate is not a CA', 'good.crt');
  expectError(t, dir, ['sign', '-ca-crt', 'ca.crt', '-ca-key', 'host.key', '-name', 'x', '-ip', '10.1.0.9/16'], 'error while parsing ca-key: bytes did not contain a proper nebula Ed25519 private key banner');
  expectError(t, dir, ['sign', '-ca-crt', 'good.crt', '-ca-key', 'host.key', '-name', 'x', '-ip', '10.1.0.9/16'], 'error while parsing ca-key: bytes did not contain a proper nebula Ed25519 private key banner');
  // A CA that is not self-signed (signed by another CA) is refused in a bundle.
  const notSelfSigned = makeHost(stranger, { isCA: true, issuer: '', name: 'fake', ips: [] });
  v('good.crt', 'error while adding ca cert to pool: fake: certificate is not self-signed', w('fake-ca.crt', notSelfSigned.cert.toPem()));
});

t.test('sign and ca: bad flags and a CA that cannot sign', async (t) => {
  const dir = tempDir(t);
  const ca = makeCA({ ips: ['10.1.0.0/16'] });
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert.toPem());
  writeFileSync(path.join(dir, 'ca.key'), `-----BEGIN NEBULA ED25519 PRIVATE KEY-----\n${ca.privateKey.toString('base64')}\n-----END NEBULA ED25519 PRIVATE KEY-----\n`);
  const other = makeCA();
  writeFileSync(path.join(dir, 'other.key'), pemEncode('NEBULA ED25519 PRIVATE KEY', other.privateKey));
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.2.0.1/16'], 'refusing to sign, root certificate constraints violated: certificate contained an ip assignment outside the limitations of the signing ca: 10.2.0.1/16');
  expectError(t, dir, ['sign', '-ca-key', 'other.key', '-name', 'h', '-ip', '10.1.0.1/16'], 'refusing to sign, root certificate does not match private key');
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.1.0.1/16', '-in-pub', 'nope.pub'], 'error while reading in-pub: open nope.pub: no such file or directory');
  expectError(t, dir, ['sign', '-name', 'h', '-ip', '10.1.0.1/16', '-in-pub', 'ca.key'], 'error while parsing in-pub: bytes did not contain a proper nebula X25519 public key banner');
  const expired = makeCA({ notBefore: now() - 2 * hour, notAfter: now() - hour });
  writeFileSync(path.join(dir, 'exp.crt'), expired.cert.toPem());
  writeFileSync(path.join(dir, 'exp.key'), pemEncode('NEBULA ED25519 PRIVATE KEY', expired.privateKey));
  expectError(t, dir, ['sign', '-ca-crt', 'exp.crt', '-ca-key', 'exp.key', '-name', 'h', '-ip', '10.1.0.1/16'], 'ca certificate is expired');
  expectError(t, dir, ['ca', '-name', 'x', '-duration', '1y'], 'invalid value "1y" for flag -duration: parse error');
  expectError(t, dir, ['ca', '-nmae', 'x'], 'flag provided but not defined: -nmae');
  expectError(t, dir, ['sign', '-name'], 'flag needs an argument: -name');
  expectError(t, dir, ['print', '-json=maybe', '-path', 'ca.crt'], 'invalid boolean value "maybe" for -json: parse error');
  expectError(t, dir, ['frobnicate'], 'unknown mode: frobnicate');
  expectError(t, dir, ['print', '-path', 'ca.crt', '-out-qr', 'q.png'], '-out-qr is not supported by nebula-ts-cert');
  // Missing required flags: the error line comes first, followed by the mode's usage (as nebula-cert does).
  const r = tsCert(dir, 'ca');
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: -name is required\nUsage of nebula-cert ca <flags>/);
  t.equal(readFileSync(path.join(dir, 'ca.crt'), 'utf8'), ca.cert.toPem(), 'nothing was overwritten');
});

t.test('help and version', async (t) => {
  const dir = tempDir(t);
  const v = tsCert(dir, '-version');
  t.equal(v.code, 0);
  t.equal(v.stdout, 'Version: 1.6.1\n');
  for (const args of [['-h'], ['--help'], ['ca', '-h'], ['sign', '--help'], ['-h', 'print']]) {
    const r = tsCert(dir, ...args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stderr, /^Usage of nebula-cert/);
  }
  const none = tsCert(dir);
  t.equal(none.code, 1);
  t.match(none.stderr, /^Error: No mode was provided\n/);
});
