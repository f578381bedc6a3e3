/**
 * The five nebula-cert 1.6.1 modes. Each follows the Go command's order of checks so the first error reported for
 * a given bad invocation is the same one nebula-cert reports.
 */
import {
  CAPool,
  CertError,
  checkRootConstraints,
  certToJson,
  certToText,
  generateEd25519KeyPair,
  generateX25519KeyPair,
  marshalEd25519PrivateKey,
  marshalX25519PrivateKey,
  marshalX25519PublicKey,
  signCert,
  unmarshalCertFromPem,
  unmarshalEd25519PrivateKey,
  unmarshalX25519PublicKey,
  verifyPrivateKey,
  type CertDetails,
} from '../shared/pki';
import { CliError, HelpError } from './errors';
import { exists, readText, writeNew } from './fileio';
import { FlagSet } from './flags';
import { parseCidrFlag, parseCidrList, parseGroups } from './parse-nets';

export interface Output {
  out: (text: string) => void;
}

const HOUR_NS = 3_600_000_000_000n;
const NS_PER_S = 1_000_000_000n;

function mustFlag(flags: FlagSet, name: string): string {
  const v = flags.getString(name);
  if (v === '') throw new HelpError(`-${name} is required`);
  return v;
}

/** QR output needs a QR/PNG encoder, which this drop-in deliberately does not carry. */
function refuseQr(flags: FlagSet): void {
  if (flags.getString('out-qr') !== '') throw new CliError('-out-qr is not supported by nebula-ts-cert');
}

/** Turns a library error into the CLI's message with nebula-cert's context prefix. */
function wrap<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CertError) throw new CliError(`${prefix}${err.message}`);
    throw err;
  }
}

/** Go: NotAfter = time.Now().Add(d) marshalled as Unix seconds (floor). */
function nowPlus(nowMs: number, durationNs: bigint): number {
  const ns = BigInt(nowMs) * 1_000_000n + durationNs;
  const q = ns / NS_PER_S;
  return Number(ns < 0n && q * NS_PER_S !== ns ? q - 1n : q);
}

export function caMode(args: string[]): void {
  const f = new FlagSet()
    .string('name')
    .duration('duration', 8760n * HOUR_NS)
    .string('groups')
    .string('ips')
    .string('subnets')
    .string('out-crt', 'ca.crt')
    .string('out-key', 'ca.key')
    .string('out-qr')
    .parse(args);
  const name = mustFlag(f, 'name');
  mustFlag(f, 'out-key');
  mustFlag(f, 'out-crt');
  const duration = f.getDuration('duration');
  if (duration <= 0n) throw new HelpError('-duration must be greater than 0');
  const groups = parseGroups(f.getString('groups'));
  const ips = parseCidrList(f.getString('ips'), 'ip', true);
  const subnets = parseCidrList(f.getString('subnets'), 'subnet', false);
  refuseQr(f);

  const keys = generateEd25519KeyPair();
  const nowMs = Date.now();
  const details: CertDetails = {
    name,
    groups,
    ips,
    subnets,
    notBefore: Math.floor(nowMs / 1000),
    notAfter: nowPlus(nowMs, duration),
    publicKey: keys.publicKey,
    isCA: true,
    issuer: '',
  };
  const outKey = f.getString('out-key');
  const outCrt = f.getString('out-crt');
  if (exists(outKey)) throw new CliError(`refusing to overwrite existing CA key: ${outKey}`);
  if (exists(outCrt)) throw new CliError(`refusing to overwrite existing CA cert: ${outCrt}`);
  const cert = signCert(details, keys.privateKey);
  writeNew(outKey, marshalEd25519PrivateKey(keys.privateKey), 'error while writing out-key: ');
  writeNew(outCrt, cert.toPem(), 'error while writing out-crt: ');
}

export function keygenMode(args: string[]): void {
  const f = new FlagSet().string('out-key').string('out-pub').parse(args);
  const outKey = mustFlag(f, 'out-key');
  const outPub = mustFlag(f, 'out-pub');
  // nebula-cert 1.6.1 would overwrite here; refusing is safer and consistent with ca/sign.
  if (exists(outKey)) throw new CliError(`refusing to overwrite existing key: ${outKey}`);
  if (exists(outPub)) throw new CliError(`refusing to overwrite existing public key: ${outPub}`);
  const keys = generateX25519KeyPair();
  writeNew(outKey, marshalX25519PrivateKey(keys.privateKey), 'error while writing out-key: ');
  writeNew(outPub, marshalX25519PublicKey(keys.publicKey), 'error while writing out-pub: ');
}

