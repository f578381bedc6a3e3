/**
 * The handshake's certificate check (nebula-spec §3.4; Go 1.11's Recombine and the handshake machine's validateCert):
 * rebuild the peer's cert in the version its payload names (CertVersion; absent or 1: v1, 2: v2) with the Noise static
 * key as its public key and, for v2, our own credential's curve; then verify it against the CA pool.
 */
import { CertError } from './errors';
import { certFromHandshake } from './cert';
import { CertificateV2View, type Certificate } from './certificate';
import type { CAPool } from './ca-pool';
import { certV2FromHandshake, type Curve } from './v2/cert-v2';

/** Go's Recombine: the peer's certificate from its handshake form; throws CertError('malformed'). */
export function recombineCert(rawCert: Uint8Array, peerStaticKey: Uint8Array, certVersion: number, curve: Curve): Certificate {
  let cert: Certificate;
  if (certVersion === 0 || certVersion === 1) cert = certFromHandshake(rawCert, peerStaticKey);
  else if (certVersion === 2) cert = new CertificateV2View(certV2FromHandshake(rawCert, peerStaticKey, curve));
  else throw new CertError('malformed', `unknown certificate version ${certVersion}`);
  if (cert.curve !== curve) throw new CertError('malformed', `certificate curve ${cert.curve} does not match expected ${curve}`);
  return cert;
}

/**
 * Returns the peer's verified certificate, or throws a CertError whose message starts like Go's log lines
 * ("certificate validation failed: certificate is expired"). `certVersion` is the payload's CertVersion (0 when a
 * 1.6-era peer left it out), `curve` the curve of our own certificate.
 */
export function validateHandshakeCert(
  rawCert: Uint8Array,
  peerStaticKey: Uint8Array,
  pool: CAPool,
  now: Date | number = new Date(),
  certVersion = 1,
  curve: Curve = 'CURVE25519',
): Certificate {
  let cert: Certificate;
  try {
    cert = recombineCert(rawCert, peerStaticKey, certVersion, curve);
  } catch (err) {
    if (err instanceof CertError) throw new CertError(err.code, `error unmarshaling cert: ${err.message}`);
    throw err;
  }
  try {
    pool.verify(cert, now);
  } catch (err) {
    if (err instanceof CertError) throw new CertError(err.code, `certificate validation failed: ${err.message}`);
    throw err;
  }
  return cert;
}
