/**
 * The Details SEQUENCE of a v2 certificate (cert_v2.asn1): its DER form, the decoding rules of nebula 1.11's
 * unmarshalDetails and the checks of certificateV2.validate, with Go's error wording.
 *
 * The signature and the fingerprint cover the Details bytes exactly as received, so a decoded certificate keeps
 * them (rawDetails) and never re-encodes them; `marshalDetailsV2` is only for signing new certificates.
 */
import { malformed } from '../errors';
import { DerError, DerReader, TAG_OCTET_STRING, TAG_UTF8_STRING, derElement, int64Content } from './der';
import {
  comparePrefix,
  formatPrefix,
  is4In6,
  isUnspecified,
  isV4,
  isV6,
  prefixFromBinary,
  prefixToBinary,
  prefixValid,
  type IpPrefix,
} from './prefix';

// Context-specific tags (class bits 0x80, constructed 0x20), as cert_v2.go names them.
export const TAG_CERT_DETAILS = 0xa0;
export const TAG_CERT_CURVE = 0x81;
export const TAG_CERT_PUBLIC_KEY = 0x82;
export const TAG_CERT_SIGNATURE = 0x83;
const TAG_NAME = 0x80;
const TAG_NETWORKS = 0xa1;
const TAG_UNSAFE_NETWORKS = 0xa2;
const TAG_GROUPS = 0xa3;
const TAG_IS_CA = 0x84;
const TAG_NOT_BEFORE = 0x85;
const TAG_NOT_AFTER = 0x86;
const TAG_ISSUER = 0x87;

export const MAX_CERTIFICATE_SIZE = 65536;
export const MAX_NAME_LENGTH = 253;
const MAX_NETWORK_LENGTH = 17;

export interface CertV2Details {
  name: string;
  /** VPN addresses with their network sizes ("10.1.2.3/16", "fd00::1/64"), sorted as Go sorts them. */
  networks: IpPrefix[];
  /** Networks the host may route for (v1's subnets), sorted. */
  unsafeNetworks: IpPrefix[];
  groups: string[];
  isCA: boolean;
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds. */
  notAfter: number;
  /** Lowercase hex fingerprint of the signing CA; '' for a CA. */
  issuer: string;
}

/** The DER Details element (tag 0xa0 included) as nebula's detailsV2.Marshal writes it. */
export function marshalDetailsV2(d: Readonly<CertV2Details>): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(d.issuer)) throw malformed(`failed to decode issuer: ${d.issuer} is not hex`);
  const netList = (tag: number, nets: readonly IpPrefix[]): Buffer[] =>
    nets.length === 0 ? [] : [derElement(tag, ...nets.map((n) => derElement(TAG_OCTET_STRING, prefixToBinary(n))))];
  const parts: Buffer[] = [
    derElement(TAG_NAME, Buffer.from(d.name, 'utf8')),
    ...netList(TAG_NETWORKS, d.networks),
    ...netList(TAG_UNSAFE_NETWORKS, d.unsafeNetworks),
  ];
  if (d.groups.length > 0) parts.push(derElement(TAG_GROUPS, ...d.groups.map((g) => derElement(TAG_UTF8_STRING, Buffer.from(g, 'utf8')))));
  if (d.isCA) parts.push(derElement(TAG_IS_CA, Buffer.from([0xff])));
  parts.push(derElement(TAG_NOT_BEFORE, int64Content(BigInt(d.notBefore))));
  parts.push(derElement(TAG_NOT_AFTER, int64Content(BigInt(d.notAfter))));
  if (d.issuer !== '') parts.push(derElement(TAG_ISSUER, Buffer.from(d.issuer, 'hex')));
  return derElement(TAG_CERT_DETAILS, ...parts);
}

function readNetworks(r: DerReader, tag: number, field: string): IpPrefix[] {
  const list = r.readOptional(tag, field);
  if (list === undefined) return [];
  const items = new DerReader(list, field);
  const out: IpPrefix[] = [];
  while (!items.empty) {
    const val = items.read(TAG_OCTET_STRING, 'entry');
    if (val.length === 0 || val.length > MAX_NETWORK_LENGTH) throw new DerError(`${field}: entry of ${val.length} bytes (1..17 allowed)`);
    const p = prefixFromBinary(val);
    if (!p) throw new DerError(`${field}: entry of ${val.length} bytes is not an IPv4 or IPv6 prefix`);
    out.push(p);
  }
  return out;
}

