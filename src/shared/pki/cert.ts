/**
 * The v1 Nebula certificate (nebula-spec §4.1-4.3): CURVE25519 as in nebula 1.6.1, or P256 (field 100, nebula
 * 1.7+). The wire form is cert-v1-wire.ts's, the signature algorithms cert-v1-crypto.ts's; this module is the
 * certificate itself, signing, and reading it from bytes, handshakes and PEM.
 */
import { createHash } from 'node:crypto';
import { prefixFromMask, type IPv4Net } from '../util/ipv4';
import type { Certificate } from './certificate';
import { CertError, malformed } from './errors';
import { checkV1PrivateKey, otherSignatureForm, signV1Details, verifyV1Details } from './cert-v1-crypto';
import { decodeRawCert, detailsFromRaw, marshalDetails, marshalRawCert, type CertDetails } from './cert-v1-wire';
import { CERT_BANNER, pemDecodeExpect, pemEncode } from './pem';
import type { Curve } from './v2/cert-v2';
import type { IpPrefix } from './v2/prefix';

export { PUBLIC_KEY_LEN, marshalDetails, type CertDetails } from './cert-v1-wire';

export class NebulaCertificate implements Certificate {
  readonly version = 1;
  private cachedFingerprint: string | undefined;

  constructor(
    readonly details: Readonly<CertDetails>,
    readonly signature: Buffer,
  ) {}

  /** The curve of field 100: CURVE25519 unless the details say P256. */
  get curve(): Curve {
    return this.details.curve ?? 'CURVE25519';
  }

  /** Canonical bytes of the full RawNebulaCertificate (what PEM holds and what the fingerprint hashes). */
  marshal(): Buffer {
    return marshalRawCert(marshalDetails(this.details), this.signature);
  }

  /** Lowercase hex SHA-256 of the canonical full encoding (Go's Sha256Sum / Fingerprint). */
  fingerprint(): string {
    this.cachedFingerprint ??= sha256Hex(this.marshal());
    return this.cachedFingerprint;
  }

  /**
   * The fingerprint of this certificate with the other form of its P256 signature (1.11's
   * CalculateAlternateFingerprint); '' for CURVE25519. Throws CertError when the signature is not well-formed ECDSA.
   */
  alternateFingerprint(): string {
    if (this.curve !== 'P256') return '';
    return sha256Hex(marshalRawCert(marshalDetails(this.details), otherSignatureForm(this.signature)));
  }

  toPem(): string {
    return pemEncode(CERT_BANNER, this.marshal());
  }

  /** Go's Expired: valid from NotBefore to NotAfter inclusive. `now` is a Date or Unix seconds. */
  expired(now: Date | number = new Date()): boolean {
    const t = toUnixSeconds(now);
    return this.details.notBefore > t || this.details.notAfter < t;
  }

  /** The signature over the canonical details bytes, checked with `signerKey` by this certificate's curve. */
  checkSignature(signerKey: Uint8Array): boolean {
    return verifyV1Details(this.curve, signerKey, marshalDetails(this.details), this.signature);
  }

  /** Go's VerifyPrivateKey: throws CertError('key-mismatch') unless `privateKey` (of `curve`) pairs with the key. */
  verifyPrivateKey(curve: Curve, privateKey: Buffer): void {
    checkV1PrivateKey({ curve: this.curve, isCA: this.details.isCA, publicKey: this.details.publicKey }, curve, privateKey);
  }

  /** The first IP is the node's VPN address. */
  get vpnIp(): number | undefined {
    return this.details.ips[0]?.ip;
  }

  get networks(): IpPrefix[] {
    return this.details.ips.map(v1NetToPrefix);
  }

  get unsafeNetworks(): IpPrefix[] {
    return this.details.subnets.map(v1NetToPrefix);
  }

  marshalForHandshake(): Buffer {
    return marshalCertForHandshake(this);
  }
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A v1 network as 1.11 reads it (netip.PrefixFrom(ip, ones); a non-contiguous mask counts as 0 bits). */
export function v1NetToPrefix(net: IPv4Net): IpPrefix {
  const addr = Buffer.alloc(4);
  addr.writeUInt32BE(net.ip >>> 0, 0);
  return { addr, bits: prefixFromMask(net.mask) ?? 0 };
}

export function toUnixSeconds(now: Date | number): number {
  return typeof now === 'number' ? now : Math.floor(now.getTime() / 1000);
}

/** The certificate as sent in a handshake: RawNebulaCertificate with Details.PublicKey (field 7) omitted. */
export function marshalCertForHandshake(cert: NebulaCertificate): Buffer {
  return marshalRawCert(marshalDetails(cert.details, false), cert.signature);
}

/**
 * Signs `details` with the CA's private key, by `details.curve`: a 64-byte Go-style Ed25519 key for CURVE25519, a
 * 32-byte P256 scalar for P256 (signed low-s, as nebula 1.11 signs). Throws CertError on a key of the wrong shape.
 */
export function signCert(details: CertDetails, caPrivateKey: Uint8Array): NebulaCertificate {
  const copy: CertDetails = { ...details, ips: [...details.ips], subnets: [...details.subnets], groups: [...details.groups] };
  if (copy.curve === 'CURVE25519') delete copy.curve; // absent is CURVE25519: one spelling for equal details
  let signature: Buffer;
  try {
    signature = signV1Details(copy.curve ?? 'CURVE25519', caPrivateKey, marshalDetails(copy));
  } catch (err) {
    throw new CertError('malformed', `invalid signing key: ${err instanceof Error ? err.message : String(err)}`);
  }
  return new NebulaCertificate(copy, signature);
}

/** Parses a marshalled RawNebulaCertificate (Go's UnmarshalNebulaCertificate). Throws CertError('malformed'). */
export function unmarshalCert(raw: Uint8Array): NebulaCertificate {
  if (raw.length === 0) throw malformed('nil byte array');
  const { details, signature } = decodeRawCert(Buffer.from(raw));
  return new NebulaCertificate(detailsFromRaw(details), signature);
}

/**
 * Rebuilds a peer's certificate from the handshake form (no PublicKey) and the Noise static key (nebula-spec
 * §3.4). The result still has to be verified against the CA pool: the CA signature covers the public key, so
 * that check is what binds the Noise static key to the certificate. The curve is the one the bytes carry.
 */
export function certFromHandshake(raw: Uint8Array, staticKey: Uint8Array): NebulaCertificate {
  if (staticKey.length === 0) throw malformed('no peer static key was present');
  if (raw.length === 0) throw malformed('provided payload was empty');
  const decoded = decodeRawCert(Buffer.from(raw));
  decoded.details.publicKey = Buffer.from(staticKey);
  return new NebulaCertificate(detailsFromRaw(decoded.details), decoded.signature);
}

/** Reads one certificate from PEM text; returns the text after it (bundles hold several). */
export function unmarshalCertFromPem(text: string): { cert: NebulaCertificate; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, CERT_BANNER, 'certificate');
  return { cert: unmarshalCert(bytes), rest };
}

/** Every certificate in a PEM bundle, in order. Trailing non-whitespace that is not a certificate is an error. */
export function unmarshalCertsFromPem(text: string): NebulaCertificate[] {
  const out: NebulaCertificate[] = [];
  let rest = text;
  do {
    const r = unmarshalCertFromPem(rest);
    out.push(r.cert);
    rest = r.rest;
  } while (rest.trim() !== '');
  return out;
}
