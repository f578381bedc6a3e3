/**
 * `sign`: a host certificate signed by a CA, in the CA's certificate version unless -version says otherwise (a v1
 * CA can sign v2 certificates and the reverse, as in nebula-cert 1.11), for a new key pair of the CA's curve or
 * the public key of -in-pub. Reads passphrase-encrypted CA keys. nebula-cert 1.11's sign.go order of checks.
 */
import {
  certV2ToPem,
  checkCAConstraintsV2,
  ENCRYPTED_ECDSA_P256_PRIVATE_BANNER,
  ENCRYPTED_ED25519_PRIVATE_BANNER,
  generateP256KeyPair,
  generateX25519KeyPair,
  isV4,
  marshalPrivateKeyPem,
  pemDecode,
  signCert,
  signCertV2,
  unmarshalPublicKeyPem,
  unmarshalSigningPrivateKeyPem,
  type Curve,
  type IpPrefix,
} from '../shared/pki';
import { readCertFromPem, validateV1As111, type CertView } from './any-cert';
import { decryptSigningKeyPem } from './encrypted-key';
import { CliError, HelpError } from './errors';
import { exists, IoClaims, readInput, writeOutput } from './fileio';
import { FlagSet } from './flags';
import { getPassphrase } from './passphrase';
import { parseGroups, parseNetworkList, prefixToV4Net, withAlias } from './parse-nets';
import { checkVersion, mustFlag, nowPlus, refuseQr, untilMinusOneSecond, wrap, type Mode, type Output } from './commands';

function signFlags(): FlagSet {
  return new FlagSet()
    .uint('version', 0n, 'Optional: version of the certificate format to use. The default is to match the version of the signing CA')
    .string('ca-key', 'ca.key', 'Optional: path to the signing CA key')
    .string('ca-crt', 'ca.crt', 'Optional: path to the signing CA cert')
    .string('name', '', 'Required: name of the cert, usually a hostname')
    .string('networks', '', 'Required: comma separated list of ip address and network in CIDR notation to assign to this cert')
    .string('unsafe-networks', '', 'Optional: comma separated list of ip address and network in CIDR notation. Unsafe networks this cert can route for')
    .duration('duration', 0n, 'Optional: how long the cert should be valid for. The default is 1 second before the signing cert expires. Valid time units are seconds: "s", minutes: "m", hours: "h"')
    .string('in-pub', '', 'Optional (if out-key not set): path to read a previously generated public key')
    .string('out-key', '', 'Optional (if in-pub not set): path to write the private key to')
    .string('out-crt', '', 'Optional: path to write the certificate to')
    .string('out-qr', '', 'Optional: output a qr code image (png) of the certificate')
    .string('groups', '', 'Optional: comma separated list of groups')
    .string('ip', '', 'Deprecated, see -networks')
    .string('subnets', '', 'Deprecated, see -unsafe-networks');
}

/** The CA's signing key; an encrypted one is opened with the passphrase ($NEBULA_CA_PASSPHRASE or a prompt). */
function readCaKey(text: string, io: Output): { curve: Curve; key: Buffer } {
  const banner = pemDecode(text)?.block.type;
  if (banner !== ENCRYPTED_ED25519_PRIVATE_BANNER && banner !== ENCRYPTED_ECDSA_P256_PRIVATE_BANNER) {
    return wrap('error while parsing ca-key: ', () => unmarshalSigningPrivateKeyPem(text));
  }
  const passphrase = getPassphrase(io.err, {
    noTerminal: 'ca-key is encrypted and must be decrypted interactively',
    readError: 'error reading password: ',
    empty: 'cannot open encrypted ca-key without passphrase',
  });
  return wrap('error while parsing encrypted ca-key: ', () => decryptSigningKeyPem(passphrase, text, io.err));
}

interface Tbs {
  name: string;
  networks: IpPrefix[];
  unsafeNetworks: IpPrefix[];
  groups: string[];
  notBefore: number;
  notAfter: number;
  publicKey: Buffer;
  curve: Curve;
}

