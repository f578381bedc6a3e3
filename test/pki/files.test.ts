/** nebula-ts-cert file handling: keys and certs are written 0600 and existing files are never overwritten. */
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cliBuilt, tempDir, tsCert } from './helpers';

t.before(() => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
});

const mode = (dir: string, f: string): number => statSync(path.join(dir, f)).mode & 0o777;

t.test('key and cert files are created 0600, whatever the umask', async (t) => {
  const dir = tempDir(t);
  const old = process.umask(0o000); // the child inherits it; 0600 must not widen
  try {
    t.equal(tsCert(dir, 'ca', '-name', 'ca').code, 0);
    t.equal(tsCert(dir, 'sign', '-name', 'h1', '-ip', '10.0.0.1/24').code, 0);
    t.equal(tsCert(dir, 'keygen', '-out-key', 'k.key', '-out-pub', 'k.pub').code, 0);
    t.equal(tsCert(dir, 'sign', '-name', 'h2', '-ip', '10.0.0.2/24', '-in-pub', 'k.pub', '-out-crt', 'custom.crt').code, 0);
  } finally {
    process.umask(old);
  }
  for (const f of ['ca.key', 'ca.crt', 'h1.key', 'h1.crt', 'k.key', 'k.pub', 'custom.crt']) t.equal(mode(dir, f), 0o600, `${f} is 0600`);
  t.match(readFileSync(path.join(dir, 'ca.key'), 'utf8'), /^-----BEGIN NEBULA ED25519 PRIVATE KEY-----\n/);
  t.match(readFileSync(path.join(dir, 'h1.key'), 'utf8'), /^-----BEGIN NEBULA X25519 PRIVATE KEY-----\n/);
  t.match(readFileSync(path.join(dir, 'k.pub'), 'utf8'), /^-----BEGIN NEBULA X25519 PUBLIC KEY-----\n/);
  t.throws(() => statSync(path.join(dir, 'h2.key')), 'no key is written with -in-pub');
});

t.test('existing files are not overwritten', async (t) => {
  const dir = tempDir(t);
  t.equal(tsCert(dir, 'ca', '-name', 'ca').code, 0);
  const snapshot = (f: string): string => readFileSync(path.join(dir, f), 'utf8');
  const caKey = snapshot('ca.key');
  const caCrt = snapshot('ca.crt');
  const refuse = (args: string[], message: string): void => {
    const r = tsCert(dir, ...args);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stderr, `Error: ${message}\n`);
  };
  refuse(['ca', '-name', 'again'], 'refusing to overwrite existing CA key: ca.key');
  refuse(['ca', '-name', 'again', '-out-key', 'new.key'], 'refusing to overwrite existing CA cert: ca.crt');
  t.throws(() => statSync(path.join(dir, 'new.key')), 'the CA key was not written when the cert could not be');
  t.equal(snapshot('ca.key'), caKey);
  t.equal(snapshot('ca.crt'), caCrt);

  writeFileSync(path.join(dir, 'h.crt'), 'precious');
  refuse(['sign', '-name', 'h', '-ip', '10.0.0.1/24'], 'refusing to overwrite existing cert: h.crt');
  t.equal(snapshot('h.crt'), 'precious');
  t.throws(() => statSync(path.join(dir, 'h.key')), 'no key was written either');

  writeFileSync(path.join(dir, 'h2.key'), 'precious key');
  refuse(['sign', '-name', 'h2', '-ip', '10.0.0.2/24'], 'refusing to overwrite existing key: h2.key');
  t.equal(snapshot('h2.key'), 'precious key');
  t.throws(() => statSync(path.join(dir, 'h2.crt')), 'no cert was written either');

  writeFileSync(path.join(dir, 'x.pub'), 'old pub');
  refuse(['keygen', '-out-key', 'x.key', '-out-pub', 'x.pub'], 'refusing to overwrite existing public key: x.pub');
  refuse(['keygen', '-out-key', 'ca.key', '-out-pub', 'y.pub'], 'refusing to overwrite existing key: ca.key');
  t.equal(snapshot('x.pub'), 'old pub');
  t.equal(snapshot('ca.key'), caKey);
});
