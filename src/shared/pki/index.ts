/** Public surface of the PKI module: v1 certificates, PEM keys, the CA pool and printers. */
export { CertError, type CertErrorCode } from './errors';
export {
  NebulaCertificate,
  type CertDetails,
  PUBLIC_KEY_LEN,
  marshalDetails,
  marshalCertForHandshake,
  certFromHandshake,
  signCert,
  unmarshalCert,
  unmarshalCertFromPem,
  unmarshalCertsFromPem,
  toUnixSeconds,
  v1NetToPrefix,
} from './cert';
export { CAPool, loadCAPool, checkRootConstraints } from './ca-pool';
export { validateHandshakeCert, recombineCert } from './handshake';
export { CertificateV2View, requireIPv4Network, unmarshalCertificateFromPem, type Certificate, type CertVersion } from './certificate';
export { CertState, ownCertFor, ownNetworks } from './cert-state';
export * from './pem';
export * from './keys';
export { certToText, certToJson, certToJsonValue } from './print';
export { formatNet, goTimeString, goRfc3339 } from './format';
export { isInlinePem, readPemValue, verifyPrivateKey, loadHostPki, loadCABundle, loadHostCertAndKey, checkHostPki, type HostPki } from './load';
export * from './v2';