function toSeconds(v: bigint, what: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new DerError(`${what} ${v} is out of range`);
  return n;
}

/**
 * Decodes the Details element (tag and length included). Unvalidated: `validateDetailsV2` comes next. Fields
 * after the issuer are ignored, as the ASN.1 extension marker and Go allow (the signature still covers them).
 */
export function decodeDetailsV2(element: Buffer): CertV2Details {
  const body = new DerReader(element, 'details').read(TAG_CERT_DETAILS, 'details');
  if (body.length === 0) throw new DerError('details: empty');
  const r = new DerReader(body, 'details');
  const name = r.read(TAG_NAME, 'name');
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) throw new DerError(`details: name of ${name.length} bytes (1..${MAX_NAME_LENGTH} allowed)`);
  const networks = readNetworks(r, TAG_NETWORKS, 'networks');
  const unsafeNetworks = readNetworks(r, TAG_UNSAFE_NETWORKS, 'unsafe networks');
  const groups: string[] = [];
  const groupList = r.readOptional(TAG_GROUPS, 'groups');
  if (groupList !== undefined) {
    const items = new DerReader(groupList, 'groups');
    while (!items.empty) {
      const g = items.read(TAG_UTF8_STRING, 'group');
      if (g.length === 0) throw new DerError('groups: empty group');
      groups.push(g.toString('utf8'));
    }
  }
  const isCA = r.readOptional(TAG_IS_CA, 'isCA');
  if (isCA !== undefined && isCA.length !== 1) throw new DerError(`details: isCA of ${isCA.length} bytes (1 allowed)`);
  const notBefore = toSeconds(r.readInt64(TAG_NOT_BEFORE, 'notBefore'), 'notBefore');
  const notAfter = toSeconds(r.readInt64(TAG_NOT_AFTER, 'notAfter'), 'notAfter');
  const issuer = r.readOptional(TAG_ISSUER, 'issuer') ?? Buffer.alloc(0);
  return {
    name: name.toString('utf8'),
    networks,
    unsafeNetworks,
    groups,
    // Go reads any non-zero byte as true.
    isCA: isCA !== undefined && isCA[0]! > 0,
    notBefore,
    notAfter,
    issuer: issuer.toString('hex'),
  };
}

function sortUnique(nets: readonly IpPrefix[]): IpPrefix[] {
  const sorted = [...nets].sort(comparePrefix);
  for (let i = 1; i < sorted.length; i++) {
    if (comparePrefix(sorted[i]!, sorted[i - 1]!) === 0) throw malformed(`duplicate network detected: ${formatPrefix(sorted[i]!)}`);
  }
  return sorted;
}

/**
 * nebula's certificateV2.validate: returns the details with both network lists sorted (what Go's accessors and
 * print show); throws CertError('malformed') with Go's message for the first rule broken.
 */
export function validateDetailsV2(d: Readonly<CertV2Details>, publicKey: Uint8Array): CertV2Details {
  if (publicKey.length === 0) throw malformed('invalid public key');
  if (!d.isCA && d.networks.length === 0) throw malformed('non-CA certificate must contain at least 1 network');
  let hasV4 = false;
  let hasV6 = false;
  for (const n of d.networks) {
    const text = formatPrefix(n);
    if (!prefixValid(n)) throw malformed(`invalid network: ${text}`);
    // Go applies this one to CAs too, whatever its wording says.
    if (isUnspecified(n)) throw malformed(`non-CA certificates must not use the zero address as a network: ${text}`);
    if (is4In6(n)) throw malformed(`4in6 networks are not allowed: ${text}`);
    hasV4 ||= isV4(n);
    hasV6 ||= isV6(n);
  }
  const networks = sortUnique(d.networks);
  for (const n of d.unsafeNetworks) {
    const text = formatPrefix(n);
    if (!prefixValid(n)) throw malformed(`invalid unsafe network: ${text}`);
    if (!d.isCA && isV6(n) && !hasV6) throw malformed(`IPv6 unsafe networks require an IPv6 address assignment: ${text}`);
    if (!d.isCA && isV4(n) && !hasV4) throw malformed(`IPv4 unsafe networks require an IPv4 address assignment: ${text}`);
  }
  const unsafeNetworks = sortUnique(d.unsafeNetworks);
  return { ...d, networks, unsafeNetworks, groups: [...d.groups] };
}
