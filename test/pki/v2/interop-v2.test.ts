/**
 * v2 certificates against Go nebula-cert 1.11.0, both ways: certificates it makes now decode, re-encode
 * byte-identically, fingerprint, print and verify here; certificates signed here pass its `verify` and print with
 * our fingerprint. Needs the 1.11.0 binary (nebula-cert-111.ts): skipped outside CI without it.
 */
process.env.TZ = 'UTC'; // nebula-cert runs with TZ=UTC too, so printed times agree
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  NebulaCertificateV2,
  certV2ToJson,
  certV2ToPem,
  certV2ToText,
  generateEd25519KeyPair,
  generateP256KeyPair,
  generateX25519KeyPair,
  marshalPublicKeyPem,
  parsePrefix,
  pemDecode,
  pemEncode,
  signCertV2,
  swapP256Signature,
  unmarshalCertV2,
  unmarshalCertV2FromPem,
  unmarshalSigningPrivateKeyPem,
  type Curve,
  type IpPrefix,
  type TbsCertV2,
} from '../../../src/shared/pki';
import { derElement } from '../../../src/shared/pki/v2/der';
import { tempDir } from '../helpers';
import { fixtureCert } from './fixtures';
import { needNebulaCert111, runGo, type GoRun } from './nebula-cert-111';

const nets = (...list: string[]): IpPrefix[] => list.map((c) => parsePrefix(c)!);

