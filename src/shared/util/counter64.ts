/**
 * A 64-bit message counter as the two big-endian 32-bit halves the header and the nonce carry. Number counters must
 * be non-negative integers <= 2^53 - 1 (what a JS number holds exactly); bigint counters cover all of uint64. The
 * halves land in a reused object, so splitting allocates nothing for number counters (the packet path).
 */
const TWO_32 = 0x100000000;

export const counterHalves = { hi: 0, lo: 0 };

/** Splits `counter` into counterHalves.hi / .lo (read them before the next call). */
export function splitCounter(counter: number | bigint): typeof counterHalves {
  if (typeof counter === 'number') {
    counterHalves.hi = Math.floor(counter / TWO_32);
    counterHalves.lo = counter >>> 0;
  } else {
    const c = BigInt.asUintN(64, counter);
    counterHalves.hi = Number(c >> 32n);
    counterHalves.lo = Number(c & 0xffffffffn);
  }
  return counterHalves;
}
