/**
 * Typed koffi bindings to the OpenSSL EVP AEAD calls exported by the node binary itself (OpenSSL is linked
 * statically into node; `koffi.load(null)` is dlopen(NULL), so no second libcrypto enters the process —
 * platform-notes §8). koffi returns `any`; nothing untyped leaves this module.
 *
 * Every pointer parameter is declared `uintptr_t` and given a native address as a plain JS number (user-space
 * addresses on x86_64/arm64 are below 2^48, so a double holds them exactly, and number arithmetic allocates
 * nothing). Measured with callgrind (docs/performance.md, "Change 5: fewer EVP calls"), this is the cheapest
 * koffi signature:
 * - koffi converts an integer argument with one `napi_get_value_int64`, while a `void *` argument given a number
 *   first fails a BigInt test and a Buffer test and then asks for the value's type (four N-API calls);
 * - a function without pointer parameters takes koffi's "fast call" path, which skips the output-argument and
 *   callback bookkeeping a `void *` parameter requires.
 * With the same 5 calls, a 64-byte AES-GCM seal went from 10,400 to 6,900 instructions (callgrind).
 */
import koffi from '../native/koffi';

/** A native address (or 0 for NULL) as a JS number. */
export type Addr = number;

export const EVP_CTRL_AEAD_GET_TAG = 0x10;

/** OSSL_PARAM's data_type for a byte string (openssl/core.h). */
export const OSSL_PARAM_OCTET_STRING = 5;
/** OSSL_CIPHER_PARAM_AEAD_TAG (openssl/core_names.h). */
export const OSSL_CIPHER_PARAM_AEAD_TAG = 'tag';

/** Where OSSL_PARAM's fields lie in this ABI (from koffi's own struct layout, not hard-coded). */
export interface OsslParamLayout {
  size: number;
  key: number;
  dataType: number;
  data: number;
  dataSize: number;
  returnSize: number;
}

export interface EvpBindings {
  ctxNew(): Addr;
  ctxFree(ctx: Addr): void;
  aes256Gcm(): Addr;
  chacha20Poly1305(): Addr;
  /**
   * EVP_EncryptInit_ex2 / EVP_DecryptInit_ex2 (OpenSSL 3): 0 keeps the cipher or key already set, or passes no
   * IV / no params. `params` is an OSSL_PARAM array applied after the IV (the decrypt side sets the expected tag
   * there, saving an EVP_CIPHER_CTX_ctrl call per packet).
   */
  encryptInit(ctx: Addr, type: Addr, key: Addr, iv: Addr, params: Addr): number;
  decryptInit(ctx: Addr, type: Addr, key: Addr, iv: Addr, params: Addr): number;
  /** `out` 0 feeds `inp` as additional authenticated data. */
  encryptUpdate(ctx: Addr, out: Addr, outl: Addr, inp: Addr, inl: number): number;
  decryptUpdate(ctx: Addr, out: Addr, outl: Addr, inp: Addr, inl: number): number;
  encryptFinal(ctx: Addr, out: Addr, outl: Addr): number;
  /** Returns <= 0 when the tag does not verify. */
  decryptFinal(ctx: Addr, out: Addr, outl: Addr): number;
  ctrl(ctx: Addr, type: number, arg: number, ptr: Addr): number;
  /**
   * The address of a Buffer's first byte (including its byteOffset into the underlying ArrayBuffer); 0 for an
   * empty Buffer without memory, which is never read (an empty AD or payload skips its EVP call).
   */
  address(buf: Buffer): Addr;
  osslParam: OsslParamLayout;
}

/** A pointer as a number; throws on an address a double cannot hold exactly. */
function toAddr(v: bigint): Addr {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`native address 0x${v.toString(16)} does not fit a JS number`);
  }
  return Number(v);
}

/** A returned pointer as a number; throws on NULL. */
function nonNull(v: unknown): Addr {
  if (typeof v !== 'bigint' || v === 0n) throw new Error('EVP returned a NULL pointer');
  return toAddr(v);
}

function osslParamLayout(): OsslParamLayout {
  const t = koffi.struct({
    key: 'const char *',
    data_type: 'unsigned int',
    data: 'void *',
    data_size: 'size_t',
    return_size: 'size_t',
  });
  return {
    size: koffi.sizeof(t),
    key: koffi.offsetof(t, 'key'),
    dataType: koffi.offsetof(t, 'data_type'),
    data: koffi.offsetof(t, 'data'),
    dataSize: koffi.offsetof(t, 'data_size'),
    returnSize: koffi.offsetof(t, 'return_size'),
  };
}

function loadBindings(): EvpBindings {
  const lib = koffi.load(null);
  // lib.func() returns `any`; each one is given its C signature's TypeScript shape right here. The hot-path calls
  // are the koffi functions themselves (no wrapper frame).
  type InitFn = (ctx: Addr, type: Addr, key: Addr, iv: Addr, params: Addr) => number;
  type UpdateFn = (ctx: Addr, out: Addr, outl: Addr, inp: Addr, inl: number) => number;
  type FinalFn = (ctx: Addr, out: Addr, outl: Addr) => number;
  const ctxNew = lib.func('void *EVP_CIPHER_CTX_new(void)') as () => unknown;
  const aes = lib.func('void *EVP_aes_256_gcm(void)') as () => unknown;
  const chacha = lib.func('void *EVP_chacha20_poly1305(void)') as () => unknown;
  const init = 'uintptr_t ctx, uintptr_t type, uintptr_t key, uintptr_t iv, uintptr_t params';
  const update = 'uintptr_t ctx, uintptr_t out, uintptr_t outl, uintptr_t inp, int inl';
  const final = 'uintptr_t ctx, uintptr_t out, uintptr_t outl';
  return {
    ctxNew: () => nonNull(ctxNew()),
    ctxFree: lib.func('void EVP_CIPHER_CTX_free(uintptr_t ctx)') as (ctx: Addr) => void,
    aes256Gcm: () => nonNull(aes()),
    chacha20Poly1305: () => nonNull(chacha()),
    encryptInit: lib.func(`int EVP_EncryptInit_ex2(${init})`) as InitFn,
    decryptInit: lib.func(`int EVP_DecryptInit_ex2(${init})`) as InitFn,
    encryptUpdate: lib.func(`int EVP_EncryptUpdate(${update})`) as UpdateFn,
    decryptUpdate: lib.func(`int EVP_DecryptUpdate(${update})`) as UpdateFn,
    encryptFinal: lib.func(`int EVP_EncryptFinal_ex(${final})`) as FinalFn,
    decryptFinal: lib.func(`int EVP_DecryptFinal_ex(${final})`) as FinalFn,
    ctrl: lib.func('int EVP_CIPHER_CTX_ctrl(uintptr_t ctx, int type, int arg, uintptr_t ptr)') as (
      ctx: Addr,
      type: number,
      arg: number,
      ptr: Addr,
    ) => number,
    address: (buf: Buffer) => toAddr(koffi.address(buf)),
    osslParam: osslParamLayout(),
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
