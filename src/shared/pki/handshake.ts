/**
 * The handshake's certificate check (nebula-spec §3.4, Go's RecombineCertAndValidate): rebuild the peer's cert
 * with the Noise static key as its public key, then verify it against the CA pool.
 */
import { CertError } from './errors';
import { certFromHandshake, type NebulaCertificate } from './cert';
import type { CAPool } from './ca-pool';

/**
 * Returns the peer's verified certificate, or throws a CertError whose message starts like Go's log lines
 * ("certificate validation failed: certificate is expired").
 */
export function validateHandshakeCert(
  rawCert: Uint8Array,
  peerStaticKey: Uint8Array,
  pool: CAPool,
  now: Date | number = new Date(),
): NebulaCertificate {
  let cert: NebulaCertificate;
  try {
    cert = certFromHandshake(rawCert, peerStaticKey);
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
