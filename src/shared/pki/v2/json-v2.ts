/**
 * nebula 1.11's renderings of a v2 certificate: MarshalJSON (one object; `nebula-cert print -json` writes a JSON
 * array of them) and String() (the same object indented with tabs, what `nebula-cert print` writes). Keys come out
 * sorted as Go marshals its map, empty lists are null (Go's nil slices after decoding), times are RFC 3339 in the
 * local zone and strings get Go's HTML-safe escaping.
 */
import { goRfc3339 } from '../format';
import type { NebulaCertificateV2 } from './cert-v2';
import { formatPrefix, type IpPrefix } from './prefix';

const listOrNull = <T>(items: readonly T[]): T[] | null => (items.length === 0 ? null : [...items]);
const nets = (items: readonly IpPrefix[]): string[] | null => listOrNull(items.map(formatPrefix));

/** The JSON object, as a plain value with keys in Go's order. */
export function certV2ToJsonValue(cert: NebulaCertificateV2): Record<string, unknown> {
  const d = cert.details;
  return {
    curve: cert.curve,
    details: {
      groups: listOrNull(d.groups),
      isCa: d.isCA,
      issuer: d.issuer,
      name: d.name,
      networks: nets(d.networks),
      notAfter: goRfc3339(d.notAfter),
      notBefore: goRfc3339(d.notBefore),
      unsafeNetworks: nets(d.unsafeNetworks),
    },
    fingerprint: cert.fingerprint(),
    publicKey: cert.publicKey.toString('hex'),
    signature: cert.signature.toString('hex'),
    version: 2,
  };
}

/** Go's encoding/json escapes <, >, & and U+2028/U+2029, which JSON.stringify leaves alone. */
function goJsonEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's json.Marshal of one certificate (no newline). */
export function certV2ToJson(cert: NebulaCertificateV2): string {
  return goJsonEscape(JSON.stringify(certV2ToJsonValue(cert)));
}

/** Go's String(): json.MarshalIndent with a tab (no trailing newline; `nebula-cert print` adds one). */
export function certV2ToText(cert: NebulaCertificateV2): string {
  return goJsonEscape(JSON.stringify(certV2ToJsonValue(cert), null, '\t'));
}
