/** The committed nebula-cert 1.11.0 fixtures (test/fixtures/pki-v2) and what their `print -json` says. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { unmarshalCertV2FromPem, type NebulaCertificateV2 } from '../../../src/shared/pki';

export const FIXTURE_DIR = path.resolve(__dirname, '..', '..', 'fixtures', 'pki-v2');

/** Every single-certificate v2 fixture. */
export const V2_CERTS = [
  'ca-25519',
  'ca-restricted',
  'ca-p256',
  'host-v4',
  'host-v6',
  'host-dual',
  'host-multi',
  'host-escape',
  'host-restricted',
  'host-p256',
] as const;
export type V2Fixture = (typeof V2_CERTS)[number];

/** The CA each host fixture was signed by. */
export const SIGNER: Partial<Record<V2Fixture, V2Fixture>> = {
  'host-v4': 'ca-25519',
  'host-v6': 'ca-25519',
  'host-dual': 'ca-25519',
  'host-multi': 'ca-25519',
  'host-escape': 'ca-25519',
  'host-restricted': 'ca-restricted',
  'host-p256': 'ca-p256',
};

export function fixtureText(file: string): string {
  return readFileSync(path.join(FIXTURE_DIR, file), 'utf8');
}

export function fixtureCert(name: V2Fixture): NebulaCertificateV2 {
  return unmarshalCertV2FromPem(fixtureText(`${name}.crt`)).cert;
}

export interface GoCertJson {
  curve: string;
  details: Record<string, unknown>;
  fingerprint: string;
  publicKey: string;
  signature: string;
  version: number;
}

/** `nebula-cert print -json` of a fixture: one array of certificates. */
export function fixtureJson(name: string): GoCertJson[] {
  return JSON.parse(fixtureText(`${name}.json`)) as GoCertJson[];
}
