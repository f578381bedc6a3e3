/**
 * Interoperability with Debian's nebula-cert 1.6.1, in both directions: certificates made by one tool verify in the
 * other and print the same details (nebula-ts-cert prints in nebula-cert 1.11's layout, mapped back to 1.6.1's
 * here), and nebula-ts re-encodes nebula-cert's bytes exactly. v1 certificates need `-version 1` on `ca` now.
 */
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { prereqs } from '../helpers/prereq';
import { CAPool, loadCAPool, pemDecode, unmarshalCertsFromPem, verifyPrivateKey, unmarshalX25519PrivateKey, unmarshalEd25519PrivateKey } from '../../src/shared/pki';
import { cliBuilt, goCert, tempDir, tsCert, type RunResult } from './helpers';

/**
 * One certificate of `nebula-ts-cert print -json` (1.11's layout) as nebula-cert 1.6.1's `print -json` line:
 * networks/unsafeNetworks back to ips/subnets, no curve or version.
 */
interface Printed111 {
  details: { groups: string[]; networks: string[]; unsafeNetworks: string[]; isCa: boolean; issuer: string; name: string; notAfter: string; notBefore: string; publicKey: string };
  fingerprint: string;
  signature: string;
}
function as161(c: Printed111): string {
  const d = c.details;
  const details = { groups: d.groups, ips: d.networks, isCa: d.isCa, issuer: d.issuer, name: d.name, notAfter: d.notAfter, notBefore: d.notBefore, publicKey: d.publicKey, subnets: d.unsafeNetworks };
  return JSON.stringify({ details, fingerprint: c.fingerprint, signature: c.signature });
}
const printedTs = (r: RunResult): Printed111[] => JSON.parse(r.stdout) as Printed111[];

