/**
 * `ca`: a self-signed CA, v2 by default as in nebula-cert 1.10+ (-version 1 for a 1.6.1-era mesh), with an
 * Ed25519 or ECDSA P256 key (either version: a v1 P256 CA is what nebula-cert 1.7-1.9 makes with -curve P256), optionally passphrase-encrypted (-encrypt). nebula-cert 1.11's ca.go order of checks.
 */
import {
  generateEd25519KeyPair,
  generateP256KeyPair,
  marshalSigningPrivateKeyPem,
  signCert,
  signCertV2,
  certV2ToPem,
  isV4,
  formatPrefix,
  type Curve,
} from '../shared/pki';
import { validateV1As111 } from './any-cert';
import { encryptSigningKeyPem, type Argon2Params } from './encrypted-key';
import { CliError, HelpError } from './errors';
import { exists, IoClaims, writeOutput } from './fileio';
import { FlagSet } from './flags';
import { getPassphrase } from './passphrase';
import { parseGroups, parseNetworkList, prefixToV4Net, withAlias } from './parse-nets';
import { HOUR_NS, checkVersion, mustFlag, nowPlus, parseCurve, refuseQr, wrap, type Mode, type Output } from './commands';

const MAX_UINT32 = 4294967295n;

function caFlags(): FlagSet {
  const limit = 'This will limit which ip addresses and networks subordinate certs can use';
  return new FlagSet()
    .string('name', '', 'Required: name of the certificate authority')
    .uint('version', 2n, 'Optional: version of the certificate format to use')
    .duration('duration', 8760n * HOUR_NS, 'Optional: amount of time the certificate should be valid for. Valid time units are seconds: "s", minutes: "m", hours: "h"')
    .string('out-key', 'ca.key', 'Optional: path to write the private key to')
    .string('out-crt', 'ca.crt', 'Optional: path to write the certificate to')
    .string('out-qr', '', 'Optional: output a qr code image (png) of the certificate')
    .string('groups', '', 'Optional: comma separated list of groups. This will limit which groups subordinate certs can use')
    .string('networks', '', `Optional: comma separated list of ip address and network in CIDR notation. ${limit} in networks`)
    .string('unsafe-networks', '', `Optional: comma separated list of ip address and network in CIDR notation. ${limit} in unsafe networks`)
    .uint('argon-memory', 2n * 1024n * 1024n, 'Optional: Argon2 memory parameter (in KiB) used for encrypted private key passphrase')
    .uint('argon-parallelism', 4n, 'Optional: Argon2 parallelism parameter used for encrypted private key passphrase')
    .uint('argon-iterations', 1n, 'Optional: Argon2 iterations parameter used for encrypted private key passphrase')
    .bool('encrypt', false, 'Optional: prompt for passphrase and write out-key in an encrypted format')
    .string('curve', '25519', 'EdDSA/ECDSA Curve (25519, P256)')
    .string('ips', '', 'Deprecated, see -networks')
    .string('subnets', '', 'Deprecated, see -unsafe-networks');
}

/** Go's parseArgonParameters. */
function argonParams(f: FlagSet): Argon2Params {
  const memory = f.getUint('argon-memory');
  const parallelism = f.getUint('argon-parallelism');
  const iterations = f.getUint('argon-iterations');
  if (memory <= 0n || memory > MAX_UINT32) throw new HelpError(`-argon-memory must be be greater than 0 and no more than ${MAX_UINT32} KiB`);
  if (parallelism <= 0n || parallelism > 255n) throw new HelpError('-argon-parallelism must be be greater than 0 and no more than 255');
  if (iterations <= 0n || iterations > MAX_UINT32) throw new HelpError(`-argon-iterations must be be greater than 0 and no more than ${MAX_UINT32}`);
  return { memory: Number(memory), parallelism: Number(parallelism), iterations: Number(iterations) };
}

function generateSigningKey(curve: Curve): { publicKey: Buffer; privateKey: Buffer } {
  return curve === 'P256' ? generateP256KeyPair() : generateEd25519KeyPair();
}

function run(args: string[], io: Output): void {
  const f = caFlags().parse(args);
  const name = mustFlag(f, 'name');
  const outKey = mustFlag(f, 'out-key');
  const outCrt = mustFlag(f, 'out-crt');
  const encrypt = f.getBool('encrypt');
  const kdf = encrypt ? argonParams(f) : undefined;
  const duration = f.getDuration('duration');
  if (duration <= 0n) throw new HelpError('-duration must be greater than 0');
  const groups = parseGroups(f.getString('groups'));
  const version = checkVersion(f.getUint('version'), false);
  const networks = parseNetworkList(withAlias(f.getString('networks'), f.getString('ips')), 'networks');
  const unsafeNetworks = parseNetworkList(withAlias(f.getString('unsafe-networks'), f.getString('subnets')), 'unsafe-networks');
  if (version === 1) {
    for (const [flag, list] of [['networks', networks], ['unsafe-networks', unsafeNetworks]] as const) {
      const v6 = list.find((n) => !isV4(n));
      if (v6) throw new HelpError(`invalid -${flag} definition: v1 certificates can only be ipv4, have ${formatPrefix(v6)}`);
    }
  }
  refuseQr(f);
  new IoClaims().reserveOutputs(['out-key', outKey], ['out-crt', outCrt]);

  const passphrase = encrypt
    ? getPassphrase(io.err, {
        noTerminal: 'out-key must be encrypted interactively',
        readError: 'error reading passphrase: ',
        empty: 'no passphrase specified, remove -encrypt flag to write out-key in plaintext',
      })
    : undefined;
  const curve = parseCurve(f.getString('curve'));
  if (!curve) throw new CliError(`invalid curve: ${f.getString('curve')}`);
  const keys = generateSigningKey(curve);
  const nowMs = Date.now();
  const notBefore = Math.floor(nowMs / 1000);
  const notAfter = nowPlus(nowMs, duration);

  if (exists(outKey)) throw new CliError(`refusing to overwrite existing CA key: ${outKey}`);
  if (exists(outCrt)) throw new CliError(`refusing to overwrite existing CA cert: ${outCrt}`);

  const certPem = wrap('error while signing: ', () => {
    if (version === 2) {
      const tbs = { name, networks, unsafeNetworks, groups, isCA: true, notBefore, notAfter, publicKey: keys.publicKey, curve };
      return certV2ToPem(signCertV2(tbs, undefined, curve, keys.privateKey));
    }
    const details = { name, groups, notBefore, notAfter, isCA: true, issuer: '', publicKey: keys.publicKey, curve };
    validateV1As111({ version: 1, publicKey: keys.publicKey, isCA: true, networks });
    return signCert({ ...details, ips: networks.map(prefixToV4Net), subnets: unsafeNetworks.map(prefixToV4Net) }, keys.privateKey).toPem();
  });
  const keyPem =
    passphrase && kdf
      ? wrap('error while encrypting out-key: ', () => encryptSigningKeyPem(curve, keys.privateKey, passphrase, kdf, io.err))
      : marshalSigningPrivateKeyPem(curve, keys.privateKey);
  writeOutput(outKey, keyPem, io.out, 'error while writing out-key: ');
  writeOutput(outCrt, certPem, io.out, 'error while writing out-crt: ');
}

export const caMode: Mode = { summary: 'ca <flags>: create a self signed certificate authority', flags: caFlags, run };
