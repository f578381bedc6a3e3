/**
 * Static key pairs kept between handshakes. A node makes every handshake with the same static key (`pki.key`), and
 * preparing it (importing the private key into OpenSSL, deriving its public key) used to cost a quarter of a
 * responder's handshake. Entries are found by curve and key bytes, so a reload that brings a new key gets a new key
 * pair on its first handshake, whatever object holds the bytes; the bytes are copied, so a buffer changed in place
 * cannot find a stale entry. Bounded (a node needs one or two: the old and the new key around a reload), most
 * recently used first. Nothing here is ever logged.
 */
import { timingSafeEqual } from 'node:crypto';
import { dhFor, type DHCurve, type DHKeyPair } from './dh-functions';

export const STATIC_KEY_CACHE_SIZE = 8;

interface Entry {
  curve: DHCurve;
  privateRaw: Buffer;
  pair: DHKeyPair;
}

export class StaticKeyCache {
  private entries: Entry[] = [];

  constructor(readonly capacity = STATIC_KEY_CACHE_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`static key cache capacity must be a positive integer, got ${capacity}`);
  }

  /** The key pair of `privateRaw` on `curve`, prepared on first use. Throws NoiseError on a key the curve refuses. */
  get(curve: DHCurve, privateRaw: Buffer): DHKeyPair {
    const i = this.entries.findIndex((e) => e.curve === curve && sameBytes(e.privateRaw, privateRaw));
    if (i >= 0) {
      const [hit] = this.entries.splice(i, 1);
      this.entries.unshift(hit!);
      return hit!.pair;
    }
    const pair = dhFor(curve).fromPrivate(privateRaw);
    this.entries.unshift({ curve, privateRaw: Buffer.from(privateRaw), pair });
    if (this.entries.length > this.capacity) this.entries.length = this.capacity;
    return pair;
  }

  get size(): number {
    return this.entries.length;
  }

  clear(): void {
    this.entries = [];
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The process's cache, used by every NoiseIXHandshake given a static private key. */
export const staticKeys = new StaticKeyCache();
