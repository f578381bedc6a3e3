/**
 * AEAD through OpenSSL EVP (koffi, symbols from the node binary): about 4x faster than node:crypto because the
 * cipher context and key schedule are set up once and reused for every packet (platform-notes §8).
 *
 * koffi calls per packet, the fewest OpenSSL 3 allows (docs/performance.md, "Change 5: fewer EVP calls"):
 * - seal, 5: EncryptInit_ex2(IV), Update(AD), Update(data), Final, ctrl(GET_TAG). The tag can only be read
 *   after Final, and only through a ctrl or get_params call.
 * - open, 4: DecryptInit_ex2(IV, params = {expected tag}), Update(AD), Update(data), Final. Final compares the tag.
 * An empty AD or payload skips its Update call, which EVP treats as a no-op anyway (relay frames seal nothing).
 *
 * Buffers are addressed as numbers: a Buffer's address (looked up once, then cached: a backing store never moves)
 * plus an offset, so a packet allocates nothing (no view objects, no BigInt sums). All lengths and offsets are
 * bounds-checked first because native code would otherwise write past the caller's Buffer. The caller owns the
 * Buffers and keeps them referenced across the call (the data path's reusable packet Buffers do).
 */
import { Addr, evpBindings, EvpBindings, EVP_CTRL_AEAD_GET_TAG } from './evp';
import { EvpScratch } from './evp-scratch';
import { CipherName, CryptoError, KEY_LEN, PacketCipher, TAG_LEN } from './types';
import { writeNonce } from './nonce';

// Contexts leaked by an undisposed cipher are freed when it is garbage-collected.
const finalizer = new FinalizationRegistry<{ evp: EvpBindings; ctx: Addr }>(({ evp, ctx }) => evp.ctxFree(ctx));

const addresses = new WeakMap<Buffer, Addr>();

/** The address of a Buffer's first byte, cached per Buffer. */
function addressOf(evp: EvpBindings, buf: Buffer): Addr {
  let a = addresses.get(buf);
  if (a === undefined) {
    a = evp.address(buf);
    addresses.set(buf, a);
  }
  return a;
}

function checkRange(buf: Buffer, offset: number, len: number, what: string): void {
  // `>>> 0 !== x` rejects negatives, fractions and NaN in one cheap test.
  if (offset >>> 0 !== offset || len >>> 0 !== len || offset + len > buf.length) {
    throw new RangeError(`${what}: range [${offset}, +${len}) outside a ${buf.length}-byte buffer`);
  }
}

export class EvpPacketCipher implements PacketCipher {
  readonly impl = 'evp' as const;
  private readonly evp: EvpBindings;
  private readonly key: Buffer;
  private readonly keyAddr: Addr;
  private readonly scratch: EvpScratch;
  // One context per direction, created on first use and keyed once; 0 until then.
  private encCtx: Addr = 0;
  private decCtx: Addr = 0;
  private disposed = false;

  constructor(
    readonly cipher: CipherName,
    key: Buffer,
    evp?: EvpBindings,
  ) {
    if (key.length !== KEY_LEN) throw new CryptoError(`AEAD key must be ${KEY_LEN} bytes, got ${key.length}`);
    const b = evp ?? evpBindings();
    if (!b) throw new CryptoError('OpenSSL EVP is not available through koffi');
    this.evp = b;
    // The key in memory of its own (a backing store that never moves), read by native code at context creation.
    this.key = Buffer.from(new ArrayBuffer(KEY_LEN));
    key.copy(this.key);
    this.keyAddr = b.address(this.key);
    this.scratch = new EvpScratch(b);
  }

  private newContext(encrypt: boolean): Addr {
    if (this.disposed) throw new CryptoError('cipher used after dispose()');
    const evp = this.evp;
    const ctx = evp.ctxNew();
    const type = this.cipher === 'aes' ? evp.aes256Gcm() : evp.chacha20Poly1305();
    const key = this.keyAddr;
    const ok = encrypt ? evp.encryptInit(ctx, type, key, 0, 0) : evp.decryptInit(ctx, type, key, 0, 0);
    if (ok !== 1) {
      evp.ctxFree(ctx);
      throw new CryptoError('EVP cipher initialisation failed');
    }
    finalizer.register(this, { evp, ctx }, this);
    return ctx;
  }

