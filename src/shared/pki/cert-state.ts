/**
 * The node's own certificates (Go 1.11's CertState, pki.go): a v1 and/or a v2 certificate for one key. When both are
 * present they must share the public key, the curve and the first network, as Go requires; `initiatingVersion`
 * (`pki.initiating_version`: 1 when a v1 certificate exists, else 2) picks the one sent in the handshakes we start,
 * and a responder answers in the initiator's version when it holds a certificate of that version.
 *
 * It reads as its default certificate (the initiating version's, Go's GetDefaultCertificate), so code that wants "our
 * certificate" (the VPN address, print-cert, logs) needs to know nothing of versions.
 */
import { CertError } from './errors';
import type { CertDetails } from './cert';
import type { Certificate, CertVersion } from './certificate';
import type { Curve } from './v2/cert-v2';
import { comparePrefix, formatPrefix, type IpPrefix } from './v2/prefix';

export class CertState implements Certificate {
  readonly initiatingVersion: CertVersion;

  /**
   * Throws CertError when the certificates do not belong together or `initiatingVersion` names a version without a
   * certificate (Go's wording).
   */
  constructor(
    readonly v1: Certificate | undefined,
    readonly v2: Certificate | undefined,
    initiatingVersion?: number,
  ) {
    if (!v1 && !v2) throw new CertError('malformed', 'no certificates found in pki.cert');
    if (v1 && v2) {
      if (!v1.details.publicKey.equals(v2.details.publicKey)) throw new CertError('key-mismatch', 'v1 and v2 public keys are not the same');
      if (v1.curve !== v2.curve) throw new CertError('key-mismatch', 'v1 and v2 curve are not the same');
      const [a, b] = [v1.networks[0], v2.networks[0]];
      if (!a || !b || comparePrefix(a, b) !== 0) {
        throw new CertError('malformed', `v1 and v2 networks are not the same (${a ? formatPrefix(a) : 'none'} and ${b ? formatPrefix(b) : 'none'})`);
      }
    }
    const version = initiatingVersion ?? (v1 ? 1 : 2);
    if (version !== 1 && version !== 2) throw new CertError('malformed', `unknown pki.initiating_version: ${version}`);
    if (version === 1 && !v1) throw new CertError('malformed', 'can not use pki.initiating_version 1 without a v1 certificate in pki.cert');
    // Go takes 2 without a v2 certificate silently and initiates with the v1 one.
    this.initiatingVersion = version === 2 && !v2 ? 1 : version;
  }

  /** The certificate handshakes we initiate carry (Go's GetDefaultCertificate). */
  get default(): Certificate {
    return (this.initiatingVersion === 1 ? this.v1 : this.v2)!;
  }

  /** Our certificate of `version`, if we hold one. */
  forVersion(version: number): Certificate | undefined {
    if (version === 1) return this.v1;
    if (version === 2) return this.v2;
    return undefined;
  }

  /** Every certificate we hold, v1 first. */
  all(): Certificate[] {
    return [this.v1, this.v2].filter((c): c is Certificate => c !== undefined);
  }

  /** Our VPN networks, both families: the v2 certificate's when we hold one (a superset of v1's), as Go takes them. */
  get myNetworks(): readonly IpPrefix[] {
    return (this.v2 ?? this.v1)!.networks;
  }

  // Certificate, read from the default certificate.
  get version(): CertVersion {
    return this.default.version;
  }
  get curve(): Curve {
    return this.default.curve;
  }
  get details(): Readonly<CertDetails> {
    return this.default.details;
  }
  get networks(): readonly IpPrefix[] {
    return this.default.networks;
  }
  get unsafeNetworks(): readonly IpPrefix[] {
    return this.default.unsafeNetworks;
  }
  get signature(): Buffer {
    return this.default.signature;
  }
  get vpnIp(): number | undefined {
    return this.default.vpnIp;
  }
  fingerprint(): string {
    return this.default.fingerprint();
  }
  alternateFingerprint(): string {
    return this.default.alternateFingerprint();
  }
  expired(now?: Date | number): boolean {
    return this.default.expired(now);
  }
  checkSignature(signerKey: Uint8Array): boolean {
    return this.default.checkSignature(signerKey);
  }
  marshalForHandshake(): Buffer {
    return this.default.marshalForHandshake();
  }
  toPem(): string {
    return this.default.toPem();
  }
}

/** Our certificate for a handshake in `version`: a CertState's of that version, else its default; a lone cert as is. */
export function ownCertFor(cert: Certificate, version: number): Certificate {
  return cert instanceof CertState ? (cert.forVersion(version) ?? cert.default) : cert;
}

/** Our VPN networks (both families) for the checks on a peer's networks. */
export function ownNetworks(cert: Certificate): readonly IpPrefix[] {
  return cert instanceof CertState ? cert.myNetworks : cert.networks;
}
