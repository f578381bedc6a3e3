/**
 * Micro-benchmark of the per-packet AEAD backends (not a test): µs per packet for encrypt and decrypt, node:crypto
 * vs OpenSSL EVP through koffi, both ciphers, a few payload sizes. Buffers are reused as in the data path.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/aead.js [packets]
 */
import { createPacketCipher, evpAvailable, evpLoadError, TAG_LEN, type CipherName, type PacketCipherImpl } from '../shared/crypto';
import { HEADER_LEN, TYPE_MESSAGE, writeHeader } from '../shared/protocol/header';

const packets = Number(process.argv[2] ?? 200_000);
const sizes = [64, 1300, 8900];
const key = Buffer.alloc(32, 0x42);

function bench(cipher: CipherName, impl: PacketCipherImpl, size: number): { enc: number; dec: number } {
  const enc = createPacketCipher(cipher, key, impl);
  const dec = createPacketCipher(cipher, key, impl);
  const plain = Buffer.alloc(size, 0x61);
  const wire = Buffer.alloc(HEADER_LEN + size + TAG_LEN);
  const out = Buffer.alloc(size);
  const n = Math.max(1000, Math.floor(packets / Math.max(1, size / 1300)));

  // Warm up (JIT, lazy EVP contexts).
  for (let i = 0; i < 2000; i++) {
    writeHeader(wire, 0, TYPE_MESSAGE, 0, 1, 0, i + 3);
    enc.encrypt(wire, HEADER_LEN, wire, 0, HEADER_LEN, plain, 0, size, i + 3);
    dec.decrypt(out, 0, wire, 0, HEADER_LEN, wire, HEADER_LEN, size + TAG_LEN, i + 3);
  }

  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    writeHeader(wire, 0, TYPE_MESSAGE, 0, 1, 0, i + 3);
    enc.encrypt(wire, HEADER_LEN, wire, 0, HEADER_LEN, plain, 0, size, i + 3);
  }
  const encNs = Number(process.hrtime.bigint() - t0);

  // Decrypt the same packet repeatedly (counter fixed): the cost does not depend on the counter value.
  writeHeader(wire, 0, TYPE_MESSAGE, 0, 1, 0, 3);
  enc.encrypt(wire, HEADER_LEN, wire, 0, HEADER_LEN, plain, 0, size, 3);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (dec.decrypt(out, 0, wire, 0, HEADER_LEN, wire, HEADER_LEN, size + TAG_LEN, 3) !== size) {
      throw new Error('decrypt failed');
    }
  }
  const decNs = Number(process.hrtime.bigint() - t0);
  enc.dispose();
  dec.dispose();
  return { enc: encNs / n / 1000, dec: decNs / n / 1000 };
}

function main(): void {
  if (!evpAvailable()) console.log(`EVP unavailable (${evpLoadError() ?? 'unknown'}); 'evp' rows fall back to node:crypto`);
  console.log(`node ${process.version}, ${packets} packets per 1300-byte run`);
  console.log('cipher      impl  size   encrypt µs/pkt  decrypt µs/pkt');
  for (const cipher of ['aes', 'chachapoly'] as const) {
    for (const size of sizes) {
      for (const impl of ['node', 'evp'] as const) {
        const r = bench(cipher, impl, size);
        console.log(
          `${cipher.padEnd(10)}  ${impl.padEnd(4)}  ${String(size).padStart(4)}   ${r.enc.toFixed(2).padStart(14)}  ${r.dec.toFixed(2).padStart(14)}`,
        );
      }
    }
  }
}

main();
