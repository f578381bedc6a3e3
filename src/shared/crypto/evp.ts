/**
 * Typed koffi bindings to the OpenSSL EVP AEAD calls exported by the node binary itself (OpenSSL is linked
 * statically into node; `koffi.load(null)` is dlopen(NULL), so no second libcrypto enters the process —
 * platform-notes §8). koffi returns `any`; nothing untyped leaves this module.
 *
 * Pointer arguments are declared `void *` so they accept a Buffer (koffi passes the Buffer's own memory), a BigInt
 * or a number address. The hot path uses number addresses (a Buffer's address, cached, plus an offset): faster than
 * a `subarray()` view and, unlike BigInt arithmetic, free of per-packet allocation.
 */
import koffi from '../native/koffi';

/** An opaque native pointer as koffi 3 represents it. */
export type NativePtr = bigint;
/**
 * Anything a `void *` parameter accepts. koffi 3 takes a plain number as an address too: user-space addresses on
 * x86_64/arm64 are below 2^48, so a double holds them exactly, and number arithmetic allocates nothing (a BigInt
 * sum allocates a new BigInt every time).
 */
export type PtrArg = NativePtr | number | Buffer | Int32Array | null;

export const EVP_CTRL_AEAD_GET_TAG = 0x10;
export const EVP_CTRL_AEAD_SET_TAG = 0x11;

export interface EvpBindings {
  ctxNew(): NativePtr;
  ctxFree(ctx: NativePtr): void;
  aes256Gcm(): NativePtr;
  chacha20Poly1305(): NativePtr;
  /** `impl` (the ENGINE) is always null. */
  encryptInit(ctx: NativePtr, type: PtrArg, impl: null, key: PtrArg, iv: PtrArg): number;
  encryptUpdate(ctx: NativePtr, out: PtrArg, outl: PtrArg, inp: PtrArg, inl: number): number;
  encryptFinal(ctx: NativePtr, out: PtrArg, outl: PtrArg): number;
  decryptInit(ctx: NativePtr, type: PtrArg, impl: null, key: PtrArg, iv: PtrArg): number;
  decryptUpdate(ctx: NativePtr, out: PtrArg, outl: PtrArg, inp: PtrArg, inl: number): number;
  decryptFinal(ctx: NativePtr, out: PtrArg, outl: PtrArg): number;
  ctrl(ctx: NativePtr, type: number, arg: number, ptr: PtrArg): number;
  /** The address of a Buffer's first byte (including its byteOffset into the underlying ArrayBuffer). */
  address(buf: Buffer | Int32Array): NativePtr;
}

function loadBindings(): EvpBindings {
  const lib = koffi.load(null);
  // lib.func() returns `any`; each one is given its C signature's TypeScript shape right here. The hot-path calls
  // are the koffi functions themselves (no wrapper frame).
  type InitFn = (ctx: NativePtr, type: PtrArg, impl: null, key: PtrArg, iv: PtrArg) => number;
  type UpdateFn = (ctx: NativePtr, out: PtrArg, outl: PtrArg, inp: PtrArg, inl: number) => number;
  type FinalFn = (ctx: NativePtr, out: PtrArg, outl: PtrArg) => number;
  const ctxNew = lib.func('void *EVP_CIPHER_CTX_new(void)') as () => NativePtr | null;
  const ctxFree = lib.func('void EVP_CIPHER_CTX_free(void *ctx)') as (ctx: NativePtr) => void;
  const aes = lib.func('void *EVP_aes_256_gcm(void)') as () => NativePtr | null;
  const chacha = lib.func('void *EVP_chacha20_poly1305(void)') as () => NativePtr | null;

  const nonNull = (v: NativePtr | null): NativePtr => {
    if (typeof v !== 'bigint' || v === 0n) throw new Error('EVP returned a NULL pointer');
    return v;
  };
  return {
    ctxNew: () => nonNull(ctxNew()),
    ctxFree,
    aes256Gcm: () => nonNull(aes()),
    chacha20Poly1305: () => nonNull(chacha()),
    encryptInit: lib.func('int EVP_EncryptInit_ex(void *ctx, void *type, void *impl, void *key, void *iv)') as InitFn,
    encryptUpdate: lib.func('int EVP_EncryptUpdate(void *ctx, void *out, void *outl, void *inp, int inl)') as UpdateFn,
    encryptFinal: lib.func('int EVP_EncryptFinal_ex(void *ctx, void *out, void *outl)') as FinalFn,
    decryptInit: lib.func('int EVP_DecryptInit_ex(void *ctx, void *type, void *impl, void *key, void *iv)') as InitFn,
    decryptUpdate: lib.func('int EVP_DecryptUpdate(void *ctx, void *out, void *outl, void *inp, int inl)') as UpdateFn,
    decryptFinal: lib.func('int EVP_DecryptFinal_ex(void *ctx, void *out, void *outl)') as FinalFn,
    ctrl: lib.func('int EVP_CIPHER_CTX_ctrl(void *ctx, int type, int arg, void *ptr)') as (
      ctx: NativePtr,
      type: number,
      arg: number,
      ptr: PtrArg,
    ) => number,
    address: koffi.address,
  };
}

let cached: EvpBindings | null | undefined;
let loadError: string | undefined;

/** The EVP bindings, or null when koffi or the OpenSSL symbols are unavailable (then use node:crypto). */
export function evpBindings(): EvpBindings | null {
  if (cached === undefined) {
    try {
      cached = loadBindings();
    } catch (err) {
      cached = null;
      loadError = err instanceof Error ? err.message : String(err);
    }
  }
  return cached;
}

/** Why the EVP bindings could not be loaded (undefined when they loaded or were not tried yet). */
export function evpLoadError(): string | undefined {
  return loadError;
}