/** Version 1 (sign.go's case cert.Version1): exactly one IPv4 network, IPv4 unsafe networks; either curve. */
function signV1(tbs: Tbs, ca: CertView, caKey: Buffer): string {
  const v4 = tbs.networks.filter(isV4);
  if (v4.length !== 1) throw new HelpError('invalid -networks definition: v1 certificates can only have a single ipv4 address');
  if (v4.length !== tbs.networks.length) throw new HelpError('invalid -networks definition: v1 certificates can only contain ipv4 addresses');
  if (!tbs.unsafeNetworks.every(isV4)) throw new HelpError('invalid -unsafe-networks definition: v1 certificates can only contain ipv4 addresses');
  return wrap('error while signing: ', () => {
    const fields = { ...tbs, networks: v4 };
    checkCAConstraintsV2(ca, fields);
    validateV1As111({ version: 1, publicKey: tbs.publicKey, isCA: false, networks: v4 });
    const { name, groups, notBefore, notAfter, publicKey, curve } = tbs;
    const details = { name, groups, notBefore, notAfter, publicKey, curve, isCA: false, issuer: ca.fingerprint() };
    return signCert({ ...details, ips: v4.map(prefixToV4Net), subnets: tbs.unsafeNetworks.map(prefixToV4Net) }, caKey).toPem();
  });
}

function signV2(tbs: Tbs, ca: CertView, caKey: Buffer): string {
  return wrap('error while signing: ', () =>
    certV2ToPem(signCertV2({ ...tbs, isCA: false }, { fingerprint: () => ca.fingerprint(), details: ca }, tbs.curve, caKey)),
  );
}

function run(args: string[], io: Output): void {
  const f = signFlags().parse(args);
  const caKeyPath = mustFlag(f, 'ca-key');
  const caCrtPath = mustFlag(f, 'ca-crt');
  const name = mustFlag(f, 'name');
  const inPub = f.getString('in-pub');
  if (inPub !== '' && f.getString('out-key') !== '') throw new HelpError('cannot set both -in-pub and -out-key');
  const networksText = withAlias(f.getString('networks'), f.getString('ip'));
  if (networksText === '') throw new HelpError('-networks is required');
  let version = checkVersion(f.getUint('version'), true);
  const outKey = f.getString('out-key') || `${name}.key`;
  const outCrt = f.getString('out-crt') || `${name}.crt`;
  refuseQr(f);
  const claims = new IoClaims()
    .reserveInputs(['ca-key', caKeyPath], ['ca-crt', caCrtPath], ['in-pub', inPub])
    .reserveOutputs(['out-key', outKey], ['out-crt', outCrt]);

  const { curve, key: caKey } = readCaKey(readInput('ca-key', caKeyPath, claims, 'error while reading ca-key: '), io);
  const caText = readInput('ca-crt', caCrtPath, claims, 'error while reading ca-crt: ');
  const ca = wrap('error while parsing ca-crt: ', () => readCertFromPem(caText).view);
  try {
    ca.verifyPrivateKey(curve, caKey);
  } catch {
    throw new CliError('refusing to sign, root certificate does not match private key');
  }
  const nowMs = Date.now();
  if (ca.expired(new Date(nowMs))) throw new CliError('ca certificate is expired');
  if (version === 0) version = ca.version;
  let duration = f.getDuration('duration');
  if (duration <= 0n) duration = untilMinusOneSecond(nowMs, ca.notAfter);
  const networks = parseNetworkList(networksText, 'networks');
  const unsafeNetworks = parseNetworkList(withAlias(f.getString('unsafe-networks'), f.getString('subnets')), 'unsafe-networks');
  const groups = parseGroups(f.getString('groups'));

  let publicKey: Buffer;
  let privateKey: Buffer | undefined;
  if (inPub !== '') {
    const text = readInput('in-pub', inPub, claims, 'error while reading in-pub: ');
    const pub = wrap('error while parsing in-pub: ', () => unmarshalPublicKeyPem(text));
    if (pub.curve !== curve) throw new CliError('curve of in-pub does not match ca');
    publicKey = pub.key;
  } else {
    ({ publicKey, privateKey } = curve === 'P256' ? generateP256KeyPair() : generateX25519KeyPair());
  }
  if (exists(outCrt)) throw new CliError(`refusing to overwrite existing cert: ${outCrt}`);

  const tbs: Tbs = { name, networks, unsafeNetworks, groups, notBefore: Math.floor(nowMs / 1000), notAfter: nowPlus(nowMs, duration), publicKey, curve };
  const certPem = version === 1 ? signV1(tbs, ca, caKey) : signV2(tbs, ca, caKey);
  if (privateKey) {
    if (exists(outKey)) throw new CliError(`refusing to overwrite existing key: ${outKey}`);
    writeOutput(outKey, marshalPrivateKeyPem(curve, privateKey), io.out, 'error while writing out-key: ');
  }
  writeOutput(outCrt, certPem, io.out, 'error while writing out-crt: ');
}

export const signMode: Mode = { summary: 'sign <flags>: create and sign a certificate', flags: signFlags, run };
