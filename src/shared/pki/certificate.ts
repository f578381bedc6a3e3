/**
 * "A certificate" as the node uses one, whatever its version (nebula 1.11's cert.Certificate interface, narrowed to
 * what nebula-ts reads): the v1 NebulaCertificate satisfies it directly, a v2 certificate through CertificateV2View.
 *
 * Consumers (host map, firewall identity, DNS, console, liveness checks) read `details` in v1's shape: the IPv4
 * networks as `ips`, the IPv4 unsafe networks as `subnets`. The overlay is IPv4 for now, so a v2 certificate's first
 * IPv4 network is its VPN address, and its IPv6 networks are only visible in `networks` / `unsafeNetworks`.
 */
import { CertError } from './errors';
import { unmarshalCertFromPem, type CertDetails } from './cert';
import { pemDecode } from './pem';
import { CERT_V2_BANNER, certV2ToPem } from './v2/pem-v2';
import { unmarshalCertV2, type Curve, type NebulaCertificateV2 } from './v2/cert-v2';
import { isV4, type IpPrefix } from './v2/prefix';
import { maskFromPrefix, type IPv4Net } from '../util/ipv4';

export type CertVersion = 1 | 2;

export interface Certificate {
  readonly version: CertVersion;
  readonly curve: Curve;
  /** v1's shape: name, IPv4 networks (`ips`), IPv4 unsafe networks (`subnets`), groups, validity, key, isCA, issuer. */
  readonly details: Readonly<CertDetails>;
  /** Every network of the certificate (IPv4 and IPv6), host bits kept, in the certificate's order. */
  readonly networks: readonly IpPrefix[];
  readonly unsafeNetworks: readonly IpPrefix[];
  readonly signature: Buffer;
  /** The VPN address: the first IPv4 network's address; undefined when the certificate has none. */
  readonly vpnIp: number | undefined;
  /** Lowercase hex SHA-256, as Go computes it for this version. */
  fingerprint(): string;
  /** The fingerprint of the other P256 signature form ('' for CURVE25519): a blocklist must hold both. */
  alternateFingerprint(): string;
  expired(now?: Date | number): boolean;
  checkSignature(signerKey: Uint8Array): boolean;
  /** The form sent in a handshake (no public key; Go's MarshalForHandshakes). */
  marshalForHandshake(): Buffer;
  toPem(): string;
}

function prefixToV1Net(p: IpPrefix): IPv4Net {
  return { ip: p.addr.readUInt32BE(0), mask: maskFromPrefix(p.bits) };
}

/** A v2 certificate seen through the Certificate interface. */
export class CertificateV2View implements Certificate {
  readonly version = 2;
  readonly details: Readonly<CertDetails>;

  constructor(readonly v2: NebulaCertificateV2) {
    const d = v2.details;
    this.details = {
      name: d.name,
      ips: d.networks.filter(isV4).map(prefixToV1Net),
      subnets: d.unsafeNetworks.filter(isV4).map(prefixToV1Net),
      groups: d.groups,
      notBefore: d.notBefore,
      notAfter: d.notAfter,
      publicKey: v2.publicKey,
      isCA: d.isCA,
      issuer: d.issuer,
      ...(v2.curve === 'P256' ? { curve: v2.curve } : {}),
    };
  }

  get curve(): Curve {
    return this.v2.curve;
  }

  get networks(): readonly IpPrefix[] {
    return this.v2.details.networks;
  }

  get unsafeNetworks(): readonly IpPrefix[] {
    return this.v2.details.unsafeNetworks;
  }

  get signature(): Buffer {
    return this.v2.signature;
  }

  get vpnIp(): number | undefined {
    return this.details.ips[0]?.ip;
  }

  fingerprint(): string {
    return this.v2.fingerprint();
  }

  alternateFingerprint(): string {
    return this.v2.alternateFingerprint();
  }

  expired(now: Date | number = new Date()): boolean {
    return this.v2.expired(now);
  }

  checkSignature(signerKey: Uint8Array): boolean {
    return this.v2.checkSignature(signerKey);
  }

  marshalForHandshake(): Buffer {
    return this.v2.marshalForHandshake();
  }

  toPem(): string {
    return certV2ToPem(this.v2);
  }
}

/** Throws unless `cert` has an IPv4 network: the overlay nebula-ts runs is IPv4 only (an IPv6 overlay is not yet). */
export function requireIPv4Network(cert: Certificate): void {
  if (cert.vpnIp !== undefined) return;
  throw new CertError('no-ip', 'certificate has no IPv4 network (nebula-ts runs an IPv4 overlay only; an IPv6-only certificate is not supported)');
}

/**
 * The first PEM block of `text` as a certificate of either version, by its banner (Go 1.11's
 * UnmarshalCertificateFromPEM); returns the text after it. Anything but a v2 banner is read as v1, with v1's errors.
 */
export function unmarshalCertificateFromPem(text: string): { cert: Certificate; rest: string } {
  const block = pemDecode(text);
  if (block?.block.type === CERT_V2_BANNER) return { cert: new CertificateV2View(unmarshalCertV2(block.block.bytes)), rest: block.rest };
  return unmarshalCertFromPem(text);
}
