/** Fresh certificates for a demo or test mesh, made with our own PKI code (no nebula-cert needed). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  generateEd25519KeyPair,
  generateX25519KeyPair,
  marshalX25519PrivateKey,
  signCert,
  type NebulaCertificate,
} from '../shared/pki';
import { parseCidr } from '../shared/util/ipv4';

export interface CertFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface MeshCA {
  cert: NebulaCertificate;
  privateKey: Buffer;
  caPath: string;
}

export function makeCA(dir: string, name = 'nebula-ts demo CA', validSeconds = 24 * 3600, notBefore?: number): MeshCA {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const kp = generateEd25519KeyPair();
  const now = Math.floor(Date.now() / 1000);
  const cert = signCert(
    { name, ips: [], subnets: [], groups: [], notBefore: notBefore ?? now - 60, notAfter: now + validSeconds, publicKey: kp.publicKey, isCA: true, issuer: '' },
    kp.privateKey,
  );
  const caPath = path.join(dir, `${safe(name)}.ca.crt`);
  writeFileSync(caPath, cert.toPem(), { mode: 0o600 });
  return { cert, privateKey: kp.privateKey, caPath };
}

export interface HostCertOptions {
  name: string;
  /** "10.42.0.1/24" */
  ip: string;
  groups?: string[];
  subnets?: string[];
  notBefore?: number;
  notAfter?: number;
}

export function makeHostCert(dir: string, ca: MeshCA, opts: HostCertOptions): CertFiles & { cert: string; certObj: NebulaCertificate } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const kp = generateX25519KeyPair();
  const net = parseCidr(opts.ip);
  if (!net) throw new Error(`bad ip ${opts.ip}`);
  const now = Math.floor(Date.now() / 1000);
  const cert = signCert(
    {
      name: opts.name,
      ips: [net],
      subnets: (opts.subnets ?? []).map((s) => parseCidr(s)!),
      groups: opts.groups ?? [],
      notBefore: opts.notBefore ?? now - 30,
      notAfter: opts.notAfter ?? ca.cert.details.notAfter - 1,
      publicKey: kp.publicKey,
      isCA: false,
      issuer: ca.cert.fingerprint(),
    },
    ca.privateKey,
  );
  const certPath = path.join(dir, `${safe(opts.name)}.crt`);
  const keyPath = path.join(dir, `${safe(opts.name)}.key`);
  writeFileSync(certPath, cert.toPem(), { mode: 0o600 });
  writeFileSync(keyPath, marshalX25519PrivateKey(kp.privateKey), { mode: 0o600 });
  return { ca: ca.caPath, cert: certPath, key: keyPath, certObj: cert };
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}
