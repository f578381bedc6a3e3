/**
 * Passphrase-encrypted CA keys (`ca -encrypt`, read by `sign`): the envelope nebula 1.11 writes (Argon2id +
 * AES-256-GCM in RawNebulaEncryptedData), its refusals in Go's wording, the round trip with nebula-cert 1.11.0 in
 * both directions and both curves, and the passphrase sources: $NEBULA_CA_PASSPHRASE, a terminal prompt (through
 * a pty made by script(1)), and the refusal without either. Argon2 memory is kept small: the pure-TypeScript
 * Argon2id needs about 30 ms per MiB.
 */
process.env.TZ = 'UTC';
delete process.env.NEBULA_CA_PASSPHRASE;
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { generateEd25519KeyPair, generateP256KeyPair, pemDecode, pemEncode } from '../../src/shared/pki';
import { ProtoReader, ProtoWriter } from '../../src/shared/protobuf';
import { decryptSigningKeyPem, encryptSigningKeyPem } from '../../src/cert-cli/encrypted-key';
import { inCI } from '../helpers/prereq';
import { runCli } from './cli-helpers';
import { CLI, cliBuilt, tempDir, type RunResult } from './helpers';
import { needNebulaCert111, runGo } from './v2/nebula-cert-111';

const PASS = Buffer.from('correct horse battery staple');
const SMALL = { memory: 64, parallelism: 2, iterations: 1 };
const ED_BANNER = 'NEBULA ED25519 ENCRYPTED PRIVATE KEY';

