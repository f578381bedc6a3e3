/** Public surface of v2 certificates (nebula 1.10+): codec, signing, P256, PEM banners and printers. */
export { NebulaCertificateV2, unmarshalCertV2, certV2FromHandshake, curveFromByte, curveToByte, type Curve } from './cert-v2';
export { MAX_CERTIFICATE_SIZE, MAX_NAME_LENGTH, marshalDetailsV2, type CertV2Details } from './details-v2';
export { signCertV2, checkCAConstraintsV2, type TbsCertV2, type SigningCA, type CAConstraints, type ConstrainedFields } from './sign-v2';
export {
  CERT_V2_BANNER,
  P256_PRIVATE_BANNER,
  P256_PUBLIC_BANNER,
  ECDSA_P256_PRIVATE_BANNER,
  ECDSA_P256_PUBLIC_BANNER,
  ENCRYPTED_ECDSA_P256_PRIVATE_BANNER,
  ENCRYPTED_ED25519_PRIVATE_BANNER,
  certV2ToPem,
  certV2PublicKeyPem,
  unmarshalCertV2FromPem,
  unmarshalAnyCertFromPem,
  unmarshalAnyCertsFromPem,
  marshalPrivateKeyPem,
  marshalPublicKeyPem,
  marshalSigningPrivateKeyPem,
  marshalSigningPublicKeyPem,
  unmarshalPrivateKeyPem,
  unmarshalPublicKeyPem,
  unmarshalSigningPrivateKeyPem,
  unmarshalSigningPublicKeyPem,
  type PemKey,
} from './pem-v2';
export {
  P256_N,
  P256_PRIVATE_KEY_LEN,
  P256_PUBLIC_KEY_LEN,
  P256Error,
  generateP256KeyPair,
  p256PublicFromPrivate,
  p256SharedSecret,
  p256Sign,
  p256Verify,
  isLowS,
  normalizeP256Signature,
  swapP256Signature,
  parseEcdsaSignature,
  encodeEcdsaSignature,
} from './p256';
export {
  type IpPrefix,
  formatPrefix,
  formatAddr,
  parsePrefix,
  parseAddr,
  comparePrefix,
  prefixContainsAddr,
  prefixCovers,
  isV4,
  isV6,
} from './prefix';
export { certV2ToJson, certV2ToJsonValue, certV2ToText } from './json-v2';