function ok(t: Test, r: GoRun, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.stderr.trim() ? ': ' + r.stderr.trim() : ''}`);
}

function readCert(dir: string, file: string): { cert: NebulaCertificateV2; text: string } {
  const text = readFileSync(path.join(dir, file), 'utf8');
  return { cert: unmarshalCertV2FromPem(text).cert, text };
}

t.test('certificates nebula-cert 1.11.0 makes now: re-encoding, fingerprint, print and signature agree', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const go = (...args: string[]): GoRun => runGo(bin, dir, ...args);
  ok(t, go('ca', '-name', 'Go v2 CA', '-networks', '10.0.0.0/8,fd00::/16', '-unsafe-networks', '192.168.0.0/16,fd99::/16', '-groups', 'a,b,c', '-out-crt', 'ca.crt', '-out-key', 'ca.key'), 'ca');
  ok(t, go('ca', '-curve', 'P256', '-name', 'Go P256 CA', '-out-crt', 'pca.crt', '-out-key', 'pca.key'), 'ca -curve P256');
  const signs: [string, string, string[]][] = [
    ['ca', 'dual', ['-networks', '10.1.2.3/16,fd00::3/64', '-unsafe-networks', '192.168.7.0/24,fd99::/64', '-groups', 'a,b']],
    ['ca', 'v6', ['-networks', 'fd00:0:0:5::9/64', '-groups', 'c']],
    ['ca', 'several', ['-networks', '10.3.0.1/16,10.2.0.1/16,fd00::1:1/112']],
    ['pca', 'p256', ['-networks', '10.9.0.1/16,fd09::1/64', '-unsafe-networks', '172.16.0.0/12', '-groups', 'p']],
  ];
  for (const [ca, name, args] of signs) {
    ok(t, go('sign', '-ca-crt', `${ca}.crt`, '-ca-key', `${ca}.key`, '-name', name, '-out-crt', `${name}.crt`, '-out-key', `${name}.key`, ...args), `sign ${name}`);
  }
  const signer: Record<string, string> = { 'ca.crt': 'ca.crt', 'pca.crt': 'pca.crt', 'dual.crt': 'ca.crt', 'v6.crt': 'ca.crt', 'several.crt': 'ca.crt', 'p256.crt': 'pca.crt' };
  for (const [file, caFile] of Object.entries(signer)) {
    const { cert, text } = readCert(dir, file);
    t.same(cert.marshal(), pemDecode(text)!.block.bytes, `${file}: re-encoding is byte-identical`);
    t.equal(certV2ToPem(cert), text, `${file}: PEM identical`);
    const json = go('print', '-json', '-path', file);
    ok(t, json, `print -json ${file}`);
    t.equal(cert.fingerprint(), (JSON.parse(json.stdout) as { fingerprint: string }[])[0]!.fingerprint, `${file}: fingerprint`);
    t.equal(`[${certV2ToJson(cert)}]\n`, json.stdout, `${file}: print -json byte-identical`);
    t.equal(`${certV2ToText(cert)}\n`, go('print', '-path', file).stdout, `${file}: print byte-identical`);
    t.ok(cert.checkSignature(readCert(dir, caFile).cert.publicKey), `${file}: signature verifies with ${caFile}`);
  }
  t.equal(readCert(dir, 'p256.crt').cert.curve, 'P256');
});

const now = (): number => Math.floor(Date.now() / 1000);

function tbs(curve: Curve, over: Partial<TbsCertV2>): TbsCertV2 {
  return { name: 'x', networks: [], unsafeNetworks: [], groups: [], isCA: false, notBefore: now() - 600, notAfter: now() + 3600, publicKey: Buffer.alloc(0), curve, ...over };
}

t.test('certificates signed by nebula-ts pass nebula-cert 1.11.0 verify with equal fingerprints', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const go = (...args: string[]): GoRun => runGo(bin, dir, ...args);
  const write = (file: string, cert: NebulaCertificateV2): void => writeFileSync(path.join(dir, file), certV2ToPem(cert));
  // verify only for hosts (nebula-cert verify of a CA itself fails with "no issuer in certificate").
  const checkPair = (caFile: string, crtFile: string, cert: NebulaCertificateV2): void => {
    if (!cert.details.isCA) ok(t, go('verify', '-ca', caFile, '-crt', crtFile), `nebula-cert verify ${crtFile}`);
    const printed = go('print', '-json', '-path', crtFile);
    t.equal(printed.stdout, `[${certV2ToJson(cert)}]\n`, `${crtFile}: nebula-cert prints what we print (fingerprint included)`);
  };

  for (const curve of ['CURVE25519', 'P256'] as const) {
    const caKeys = curve === 'P256' ? generateP256KeyPair() : generateEd25519KeyPair();
    const ca = signCertV2(
      tbs(curve, { name: `TS ${curve} CA`, isCA: true, notAfter: now() + 7200, notBefore: now() - 3600, publicKey: caKeys.publicKey, groups: ['ops', 'web'], networks: nets('10.0.0.0/8', 'fd00::/16'), unsafeNetworks: nets('192.168.0.0/16', 'fd99::/16') }),
      undefined,
      curve,
      caKeys.privateKey,
    );
    const hostKeys = curve === 'P256' ? generateP256KeyPair() : generateX25519KeyPair();
    const host = signCertV2(
      tbs(curve, { name: `ts-${curve}-host`, publicKey: hostKeys.publicKey, groups: ['web'], networks: nets('10.4.5.6/16', 'fd00::4:5:6/64'), unsafeNetworks: nets('192.168.9.0/24', 'fd99:9::/64') }),
      ca,
      curve,
      caKeys.privateKey,
    );
    write(`ts-${curve}-ca.crt`, ca);
    write(`ts-${curve}-host.crt`, host);
    checkPair(`ts-${curve}-ca.crt`, `ts-${curve}-ca.crt`, ca);
    // nebula-cert loads our CA as a pool CA (self-signed, P256 or Ed25519) when verifying the host below.
    checkPair(`ts-${curve}-ca.crt`, `ts-${curve}-host.crt`, host);
  }
  // A negative control: the wrong CA fails nebula-cert verify.
  t.not(go('verify', '-ca', 'ts-P256-ca.crt', '-crt', 'ts-CURVE25519-host.crt').code, 0, 'wrong CA is refused by nebula-cert');

  // Signing with nebula-cert's own CA key, and nebula-cert signing a P256 public key made here.
  ok(t, go('ca', '-curve', 'P256', '-name', 'Go P256 CA', '-out-crt', 'pca.crt', '-out-key', 'pca.key'), 'ca -curve P256');
  const goCa = readCert(dir, 'pca.crt').cert;
  const { key, curve } = unmarshalSigningPrivateKeyPem(readFileSync(path.join(dir, 'pca.key'), 'utf8'));
  const hostKeys = generateP256KeyPair();
  const host = signCertV2(tbs(curve, { name: 'ts-signed-by-go-ca', publicKey: hostKeys.publicKey, networks: nets('10.7.7.7/24'), notBefore: goCa.details.notBefore, notAfter: goCa.details.notAfter - 1 }), goCa, curve, key);
  write('ts-by-go-ca.crt', host);
  checkPair('pca.crt', 'ts-by-go-ca.crt', host);
  writeFileSync(path.join(dir, 'ts.pub'), marshalPublicKeyPem('P256', hostKeys.publicKey));
  ok(t, go('sign', '-ca-crt', 'pca.crt', '-ca-key', 'pca.key', '-name', 'go-signed-ts-key', '-networks', 'fd00::77/64', '-in-pub', 'ts.pub', '-out-crt', 'inpub.crt'), 'nebula-cert sign -in-pub with our P256 key');
  const inpub = readCert(dir, 'inpub.crt').cert;
  t.same(inpub.publicKey, hostKeys.publicKey, 'the certificate carries our key');
  t.doesNotThrow(() => inpub.verifyPrivateKey('P256', hostKeys.privateKey), 'and pairs with our private key');
});

t.test('P256 signature forms: nebula-cert 1.11.0 accepts the high-s twin and fingerprints it as we do', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const go = (...args: string[]): GoRun => runGo(bin, dir, ...args);
  ok(t, go('ca', '-curve', 'P256', '-name', 'Go P256 CA', '-out-crt', 'pca.crt', '-out-key', 'pca.key'), 'ca -curve P256');
  ok(t, go('sign', '-ca-crt', 'pca.crt', '-ca-key', 'pca.key', '-name', 'h', '-networks', '10.9.0.1/16', '-out-crt', 'h.crt', '-out-key', 'h.key'), 'sign');
  const ca = readCert(dir, 'pca.crt').cert;
  const host = readCert(dir, 'h.crt').cert;
  const twin = new NebulaCertificateV2(host.details, host.rawDetails, host.curve, host.publicKey, swapP256Signature(host.signature));
  writeFileSync(path.join(dir, 'twin.crt'), certV2ToPem(twin));
  ok(t, go('verify', '-ca', 'pca.crt', '-crt', 'twin.crt'), 'nebula-cert verify accepts the high-s form');
  t.ok(twin.checkSignature(ca.publicKey), 'so do we');
  const printed = JSON.parse(go('print', '-json', '-path', 'twin.crt').stdout) as { fingerprint: string }[];
  t.equal(printed[0]!.fingerprint, twin.fingerprint(), "the twin's fingerprint agrees");
  t.equal(printed[0]!.fingerprint, host.alternateFingerprint(), "and is the original's alternate fingerprint");
  // A corrupted signature: both refuse.
  const broken = Buffer.from(host.signature);
  broken[broken.length - 1]! ^= 0x01;
  const bad = new NebulaCertificateV2(host.details, host.rawDetails, host.curve, host.publicKey, broken);
  writeFileSync(path.join(dir, 'bad.crt'), certV2ToPem(bad));
  t.not(go('verify', '-ca', 'pca.crt', '-crt', 'bad.crt').code, 0, 'nebula-cert refuses a corrupted signature');
  t.notOk(bad.checkSignature(ca.publicKey), 'so do we');
});

/** Hand-made edge cases around the decoder's rules (a minimal host certificate, one thing changed in each). */
function craftedCases(): Record<string, Buffer> {
  const host = fixtureCert('host-dual');
  const key = derElement(0x82, host.publicKey);
  const sig = derElement(0x83, host.signature);
  const cert = (details: Buffer, ...rest: Buffer[]): Buffer => derElement(0x30, details, ...(rest.length ? rest : [key, sig]));
  const name = derElement(0x80, Buffer.from('h'));
  const list = (tag: number, ...hexes: string[]): Buffer => derElement(tag, ...hexes.map((h) => derElement(0x04, Buffer.from(h, 'hex'))));
  const v4 = list(0xa1, '0a01020310');
  const times = [derElement(0x85, Buffer.from('01', 'hex')), derElement(0x86, Buffer.from('7f', 'hex'))];
  const d = (...fields: Buffer[]): Buffer => derElement(0xa0, ...fields);
  const v4in6 = '00000000000000000000ffff0a01020378';
  return {
    minimal: cert(d(name, v4, ...times)),
    'network of 1 byte': cert(d(name, list(0xa1, '00'), ...times)),
    'network /33': cert(d(name, list(0xa1, '0a01020321'), ...times)),
    'zero address': cert(d(name, list(0xa1, '0000000010'), ...times)),
    '4in6 network': cert(d(name, list(0xa1, v4in6), ...times)),
    '4in6 unsafe network beside a v6 network': cert(d(name, list(0xa1, 'fd00000000000000000000000000000140'), list(0xa2, v4in6), ...times)),
    '4in6 unsafe network beside a v4 network': cert(d(name, v4, list(0xa2, v4in6), ...times)),
    'zero unsafe network': cert(d(name, v4, list(0xa2, '0000000000'), ...times)),
    'duplicate network': cert(d(name, list(0xa1, '0a01020310', '0a01020310'), ...times)),
    'empty network list': cert(d(name, derElement(0xa1), ...times)),
    // Deliberate difference: Go decodes an unknown curve (and fails every signature check later); we refuse it.
    'unknown curve 2': cert(d(name, v4, ...times), derElement(0x81, Buffer.from([2])), key, sig),
    'explicit curve 0': cert(d(name, v4, ...times), derElement(0x81, Buffer.from([0])), key, sig),
    'bytes after the signature': cert(d(name, v4, ...times), key, sig, derElement(0x84, Buffer.from('x'))),
    'bytes after the envelope': Buffer.concat([cert(d(name, v4, ...times)), Buffer.from('zz')]),
    'unknown details field': cert(d(name, v4, ...times, derElement(0x88, Buffer.from('x')))),
    'isCA 0x01': cert(d(name, v4, derElement(0x84, Buffer.from([1])), ...times)),
    'isCA 0x00': cert(d(name, v4, derElement(0x84, Buffer.from([0])), ...times)),
    'negative notBefore': cert(d(name, v4, derElement(0x85, Buffer.from('80', 'hex')), times[1]!)),
    'empty issuer': cert(d(name, v4, ...times, derElement(0x87, Buffer.alloc(0)))),
    'one-byte public key': cert(d(name, v4, ...times), derElement(0x82, Buffer.from([1])), sig),
    'high-tag-number element': cert(d(name, v4, ...times), derElement(0x1f, Buffer.alloc(0)), key, sig),
    'non-minimal length': Buffer.concat([Buffer.from([0x30, 0x81]), cert(d(name, v4, ...times)).subarray(1)]),
    'invalid UTF-8 name': cert(d(derElement(0x80, Buffer.from('c328', 'hex')), v4, ...times)),
  };
}

t.test('crafted edge cases: nebula-ts accepts and refuses exactly what nebula-cert 1.11.0 does', async (t) => {
  const bin = needNebulaCert111(t);
  if (!bin) return;
  const dir = tempDir(t);
  const cases = craftedCases();
  for (const [what, der] of Object.entries(cases)) {
    writeFileSync(path.join(dir, 'c.crt'), pemEncode('NEBULA CERTIFICATE V2', der));
    const go = runGo(bin, dir, 'print', '-json', '-path', 'c.crt');
    let ours: NebulaCertificateV2 | Error;
    try {
      ours = unmarshalCertV2(der);
    } catch (err) {
      ours = err as Error;
    }
    if (what === 'unknown curve 2') {
      t.equal(go.code, 0, 'nebula-cert prints a certificate with curve 2');
      t.match(ours, { message: 'bad wire format: unknown curve 2' }, 'we refuse it');
      continue;
    }
    const goError = go.stderr.trim().replace(/^Error: error while unmarshaling cert: /, '');
    if (ours instanceof Error) {
      t.not(go.code, 0, `${what}: both refuse (ours: ${ours.message})`);
      // Go says just "bad wire format" for every structural fault; we add where.
      t.ok(ours.message === goError || ours.message.startsWith(`${goError}: `), `${what}: same error (go: ${goError})`);
    } else {
      t.equal(go.code, 0, `${what}: both accept${go.code ? ` (go: ${goError})` : ''}`);
      // Go escapes each invalid UTF-8 byte as \ufffd in JSON; we print the replacement character itself.
      if (what !== 'invalid UTF-8 name') t.equal(`[${certV2ToJson(ours)}]\n`, go.stdout, `${what}: prints identically`);
    }
  }
});
