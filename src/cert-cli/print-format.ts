/**
 * What `nebula-cert print` 1.11 writes: each certificate's String() (its JSON indented with tabs) followed by a
 * newline, or with -json one JSON array of every certificate on one line. v2 certificates use the v2 module's
 * renderings; v1 certificates get 1.11's v1 layout here, which differs from 1.6.1's ("networks" and
 * "unsafeNetworks" instead of "ips" and "subnets", plus "curve" and "version"; empty lists stay []).
 */
import { certV2ToJsonValue, formatPrefix, goRfc3339, NebulaCertificateV2, type NebulaCertificate } from '../shared/pki';
import { viewOf, type AnyCert } from './any-cert';

/** certificateV1.marshalJSON of nebula 1.11, keys in the order Go's map marshalling sorts them. */
export function certV1ToJsonValue111(cert: NebulaCertificate): Record<string, unknown> {
  const v = viewOf(cert);
  return {
    details: {
      curve: v.curve,
      groups: [...v.groups],
      isCa: v.isCA,
      issuer: v.issuer,
      name: v.name,
      networks: v.networks.map(formatPrefix),
      notAfter: goRfc3339(v.notAfter),
      notBefore: goRfc3339(v.notBefore),
      publicKey: v.publicKey.toString('hex'),
      unsafeNetworks: v.unsafeNetworks.map(formatPrefix),
    },
    fingerprint: v.fingerprint(),
    signature: cert.signature.toString('hex'),
    version: 1,
  };
}

function jsonValue(cert: AnyCert): Record<string, unknown> {
  return cert instanceof NebulaCertificateV2 ? certV2ToJsonValue(cert) : certV1ToJsonValue111(cert);
}

/** Go's encoding/json escapes <, >, & and U+2028/U+2029, which JSON.stringify leaves alone. */
function goJsonEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One certificate as `nebula-cert print` shows it: json.MarshalIndent(..., "", "\t") plus a newline. */
export function certToText111(cert: AnyCert): string {
  return goJsonEscape(JSON.stringify(jsonValue(cert), null, '\t')) + '\n';
}

/** `nebula-cert print -json`: json.Marshal of the list of certificates, plus a newline. */
export function certsToJson111(certs: readonly AnyCert[]): string {
  return goJsonEscape(JSON.stringify(certs.map(jsonValue))) + '\n';
}
