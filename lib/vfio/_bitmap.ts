/**
 * Bit operations on a Uint32Array bitmap (one bit per 4 KiB page, as the
 * RFC's iopf_mapped_bitmap), working a word at a time.
 *
 * @module
 */

/** A zeroed bitmap of `n` bits. */
export function newBitmap(n: number): Uint32Array {
  return new Uint32Array(Math.ceil(n / 32));
}

/** Bit i. */
export function testBit(bits: Uint32Array, i: number): boolean {
  return (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
}

/** Index of the first set bit in [from, to), or `to`. */
export function nextSet(bits: Uint32Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const w = i >>> 5;
    const word = bits[w]! >>> (i & 31);
    if (word !== 0) {
      const j = i + (31 - Math.clz32(word & -word));
      return j < to ? j : to;
    }
    i = (w + 1) << 5;
  }
  return to;
}

/** Index of the first clear bit in [from, to), or `to`. */
export function nextClear(bits: Uint32Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const w = i >>> 5;
    const word = ~bits[w]! >>> (i & 31);
    if (word !== 0) {
      const j = i + (31 - Math.clz32(word & -word));
      return j < to ? j : to;
    }
    i = (w + 1) << 5;
  }
  return to;
}

/** Sets (`value` true) or clears bits [a, b). */
export function fillBits(
  bits: Uint32Array,
  a: number,
  b: number,
  value: boolean,
): void {
  let i = a;
  while (i < b) {
    const w = i >>> 5;
    const lo = i & 31;
    const hi = Math.min(32, lo + (b - i));
    const mask = hi - lo === 32
      ? 0xffffffff
      : (((1 << (hi - lo)) - 1) << lo) >>> 0;
    bits[w] = value ? bits[w]! | mask : bits[w]! & ~mask;
    i += hi - lo;
  }
}

/** Number of set bits in [a, b). */
export function countBits(bits: Uint32Array, a: number, b: number): number {
  let n = 0;
  let i = nextSet(bits, a, b);
  while (i < b) {
    const j = nextClear(bits, i, b);
    n += j - i;
    i = nextSet(bits, j, b);
  }
  return n;
}
