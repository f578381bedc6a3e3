/**
 * `nebula-cert print` renderings of nebula 1.6.1: NebulaCertificate.String() and MarshalJSON(). JSON keys come out
 * sorted (Go marshals a map) and strings get Go's HTML-safe escaping, so output is byte-identical to Go's. A v2
 * certificate (or our own CertState, through its default certificate) is rendered as 1.11 renders a v2 one. A v1
 * certificate of curve P256 (which 1.6.1 cannot hold) also shows its curve, as 1.7-1.9 print it.
 */
import { CertificateV2View, type Certificate } from './certificate';
import { CertState } from './cert-state';
import { formatNet, goRfc3339, goTimeString } from './format';
import { certV2ToJsonValue, certV2ToText } from './v2/json-v2';

/** The v2 certificate behind `cert`, when it is one. */
function v2Of(cert: Certificate): CertificateV2View | undefined {
  const c = cert instanceof CertState ? cert.default : cert;
  return c instanceof CertificateV2View ? c : undefined;
}

function list(title: string, items: string[]): string {
  if (items.length === 0) return `\t\t${title}: []\n`;
  return `\t\t${title}: [\n${items.map((i) => `\t\t\t${i}\n`).join('')}\t\t]\n`;
}

/** The text block `nebula-cert print` writes (without the trailing newline it adds). */
export function certToText(cert: Certificate): string {
  const v2 = v2Of(cert);
  if (v2) return certV2ToText(v2.v2);
  const d = cert.details;
  return (
    'NebulaCertificate {\n' +
    '\tDetails {\n' +
    `\t\tName: ${d.name}\n` +
    list('Ips', d.ips.map(formatNet)) +
    list('Subnets', d.subnets.map(formatNet)) +
    list('Groups', d.groups.map((g) => `"${g}"`)) +
    `\t\tNot before: ${goTimeString(d.notBefore)}\n` +
    `\t\tNot After: ${goTimeString(d.notAfter)}\n` +
    `\t\tIs CA: ${d.isCA}\n` +
    `\t\tIssuer: ${d.issuer}\n` +
    `\t\tPublic key: ${d.publicKey.toString('hex')}\n` +
    (cert.curve === 'P256' ? '\t\tCurve: P256\n' : '') +
    '\t}\n' +
    `\tFingerprint: ${cert.fingerprint()}\n` +
    `\tSignature: ${cert.signature.toString('hex')}\n` +
    '}'
  );
}

/** The JSON object of `nebula-cert print -json`, as a plain value (keys in Go's sorted order). */
export function certToJsonValue(cert: Certificate): Record<string, unknown> {
  const v2 = v2Of(cert);
  if (v2) return certV2ToJsonValue(v2.v2);
  const d = cert.details;
  return {
    details: {
      ...(cert.curve === 'P256' ? { curve: 'P256' } : {}),
      groups: [...d.groups],
      ips: d.ips.map(formatNet),
      isCa: d.isCA,
      issuer: d.issuer,
      name: d.name,
      notAfter: goRfc3339(d.notAfter),
      notBefore: goRfc3339(d.notBefore),
      publicKey: d.publicKey.toString('hex'),
      subnets: d.subnets.map(formatNet),
    },
    fingerprint: cert.fingerprint(),
    signature: cert.signature.toString('hex'),
  };
}

/** Go's encoding/json escapes <, >, & and U+2028/U+2029 that JSON.stringify leaves alone. */
function goJsonEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line of `nebula-cert print -json` output (without the newline). */
export function certToJson(cert: Certificate): string {
  return goJsonEscape(JSON.stringify(certToJsonValue(cert)));
}