  encrypt(
    dst: Buffer,
    dstOffset: number,
    ad: Buffer,
    adOffset: number,
    adLen: number,
    src: Buffer,
    srcOffset: number,
    len: number,
    counter: number | bigint,
  ): number {
    checkRange(dst, dstOffset, len + TAG_LEN, 'encrypt dst');
    checkRange(ad, adOffset, adLen, 'encrypt ad');
    checkRange(src, srcOffset, len, 'encrypt src');
    let ctx = this.encCtx;
    if (ctx === 0) ctx = this.encCtx = this.newContext(true);
    const evp = this.evp;
    const scratch = this.scratch;
    writeNonce(scratch.bytes, this.cipher, counter);
    // The data path seals with the header in the destination buffer (ad === dst): one address lookup, not two.
    const dstAddr = addressOf(evp, dst);
    const adAddr = ad === dst ? dstAddr : addressOf(evp, ad);
    const srcAddr = src === dst ? dstAddr : addressOf(evp, src);
    const out = dstAddr + dstOffset;
    const tag = out + len;
    const outl = scratch.outl;
    if (
      evp.encryptInit(ctx, 0, 0, scratch.nonce, 0) !== 1 ||
      (adLen !== 0 && evp.encryptUpdate(ctx, 0, outl, adAddr + adOffset, adLen) !== 1) ||
      (len !== 0 && evp.encryptUpdate(ctx, out, outl, srcAddr + srcOffset, len) !== 1) ||
      evp.encryptFinal(ctx, tag, outl) !== 1 ||
      evp.ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) !== 1
    ) {
      throw new CryptoError('EVP encryption failed');
    }
    return len + TAG_LEN;
  }

  decrypt(
    dst: Buffer,
    dstOffset: number,
    ad: Buffer,
    adOffset: number,
    adLen: number,
    src: Buffer,
    srcOffset: number,
    len: number,
    counter: number | bigint,
  ): number {
    if (len < TAG_LEN) return -1;
    const ptLen = len - TAG_LEN;
    checkRange(dst, dstOffset, ptLen, 'decrypt dst');
    checkRange(ad, adOffset, adLen, 'decrypt ad');
    checkRange(src, srcOffset, len, 'decrypt src');
    let ctx = this.decCtx;
    if (ctx === 0) ctx = this.decCtx = this.newContext(false);
    const evp = this.evp;
    const scratch = this.scratch;
    writeNonce(scratch.bytes, this.cipher, counter);
    // The data path opens a datagram whose header (the AD) and ciphertext share one buffer (src === ad).
    const srcAddr = addressOf(evp, src);
    const adAddr = ad === src ? srcAddr : addressOf(evp, ad);
    const dstAddr = dst === src ? srcAddr : addressOf(evp, dst);
    const out = dstAddr + dstOffset;
    const ct = srcAddr + srcOffset;
    const outl = scratch.outl;
    // The expected tag goes in with the IV. DecryptInit_ex2 copies it into the context before any plaintext is
    // written, so an in-place decrypt that overwrites the tag bytes is still verified correctly.
    scratch.pointTagAt(ct + ptLen);
    if (
      evp.decryptInit(ctx, 0, 0, scratch.nonce, scratch.tagParams) !== 1 ||
      (adLen !== 0 && evp.decryptUpdate(ctx, 0, outl, adAddr + adOffset, adLen) !== 1) ||
      (ptLen !== 0 && evp.decryptUpdate(ctx, out, outl, ct, ptLen) !== 1) ||
      evp.decryptFinal(ctx, out + ptLen, outl) <= 0
    ) {
      return -1;
    }
    return ptLen;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    if (this.encCtx !== 0) this.evp.ctxFree(this.encCtx);
    if (this.decCtx !== 0) this.evp.ctxFree(this.decCtx);
    this.encCtx = this.decCtx = 0;
    this.key.fill(0);
  }
}
