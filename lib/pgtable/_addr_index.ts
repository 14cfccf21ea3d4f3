/**
 * Table page address -> value (a non-negative int32), for io_pgtable.ts's
 * lookup of a table by the address a walker reads. Addresses are 4 KiB
 * aligned and below 2^48, so their frame numbers are integers up to 2^36:
 * doubles, not small integers, which a Map hashes and boxes slowly. This is
 * an open-addressing table over typed arrays (linear probing, deletion by
 * shifting back, so no tombstones), kept at most half full.
 *
 * @module
 */

/** The frame of an empty slot. */
const EMPTY = -1;

/** Table page address -> non-negative int32. */
export class AddrIndex {
  #keys = new Float64Array(64).fill(EMPTY);
  #vals = new Int32Array(64);
  #mask = 63;
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Home slot of frame `f`. */
  #home(f: number): number {
    let h = (f >>> 0) ^ Math.imul((f / 4294967296) | 0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.#mask;
  }

  /** The slot holding frame `f`, or -1. */
  #find(f: number): number {
    const keys = this.#keys, mask = this.#mask;
    for (let i = this.#home(f);; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === f) return i;
      if (k === EMPTY) return -1;
    }
  }

  /** The value of `addr`, or -1 when it has none. */
  get(addr: number): number {
    const i = this.#find(addr / 4096);
    return i < 0 ? -1 : this.#vals[i]!;
  }

  /** Whether `addr` has a value. */
  has(addr: number): boolean {
    return this.#find(addr / 4096) >= 0;
  }

  /** Sets the value of `addr` (4 KiB aligned, below 2^48) to `value` (>= 0). */
  set(addr: number, value: number): void {
    const f = addr / 4096;
    const keys = this.#keys;
    for (let i = this.#home(f);; i = (i + 1) & this.#mask) {
      const k = keys[i]!;
      if (k === f) {
        this.#vals[i] = value;
        return;
      }
      if (k === EMPTY) {
        keys[i] = f;
        this.#vals[i] = value;
        if (++this.#size * 2 > this.#mask + 1) this.#grow();
        return;
      }
    }
  }

  /** Drops `addr` (if it has a value). */
  delete(addr: number): void {
    let i = this.#find(addr / 4096);
    if (i < 0) return;
    const keys = this.#keys, vals = this.#vals, mask = this.#mask;
    this.#size--;
    // Shift later entries of the run back over the hole when their home
    // slot is not between the hole and them (cyclically).
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const k = keys[j]!;
      if (k === EMPTY) break;
      const h = this.#home(k);
      if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
        keys[i] = k;
        vals[i] = vals[j]!;
        i = j;
      }
    }
    keys[i] = EMPTY;
  }

  #grow(): void {
    const keys = this.#keys, vals = this.#vals;
    const n = keys.length * 2;
    this.#keys = new Float64Array(n).fill(EMPTY);
    this.#vals = new Int32Array(n);
    this.#mask = n - 1;
    this.#size = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k !== EMPTY) this.set(k * 4096, vals[i]!);
    }
  }
}
