/**
 * `keygen`: a key-agreement key pair (X25519 or P256) for `sign -in-pub`. nebula-cert 1.11's keygen.go, except that
 * an existing file is never overwritten (Go would replace it).
 */
import { generateP256KeyPair, generateX25519KeyPair, marshalPrivateKeyPem, marshalPublicKeyPem } from '../shared/pki';
import { CliError } from './errors';
import { exists, IoClaims, writeOutput } from './fileio';
import { FlagSet } from './flags';
import { mustFlag, parseCurve, type Mode, type Output } from './commands';

function keygenFlags(): FlagSet {
  return new FlagSet()
    .string('out-pub', '', 'Required: path to write the public key to')
    .string('out-key', '', 'Required: path to write the private key to')
    .string('curve', '25519', 'ECDH Curve (25519, P256)');
}

function run(args: string[], io: Output): void {
  const f = keygenFlags().parse(args);
  const outKey = mustFlag(f, 'out-key');
  const outPub = mustFlag(f, 'out-pub');
  const curve = parseCurve(f.getString('curve'));
  if (!curve) throw new CliError(`invalid curve: ${f.getString('curve')}`);
  new IoClaims().reserveOutputs(['out-key', outKey], ['out-pub', outPub]);
  if (exists(outKey)) throw new CliError(`refusing to overwrite existing key: ${outKey}`);
  if (exists(outPub)) throw new CliError(`refusing to overwrite existing public key: ${outPub}`);
  const keys = curve === 'P256' ? generateP256KeyPair() : generateX25519KeyPair();
  writeOutput(outKey, marshalPrivateKeyPem(curve, keys.privateKey), io.out, 'error while writing out-key: ');
  writeOutput(outPub, marshalPublicKeyPem(curve, keys.publicKey), io.out, 'error while writing out-pub: ');
}

export const keygenMode: Mode = {
  summary: 'keygen <flags>: create a public/private key pair. the public key can be passed to `nebula-cert sign`',
  flags: keygenFlags,
  run,
};