export function signMode(args: string[]): void {
  const f = new FlagSet()
    .string('ca-key', 'ca.key')
    .string('ca-crt', 'ca.crt')
    .string('name')
    .string('ip')
    .duration('duration', 0n)
    .string('in-pub')
    .string('out-key')
    .string('out-crt')
    .string('out-qr')
    .string('groups')
    .string('subnets')
    .parse(args);
  const caKeyPath = mustFlag(f, 'ca-key');
  const caCrtPath = mustFlag(f, 'ca-crt');
  const name = mustFlag(f, 'name');
  const ipText = mustFlag(f, 'ip');
  const inPub = f.getString('in-pub');
  if (inPub !== '' && f.getString('out-key') !== '') throw new HelpError('cannot set both -in-pub and -out-key');
  refuseQr(f);

  const caKey = wrap('error while parsing ca-key: ', () =>
    unmarshalEd25519PrivateKey(readText(caKeyPath, 'error while reading ca-key: ')).key,
  );
  const caCert = wrap('error while parsing ca-crt: ', () =>
    unmarshalCertFromPem(readText(caCrtPath, 'error while reading ca-crt: ')).cert,
  );
  try {
    verifyPrivateKey(caCert, caKey);
  } catch {
    throw new CliError('refusing to sign, root certificate does not match private key');
  }
  const issuer = caCert.fingerprint();
  const nowMs = Date.now();
  if (caCert.expired(Math.floor(nowMs / 1000))) throw new CliError('ca certificate is expired');

  let duration = f.getDuration('duration');
  // Default: expire one second before the CA does.
  if (duration <= 0n) duration = BigInt(caCert.details.notAfter) * NS_PER_S - BigInt(nowMs) * 1_000_000n - NS_PER_S;

  const ip = parseCidrFlag(ipText, 'ip', true);
  const groups = parseGroups(f.getString('groups'));
  const subnets = parseCidrList(f.getString('subnets'), 'subnet', false);

  let publicKey: Buffer;
  let privateKey: Buffer | undefined;
  if (inPub !== '') {
    publicKey = wrap('error while parsing in-pub: ', () => unmarshalX25519PublicKey(readText(inPub, 'error while reading in-pub: ')).key);
  } else {
    const keys = generateX25519KeyPair();
    publicKey = keys.publicKey;
    privateKey = keys.privateKey;
  }

  const details: CertDetails = {
    name,
    ips: [ip],
    groups,
    subnets,
    notBefore: Math.floor(nowMs / 1000),
    notAfter: nowPlus(nowMs, duration),
    publicKey,
    isCA: false,
    issuer,
  };
  wrap('refusing to sign, root certificate constraints violated: ', () => checkRootConstraints({ details }, caCert));

  const outKey = f.getString('out-key') || `${name}.key`;
  const outCrt = f.getString('out-crt') || `${name}.crt`;
  if (exists(outCrt)) throw new CliError(`refusing to overwrite existing cert: ${outCrt}`);
  const cert = signCert(details, caKey);
  if (privateKey) {
    if (exists(outKey)) throw new CliError(`refusing to overwrite existing key: ${outKey}`);
    writeNew(outKey, marshalX25519PrivateKey(privateKey), 'error while writing out-key: ');
  }
  writeNew(outCrt, cert.toPem(), 'error while writing out-crt: ');
}

export function printMode(args: string[], io: Output): void {
  const f = new FlagSet().bool('json').string('out-qr').string('path').parse(args);
  const path = mustFlag(f, 'path');
  refuseQr(f);
  let rest = readText(path, 'unable to read cert; ');
  const json = f.getBool('json');
  // Each certificate is printed as soon as it is parsed, so a bad block after good ones fails like Go's loop.
  do {
    const r = wrap('error while unmarshaling cert: ', () => unmarshalCertFromPem(rest));
    io.out((json ? certToJson(r.cert) : certToText(r.cert)) + '\n');
    rest = r.rest;
  } while (rest.trim() !== '');
}

export function verifyMode(args: string[]): void {
  const f = new FlagSet().string('ca').string('crt').parse(args);
  const caPath = mustFlag(f, 'ca');
  const crtPath = mustFlag(f, 'crt');
  const pool = new CAPool();
  const now = new Date();
  let rest = readText(caPath, 'error while reading ca: ');
  do {
    const r = wrap('error while adding ca cert to pool: ', () => pool.addCAFromPem(rest, now));
    // Go's AddCACertificate reports an expired CA as an error, which verify treats as fatal.
    if (r.expired) throw new CliError(`error while adding ca cert to pool: ${r.cert.details.name}: certificate is expired`);
    rest = r.rest;
  } while (rest.trim() !== '');
  const cert = wrap('error while parsing crt: ', () => unmarshalCertFromPem(readText(crtPath, 'unable to read crt; ')).cert);
  wrap('', () => pool.verify(cert, now));
}