function ok(t: Test, r: RunResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.stderr ? ': ' + r.stderr.trim() : ''}`);
}

t.before(() => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
});

t.test('CA and host certs made by nebula-ts-cert pass nebula-cert verify and print the same', async (t) => {
  if (!prereqs(t, ['nebula'])) return;
  const dir = tempDir(t);
  ok(t, tsCert(dir, 'ca', '-version', '1', '-name', 'TS Root', '-ips', '10.1.0.0/16,10.2.0.0/16', '-groups', 'ops,web,db', '-subnets', '192.168.0.0/16'), 'ts ca');
  ok(t, tsCert(dir, 'ca', '-version', '1', '-name', 'Open CA', '-duration', '2h30m', '-out-crt', 'open.crt', '-out-key', 'open.key'), 'ts ca 2');
  const hosts: string[][] = [
    ['-name', 'plain', '-ip', '10.1.0.1/16'],
    ['-name', 'grouped', '-ip', '10.2.3.4/24', '-groups', 'ops,db', '-subnets', '192.168.10.0/24,192.168.20.0/24', '-duration', '1h'],
    ['-name', 'keyless', '-ip', '10.1.9.9/16', '-in-pub', 'go.pub'],
    ['-name', 'open-host', '-ip', '172.16.5.5/12', '-groups', 'anything', '-ca-crt', 'open.crt', '-ca-key', 'open.key'],
  ];
  ok(t, goCert(dir, 'keygen', '-out-key', 'go.key', '-out-pub', 'go.pub'), 'nebula-cert keygen');
  for (const args of hosts) ok(t, tsCert(dir, 'sign', ...args), `ts sign ${args[1]}`);

  for (const [crt, ca] of [
    ['plain.crt', 'ca.crt'],
    ['grouped.crt', 'ca.crt'],
    ['keyless.crt', 'ca.crt'],
    ['open-host.crt', 'open.crt'],
  ] as const) {
    ok(t, goCert(dir, 'verify', '-ca', ca, '-crt', crt), `nebula-cert verify ${crt}`);
    ok(t, tsCert(dir, 'verify', '-ca', ca, '-crt', crt), `nebula-ts-cert verify ${crt}`);
  }
  for (const file of ['ca.crt', 'open.crt', 'plain.crt', 'grouped.crt', 'keyless.crt', 'open-host.crt']) {
    const go = goCert(dir, 'print', '-json', '-path', file);
    const ts = tsCert(dir, 'print', '-json', '-path', file);
    ok(t, go, `nebula-cert print ${file}`);
    const g = JSON.parse(go.stdout) as { fingerprint: string };
    const s = printedTs(ts);
    t.equal(s.length, 1);
    t.equal(s[0]!.fingerprint, g.fingerprint, `${file}: fingerprint`);
    t.equal(as161(s[0]!) + '\n', go.stdout, `${file}: the same details as nebula-cert 1.6.1 prints`);
  }
  // The -in-pub cert carries nebula-cert's public key, and its key file matches.
  const keyless = unmarshalCertsFromPem(readFileSync(path.join(dir, 'keyless.crt'), 'utf8'))[0]!;
  t.doesNotThrow(() => verifyPrivateKey(keyless, unmarshalX25519PrivateKey(readFileSync(path.join(dir, 'go.key'), 'utf8')).key));
  // nebula-cert can sign with a CA (and key) made by nebula-ts-cert.
  ok(t, goCert(dir, 'sign', '-name', 'go-host', '-ip', '10.2.0.9/16', '-groups', 'web'), 'nebula-cert sign with ts CA');
  ok(t, tsCert(dir, 'verify', '-ca', 'ca.crt', '-crt', 'go-host.crt'), 'ts verify of go-signed cert');
  // The private key formats agree: nebula-ts's CA key matches its cert in nebula's 64-byte layout.
  const caCert = unmarshalCertsFromPem(readFileSync(path.join(dir, 'ca.crt'), 'utf8'))[0]!;
  t.doesNotThrow(() => verifyPrivateKey(caCert, unmarshalEd25519PrivateKey(readFileSync(path.join(dir, 'ca.key'), 'utf8')).key));
});

t.test('certs made by nebula-cert parse, verify, print and re-encode identically in nebula-ts', async (t) => {
  if (!prereqs(t, ['nebula'])) return;
  const dir = tempDir(t);
  ok(t, goCert(dir, 'ca', '-name', 'Go Restricted', '-ips', '10.50.0.0/16,10.60.0.0/16', '-groups', 'g1,g2,g3', '-subnets', '172.16.0.0/12,192.168.0.0/16', '-out-crt', 'r.crt', '-out-key', 'r.key'), 'go ca restricted');
  ok(t, goCert(dir, 'ca', '-name', 'Go Open', '-duration', '100h', '-out-crt', 'o.crt', '-out-key', 'o.key'), 'go ca open');
  ok(t, goCert(dir, 'keygen', '-out-key', 'k.key', '-out-pub', 'k.pub'), 'go keygen');
  ok(t, tsCert(dir, 'keygen', '-out-key', 'tk.key', '-out-pub', 'tk.pub'), 'ts keygen');
  const signs: [string, string[]][] = [
    ['r', ['-name', 'groups', '-ip', '10.50.1.1/16', '-groups', 'g1,g3']],
    ['r', ['-name', 'subnets', '-ip', '10.60.255.254/24', '-subnets', '172.20.0.0/16,192.168.7.0/24', '-groups', 'g2']],
    ['r', ['-name', 'inpub', '-ip', '10.50.7.7/16', '-in-pub', 'k.pub']],
    ['o', ['-name', 'tspub', '-ip', '10.0.0.1/8', '-in-pub', 'tk.pub', '-duration', '10h']],
    ['o', ['-name', 'plain', '-ip', '192.168.100.1/24']],
  ];
  for (const [ca, args] of signs) ok(t, goCert(dir, 'sign', '-ca-crt', `${ca}.crt`, '-ca-key', `${ca}.key`, ...args), `go sign ${args[1]}`);
  const bundle = readFileSync(path.join(dir, 'r.crt'), 'utf8') + readFileSync(path.join(dir, 'o.crt'), 'utf8');
  writeFileSync(path.join(dir, 'bundle.crt'), bundle);

  // The bundle of two CAs loads as a pool with both fingerprints.
  const { pool, expired } = loadCAPool(bundle);
  t.equal(pool.cas.size, 2);
  t.equal(expired.length, 0);
  const goBundle = goCert(dir, 'print', '-json', '-path', 'bundle.crt');
  const tsBundle = tsCert(dir, 'print', '-json', '-path', 'bundle.crt');
  t.equal(printedTs(tsBundle).map(as161).join('\n') + '\n', goBundle.stdout, 'bundle prints the same details');
  t.equal(printedTs(tsBundle).length, 2);

  for (const file of ['r.crt', 'o.crt', 'groups.crt', 'subnets.crt', 'inpub.crt', 'tspub.crt', 'plain.crt', 'bundle.crt']) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    const certs = unmarshalCertsFromPem(text);
    // Re-encoding is byte-identical to nebula-cert's bytes, block by block.
    let rest = text;
    for (const c of certs) {
      const d = pemDecode(rest)!;
      t.same(c.marshal(), d.block.bytes, `${file} ${c.details.name}: re-encoding is byte-identical`);
      t.equal(c.toPem(), rest.slice(0, c.toPem().length), `${file}: PEM text identical`);
      rest = d.rest;
    }
    const goJson = goCert(dir, 'print', '-json', '-path', file).stdout.trim().split('\n');
    certs.forEach((c, i) => {
      t.equal(c.fingerprint(), (JSON.parse(goJson[i]!) as { fingerprint: string }).fingerprint, `${file}: fingerprint`);
    });
    t.equal(printedTs(tsCert(dir, 'print', '-json', '-path', file)).map(as161).join('\n'), goJson.join('\n'), `${file}: print -json, same details`);
    if (!certs[0]!.details.isCA) {
      t.doesNotThrow(() => pool.verify(certs[0]!), `${file}: verifies against the bundle`);
      ok(t, tsCert(dir, 'verify', '-ca', 'bundle.crt', '-crt', file), `${file}: nebula-ts-cert verify`);
    }
  }
  // A cert from one CA is not accepted by a pool holding only the other.
  const single = new CAPool();
  single.addCA(unmarshalCertsFromPem(readFileSync(path.join(dir, 'o.crt'), 'utf8'))[0]!);
  t.throws(() => single.verify(unmarshalCertsFromPem(readFileSync(path.join(dir, 'groups.crt'), 'utf8'))[0]!), {
    message: 'could not find ca for the certificate',
  });
  // Key files from nebula-cert match their certs (X25519 base point for hosts, Ed25519 for CAs).
  const keyOf = (f: string): Buffer => unmarshalX25519PrivateKey(readFileSync(path.join(dir, f), 'utf8')).key;
  const certOf = (f: string) => unmarshalCertsFromPem(readFileSync(path.join(dir, f), 'utf8'))[0]!;
  t.doesNotThrow(() => verifyPrivateKey(certOf('groups.crt'), keyOf('groups.key')));
  t.doesNotThrow(() => verifyPrivateKey(certOf('inpub.crt'), keyOf('k.key')));
  t.doesNotThrow(() => verifyPrivateKey(certOf('tspub.crt'), keyOf('tk.key')));
  t.throws(() => verifyPrivateKey(certOf('plain.crt'), keyOf('groups.key')), /don't match/);
  t.doesNotThrow(() => verifyPrivateKey(certOf('r.crt'), unmarshalEd25519PrivateKey(readFileSync(path.join(dir, 'r.key'), 'utf8')).key));
  // nebula-ts-cert signs with nebula-cert's restricted CA, honouring its restrictions.
  ok(t, tsCert(dir, 'sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'ts-host', '-ip', '10.60.1.2/16', '-groups', 'g2'), 'ts sign with go CA');
  ok(t, goCert(dir, 'verify', '-ca', 'bundle.crt', '-crt', 'ts-host.crt'), 'nebula-cert verifies it');
  const refused = tsCert(dir, 'sign', '-ca-crt', 'r.crt', '-ca-key', 'r.key', '-name', 'bad', '-ip', '10.70.1.2/16');
  t.equal(refused.code, 1);
  t.equal(
    refused.stderr,
    'Error: error while signing: certificate contained a network assignment outside the limitations of the signing ca: 10.70.1.2/16\n',
  );
});
