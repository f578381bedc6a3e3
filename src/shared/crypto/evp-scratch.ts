/**
 * The native scratch memory of one EVP cipher. It holds the per-packet nonce, EVP's `int *outl` out-parameter, and
 * a one-entry OSSL_PARAM array that gives EVP_DecryptInit_ex2 the expected tag. That array lets one call set the
 * IV and the tag, where SET_TAG would need a second koffi call.
 *
 * The memory is its own ArrayBuffer, whose backing store never moves, so each address is taken once. Pointing the
 * tag parameter at a packet's tag is two 32-bit stores and allocates nothing.
 */
import { endianness } from 'node:os';
import { Addr, EvpBindings, OSSL_CIPHER_PARAM_AEAD_TAG, OSSL_PARAM_OCTET_STRING } from './evp';
import { NONCE_LEN, TAG_LEN } from './types';

const TWO_32 = 0x100000000;
// Which 32-bit word of a 64-bit field holds the low half.
const LOW_WORD = endianness() === 'LE' ? 0 : 1;

const NONCE_AT = 0;
const OUTL_AT = 16;
const KEY_AT = 24; // "tag\0"
const PARAMS_AT = 32; // OSSL_PARAM[2]: the tag, then the all-zero terminator

export class EvpScratch {
  /** The nonce is written here (bytes [0, 12)). */
  readonly bytes: Buffer;
  readonly nonce: Addr;
  readonly outl: Addr;
  /** The OSSL_PARAM array { AEAD_TAG: 16 bytes at pointTagAt() }. */
  readonly tagParams: Addr;
  private readonly words: Uint32Array;
  private readonly tagDataWord: number;

  constructor(evp: EvpBindings) {
    const layout = evp.osslParam;
    const size = PARAMS_AT + 2 * layout.size;
    const ab = new ArrayBuffer(size);
    this.bytes = Buffer.from(ab);
    this.words = new Uint32Array(ab);
    if (PARAMS_AT % 8 !== 0 || layout.size % 8 !== 0 || NONCE_AT + NONCE_LEN > OUTL_AT) {
      throw new Error('EvpScratch layout is misaligned');
    }
    const base = evp.address(this.bytes);
    this.nonce = base + NONCE_AT;
    this.outl = base + OUTL_AT;
    this.tagParams = base + PARAMS_AT;
    this.bytes.write(`${OSSL_CIPHER_PARAM_AEAD_TAG}\0`, KEY_AT, 'latin1');
    this.write64(PARAMS_AT + layout.key, base + KEY_AT);
    this.words[(PARAMS_AT + layout.dataType) / 4] = OSSL_PARAM_OCTET_STRING;
    this.write64(PARAMS_AT + layout.dataSize, TAG_LEN);
    // return_size = OSSL_PARAM_UNMODIFIED (SIZE_MAX), as OSSL_PARAM_construct_octet_string leaves it.
    this.words[(PARAMS_AT + layout.returnSize) / 4] = 0xffffffff;
    this.words[(PARAMS_AT + layout.returnSize) / 4 + 1] = 0xffffffff;
    this.tagDataWord = (PARAMS_AT + layout.data) / 4;
    // The terminator (key NULL) is already zero.
  }

  /** Points the tag parameter at the 16 bytes at `tag`. */
  pointTagAt(tag: Addr): void {
    this.words[this.tagDataWord + LOW_WORD] = tag >>> 0;
    this.words[this.tagDataWord + 1 - LOW_WORD] = (tag / TWO_32) >>> 0;
  }

  private write64(byteOffset: number, value: number): void {
    const w = byteOffset / 4;
    this.words[w + LOW_WORD] = value >>> 0;
    this.words[w + 1 - LOW_WORD] = (value / TWO_32) >>> 0;
  }
}
