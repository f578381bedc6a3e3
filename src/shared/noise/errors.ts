/** Every failure to process a Noise message (bad length, bad key, failed decryption, wrong state) is a NoiseError,
 * so the handshake code can catch exactly this and drop the packet. */
export class NoiseError extends Error {
  override name = 'NoiseError';
}