function ok(t: Test, r: RunResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.stderr.trim() ? ': ' + r.stderr.trim() : ''}`);
}

/** Runs with $NEBULA_CA_PASSPHRASE set to `passphrase` (in-process, or in a child that inherits it). */
function withPassphrase<T>(passphrase: string, fn: () => T): T {
  process.env.NEBULA_CA_PASSPHRASE = passphrase;
  try {
    return fn();
  } finally {
    delete process.env.NEBULA_CA_PASSPHRASE;
  }
}

interface Fields {
  [field: number]: Buffer | bigint;
}

function fieldsOf(buf: Buffer): Fields {
  const out: Fields = {};
  const r = new ProtoReader(buf);
  while (!r.done) {
    const f = r.next();
    out[f.field] = f.wire === 0 ? f.int : f.data;
  }
  return out;
}

/** A hand-built envelope, each part overridable, to reach every refusal. */
function envelope(o: { algorithm?: string; version?: number; memory?: number; iterations?: number; parallelism?: number; salt?: Buffer; ciphertext?: Buffer; noArgon?: boolean; noMetadata?: boolean }): string {
  const argon = new ProtoWriter()
    .uint(1, o.version ?? 0x13)
    .uint(2, o.memory ?? 64)
    .uint(3, o.iterations ?? 1)
    .uint(4, o.parallelism ?? 2)
    .bytes(5, o.salt ?? Buffer.alloc(32, 7))
    .finish();
  const metadata = new ProtoWriter().bytes(1, o.algorithm ?? 'AES-256-GCM');
  if (!o.noArgon) metadata.message(2, argon);
  const env = new ProtoWriter();
  if (!o.noMetadata) env.message(1, metadata.finish());
  env.bytes(2, o.ciphertext ?? Buffer.alloc(12 + 64 + 16, 1));
  return pemEncode(ED_BANNER, env.finish());
}

t.test('the envelope: Go\'s layout, a round trip for both curves, and each refusal in Go\'s wording', async (t) => {
  const ed = generateEd25519KeyPair();
  const pem = encryptSigningKeyPem('CURVE25519', ed.privateKey, PASS, SMALL);
  const block = pemDecode(pem)!.block;
  t.equal(block.type, ED_BANNER);
  const top = fieldsOf(block.bytes);
  const meta = fieldsOf(top[1] as Buffer);
  const argon = fieldsOf(meta[2] as Buffer);
  t.equal((meta[1] as Buffer).toString(), 'AES-256-GCM');
  t.same([argon[1], argon[2], argon[3], argon[4]], [0x13n, 64n, 1n, 2n], 'argon2 version, memory, iterations, parallelism');
  t.equal((argon[5] as Buffer).length, 32, '32-byte salt');
  t.equal((top[2] as Buffer).length, 12 + 64 + 16, 'nonce, sealed Ed25519 key, tag');
  t.same(decryptSigningKeyPem(PASS, pem), { curve: 'CURVE25519', key: ed.privateKey });
  const p = generateP256KeyPair();
  const pPem = encryptSigningKeyPem('P256', p.privateKey, PASS, SMALL);
  t.match(pPem, /^-----BEGIN NEBULA ECDSA P256 ENCRYPTED PRIVATE KEY-----\n/);
  t.same(decryptSigningKeyPem(PASS, pPem), { curve: 'P256', key: p.privateKey });
  t.not(encryptSigningKeyPem('P256', p.privateKey, PASS, SMALL), pPem, 'fresh salt and nonce every time');

  const refuses = (text: string, message: string | RegExp, passphrase = PASS): void => {
    t.throws(() => decryptSigningKeyPem(passphrase, text), { message }, String(message));
  };
  refuses(pem, 'invalid passphrase or corrupt private key', Buffer.from('wrong'));
  const flipped = Buffer.from(block.bytes);
  flipped[flipped.length - 20]! ^= 1;
  refuses(pemEncode(ED_BANNER, flipped), 'invalid passphrase or corrupt private key');
  refuses('no pem here', 'input did not contain a valid PEM encoded block');
  refuses(pem.replaceAll('ENCRYPTED ', ''), 'bytes did not contain a proper nebula encrypted Ed25519/ECDSA private key banner');
  refuses(pemEncode(ED_BANNER, Buffer.alloc(0)), 'nil byte array');
  refuses(pemEncode(ED_BANNER, Buffer.from([0x0a, 0x7f])), /^proto: cannot parse invalid wire-format data/);
  refuses(envelope({ noMetadata: true }), 'encoded EncryptionMetadata was nil');
  refuses(envelope({ noArgon: true }), 'encoded Argon2Parameters was nil');
  refuses(envelope({ memory: 0 }), 'Argon2Parameters Memory must be be greater than 0 and no more than 4294967295 KiB');
  refuses(envelope({ parallelism: 300 }), 'Argon2Parameters Parallelism must be be greater than 0 and no more than 255');
  refuses(envelope({ iterations: 0 }), '-argon-iterations must be be greater than 0 and no more than 4294967295');
  refuses(envelope({ algorithm: 'AES-128-CBC' }), 'unsupported encryption algorithm: AES-128-CBC');
  refuses(envelope({ version: 0x10 }), 'incompatible Argon2 version: 16');
  refuses(envelope({ salt: Buffer.alloc(8) }), 'salt must be at least 128  bits');
  refuses(envelope({ ciphertext: Buffer.alloc(12) }), 'invalid ciphertext blob - blob shorter than nonce length');
  refuses(envelope({ memory: 8, parallelism: 2 }), /below 8 KiB per lane/);
  // A 32-byte key sealed under the Ed25519 banner decrypts, and is then refused for its size.
  const short = pemEncode(ED_BANNER, pemDecode(encryptSigningKeyPem('P256', p.privateKey, PASS, SMALL))!.block.bytes);
  refuses(short, 'key was not 64 bytes, is invalid ed25519 private key');
});

t.test('ca -encrypt and sign with $NEBULA_CA_PASSPHRASE, and nebula-cert 1.11.0 reading ours and we reading its', async (t) => {
  const dir = tempDir(t);
  const ts = (...args: string[]): RunResult => withPassphrase('s3cret', () => runCli(dir, ...args));
  const argon = ['-argon-memory', '2048', '-argon-iterations', '2', '-argon-parallelism', '2'];
  ok(t, ts('ca', '-encrypt', ...argon, '-name', 'enc25519', '-out-crt', 'e.crt', '-out-key', 'e.key'), 'ca -encrypt');
  ok(t, ts('ca', '-encrypt', ...argon, '-curve', 'P256', '-name', 'encP256', '-out-crt', 'ep.crt', '-out-key', 'ep.key'), 'ca -encrypt -curve P256');
  t.match(readFileSync(path.join(dir, 'e.key'), 'utf8'), /^-----BEGIN NEBULA ED25519 ENCRYPTED PRIVATE KEY-----\n/);
  t.match(readFileSync(path.join(dir, 'ep.key'), 'utf8'), /^-----BEGIN NEBULA ECDSA P256 ENCRYPTED PRIVATE KEY-----\n/);
  ok(t, ts('sign', '-ca-crt', 'e.crt', '-ca-key', 'e.key', '-name', 'h1', '-networks', '10.1.0.1/16'), 'sign with our encrypted key');
  ok(t, ts('verify', '-ca', 'e.crt', '-crt', 'h1.crt'), 'verify');
  const wrong = withPassphrase('nope', () => runCli(dir, 'sign', '-ca-crt', 'e.crt', '-ca-key', 'e.key', '-name', 'h2', '-networks', '10.1.0.2/16'));
  t.equal(wrong.stderr, 'Error: error while parsing encrypted ca-key: invalid passphrase or corrupt private key\n');
  t.notOk(existsSync(path.join(dir, 'h2.crt')), 'nothing written');

  const bin = needNebulaCert111(t);
  if (!bin) return;
  const go = (...args: string[]): RunResult => withPassphrase('s3cret', () => runGo(bin, dir, ...args));
  // Ours, opened by nebula-cert.
  ok(t, go('sign', '-ca-crt', 'e.crt', '-ca-key', 'e.key', '-name', 'g1', '-networks', '10.1.0.3/16'), 'nebula-cert signs with our encrypted Ed25519 key');
  ok(t, go('sign', '-ca-crt', 'ep.crt', '-ca-key', 'ep.key', '-name', 'g2', '-networks', '10.1.0.4/16'), 'nebula-cert signs with our encrypted P256 key');
  ok(t, go('verify', '-ca', 'ep.crt', '-crt', 'g2.crt'), 'nebula-cert verifies it');
  // Its, opened by us.
  ok(t, go('ca', '-encrypt', '-argon-memory', '4096', '-name', 'goEnc', '-out-crt', 'ge.crt', '-out-key', 'ge.key'), 'nebula-cert ca -encrypt');
  ok(t, go('ca', '-encrypt', '-argon-memory', '4096', '-curve', 'P256', '-name', 'goEncP', '-out-crt', 'gep.crt', '-out-key', 'gep.key'), 'nebula-cert ca -encrypt -curve P256');
  ok(t, ts('sign', '-ca-crt', 'ge.crt', '-ca-key', 'ge.key', '-name', 't1', '-networks', '10.2.0.1/16'), 'we sign with its encrypted Ed25519 key');
  ok(t, ts('sign', '-ca-crt', 'gep.crt', '-ca-key', 'gep.key', '-name', 't2', '-networks', '10.2.0.2/16'), 'we sign with its encrypted P256 key');
  ok(t, go('verify', '-ca', 'ge.crt', '-crt', 't1.crt'), 'nebula-cert verifies t1');
  ok(t, go('verify', '-ca', 'gep.crt', '-crt', 't2.crt'), 'nebula-cert verifies t2');
  // The same refusals, word for word, for a wrong passphrase and for broken envelopes.
  const files: Record<string, string> = {
    'alg.key': envelope({ algorithm: 'AES-128-CBC' }),
    'salt.key': envelope({ salt: Buffer.alloc(8) }),
    'short.key': envelope({ ciphertext: Buffer.alloc(12) }),
    'ver.key': envelope({ version: 0x10 }),
    'par.key': envelope({ parallelism: 0 }),
  };
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
  for (const [key, passphrase] of [['ge.key', 'wrong'], ...Object.keys(files).map((f) => [f, 's3cret'])] as const) {
    const args = ['sign', '-ca-crt', 'ge.crt', '-ca-key', key, '-name', 'x', '-networks', '10.2.0.9/16'];
    const g = withPassphrase(passphrase, () => runGo(bin, dir, ...args));
    const s = withPassphrase(passphrase, () => runCli(dir, ...args));
    t.not(g.code, 0, `${key}: nebula-cert refuses it`);
    t.equal(s.stderr, g.stderr, `${key}: same error as nebula-cert`);
  }
});

t.test('the passphrase prompt: refused without a terminal, read from one with echo off', async (t) => {
  if (!cliBuilt()) throw new Error('dist/cert-cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
  const dir = tempDir(t);
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC' };
  delete env.NEBULA_CA_PASSPHRASE;
  const spawn = (args: string[], input = ''): RunResult => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, env, input, encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const noTty = spawn(['ca', '-encrypt', '-argon-memory', '64', '-name', 'x']);
  t.equal(noTty.code, 1);
  t.equal(noTty.stderr, 'Enter passphrase: Error: out-key must be encrypted interactively\n', 'ca: stdin is not a terminal');
  t.notOk(existsSync(path.join(dir, 'ca.key')), 'no key written');
  writeFileSync(path.join(dir, 'ca.key'), encryptSigningKeyPem('CURVE25519', generateEd25519KeyPair().privateKey, PASS, SMALL));
  t.equal(spawn(['sign', '-name', 'h', '-networks', '10.0.0.1/8']).stderr, 'Enter passphrase: Error: ca-key is encrypted and must be decrypted interactively\n', 'sign: stdin is not a terminal');

  // A terminal: script(1) runs the CLI on a pty and feeds it our input.
  if (spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0) {
    const reason = 'missing prerequisite: script(1) from util-linux, for a pty';
    if (inCI) t.fail(reason);
    else t.skip(reason, () => undefined);
    return;
  }
  const onPty = (args: string[], typed: string): string => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: dir, env, input: typed, encoding: 'utf8', timeout: 60_000 });
    return r.stdout;
  };
  const created = onPty(['ca', '-encrypt', '-argon-memory', '64', '-name', 'tty', '-out-crt', 'tty.crt', '-out-key', 'tty.key'], '\n\ns3cret\n');
  t.match(created, /Enter passphrase: [^]*Enter passphrase: [^]*Enter passphrase: /, 'empty answers are asked again');
  t.same(decryptSigningKeyPem(Buffer.from('s3cret'), readFileSync(path.join(dir, 'tty.key'), 'utf8')).curve, 'CURVE25519', 'the typed passphrase encrypts the key');
  onPty(['sign', '-ca-crt', 'tty.crt', '-ca-key', 'tty.key', '-name', 'ttyhost', '-networks', '10.3.0.1/16'], 's3cret\n');
  t.ok(existsSync(path.join(dir, 'ttyhost.crt')), 'sign opened the key with the typed passphrase');
  const gaveUp = onPty(['sign', '-ca-crt', 'tty.crt', '-ca-key', 'tty.key', '-name', 'never', '-networks', '10.3.0.2/16'], '\n\n\n\n\n');
  t.match(gaveUp, /Error: cannot open encrypted ca-key without passphrase/, 'five empty answers give up');
  t.notOk(existsSync(path.join(dir, 'never.crt')));
});
