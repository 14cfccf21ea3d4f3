/**
 * A set-associative translation cache in typed arrays, used for the SMMU's
 * IOTLB and for a PCIe endpoint's ATC.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";

/** Options of a {@linkcode SetAssocTlb}. */
export interface SetAssocTlbOptions {
  /** Total entries (a multiple of `ways`). */
  entries: number;
  /** Entries per set. */
  ways: number;
  /** A name for error messages. Default "tlb". */
  name?: string;
}

/** Entry kind: a stage-1 translation (tag A = VMID, B = ASID). */
export const TLB_KIND_S1 = 1;
/** Entry kind: a stage-2 translation (tag A = VMID, B = -1). */
export const TLB_KIND_S2 = 2;
/** Entry kind: a combined nested stage-1 + stage-2 translation. */
export const TLB_KIND_NESTED = 3;
/** Entry kind for caches with one kind (an ATC). */
export const TLB_KIND_ANY = 4;

/** Page sizes an entry can cover, by log2: 4 KiB, 2 MiB, 1 GiB. */
const SHIFTS = [12, 21, 30] as const;
const SIZES = [2 ** 12, 2 ** 21, 2 ** 30] as const;
/** 1 / SIZES: multiplying by a power of two is exact and much cheaper than dividing. */
const INV_SIZES = [2 ** -12, 2 ** -21, 2 ** -30] as const;

// The typed-array fields start as empty arrays of their own type (replaced in
// the constructor) rather than undefined: V8 then keeps each field's type
// precise and the hot lookup reads them without generic checks (about 20 %
// faster lookups).
const EMPTY_I32 = new Int32Array(0);
const EMPTY_U8 = new Uint8Array(0);
const EMPTY_F64 = new Float64Array(0);

/**
 * The hit path's record per entry, {@linkcode HOT_STRIDE} doubles (64
 * bytes, one cache line; the last is spare) in one array: a lookup, its
 * readiness check and the output address touch one typed array instead
 * of seven (each typed-array access loads its array, length and data
 * pointer). The fields mirror the public arrays (`va`, `out`, the tags)
 * plus the LRU stamp and the readiness time. The permissions are read
 * from `prot` itself (an integer array: no conversion from a double).
 */
const HOT_STRIDE = 8;
/** Hot field: `va + shift - 12` (exact: `va` is a multiple of 4 KiB), or -1 when the entry is invalid, so one compare checks page, size and validity. */
const H_KEY = 0;
/** Hot field: tag A. */
const H_A = 1;
/** Hot field: tag B. */
const H_B = 2;
/** Hot field: input page base (`va`). */
const H_VA = 3;
/** Hot field: output page base (`out`). */
const H_OUT = 4;
/** Hot field: simulated time from which the entry may answer ({@linkcode SetAssocTlb.readyAt}). */
const H_READY = 5;
/** Hot field: LRU stamp. */
const H_STAMP = 6;

/**
 * A set-associative TLB. An entry is tagged by two context numbers (`a`, `b`:
 * VMID and ASID for an IOTLB, PASID for an ATC) and an input page of 4 KiB,
 * 2 MiB or 1 GiB; it holds the output page address and the permissions. The
 * set is chosen by the input page number (one probe per page size in use),
 * replacement is least recently used within the set.
 *
 * Everything lives in typed arrays; lookups and inserts do not allocate.
 * Invalidation scans the whole array (or probes the sets of a small range).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SetAssocTlb, TLB_KIND_S2 } from "./tlb.ts";
 * const tlb = new SetAssocTlb({ entries: 64, ways: 4 });
 * tlb.insert(1, -1, TLB_KIND_S2, 0x20_0000, 0x20_0000, 0x8000_0000, 3);
 * const i = tlb.lookup(1, -1, 0x20_1234);
 * assert(i >= 0 && tlb.translate(i, 0x20_1234) === 0x8000_1234);
 * assert(tlb.invalidate(1, -1, 0, 0, Infinity) === 1);
 * ```
 */
export class SetAssocTlb {
  /** Total entries. */
  readonly entries: number;
  /** Ways per set. */
  readonly ways: number;
  /** Number of sets. */
  readonly sets: number;
  /** Context tag A (VMID, or PASID + 1 in an ATC). */
  readonly tagA: Int32Array = EMPTY_I32;
  /** Context tag B (ASID, or -1). */
  readonly tagB: Int32Array = EMPTY_I32;
  /** Entry kind; 0 = invalid. */
  readonly kind: Uint8Array = EMPTY_U8;
  /** log2 of the page size: 12, 21 or 30. */
  readonly shift: Uint8Array = EMPTY_U8;
  /** Input page base address. */
  readonly va: Float64Array = EMPTY_F64;
  /** Output page base address. */
  readonly out: Float64Array = EMPTY_F64;
  /** Permissions (IOMMU_READ | IOMMU_WRITE). */
  readonly prot: Uint8Array = EMPTY_U8;
  /** Index of the entry the last {@linkcode SetAssocTlb.insert} wrote. */
  lastInsert: number = -1;
  /** Inserts so far. */
  inserts: number = 0;
  /** {@linkcode HOT_STRIDE} doubles per entry: the `H_*` fields. */
  readonly #hot: Float64Array = EMPTY_F64;
  readonly #validBySize = new Int32Array(3);
  /** sets - 1 when `sets` is a power of two (the set index is then a mask), else -1. */
  readonly #setMask: number;
  #clock = 0;
  /** Valid entries. */
  valid = 0;

  /** Creates an empty TLB. */
  constructor(options: SetAssocTlbOptions) {
    const { entries, ways } = options;
    const name = options.name ?? "tlb";
    if (
      !Number.isInteger(entries) || !Number.isInteger(ways) || ways < 1 ||
      entries < ways || entries % ways !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create ${name}: entries (${entries}) must be a positive multiple of ways (${ways})`,
      );
    }
    this.entries = entries;
    this.ways = ways;
    this.sets = entries / ways;
    this.#setMask = (this.sets & (this.sets - 1)) === 0 ? this.sets - 1 : -1;
    this.tagA = new Int32Array(entries);
    this.tagB = new Int32Array(entries);
    this.kind = new Uint8Array(entries);
    this.shift = new Uint8Array(entries);
    this.va = new Float64Array(entries);
    this.out = new Float64Array(entries);
    this.prot = new Uint8Array(entries);
    this.#hot = new Float64Array(entries * HOT_STRIDE);
    for (let i = 0; i < entries; i++) this.#hot[i * HOT_STRIDE + H_KEY] = -1;
  }

  #setBase(page: number): number {
    // For 0 <= page < 2^53, page & (sets - 1) === page % sets (the low bits
    // survive ToInt32), without a floating-point modulo.
    const m = this.#setMask;
    return (m >= 0 ? page & m : page % this.sets) * this.ways;
  }

  /**
   * Finds the entry translating `addr` in context (`a`, `b`); returns its
   * index or -1. A hit refreshes the entry's LRU stamp.
   */
  lookup(a: number, b: number, addr: number): number {
    // One probe per page size in use, smallest first.
    if (this.#validBySize[0] !== 0) {
      const i = this.probe4k(a, b, addr);
      if (i >= 0) return i;
    }
    return this.lookupLarge(a, b, addr);
  }

  /**
   * The 4 KiB probe of {@linkcode lookup} alone: the entry of `addr`'s
   * 4 KiB page in context (`a`, `b`), or -1 (refreshes its LRU stamp). Small
   * enough for V8 to inline into a caller's hot loop; a caller that gets -1
   * must still call {@linkcode lookupLarge} for the larger pages.
   */
  probe4k(a: number, b: number, addr: number): number {
    const page = Math.floor(addr * 2 ** -12);
    const m = this.#setMask;
    const ways = this.ways;
    const first = ((m >= 0 ? page & m : page % this.sets) * ways) | 0;
    const key = page * 2 ** 12;
    const h = this.#hot;
    const end = (first + ways) | 0;
    for (
      let i = first, o = (first * HOT_STRIDE) | 0;
      i < end;
      i = (i + 1) | 0
    ) {
      if (h[o] === key && h[(o + H_A) | 0] === a && h[(o + H_B) | 0] === b) {
        h[(o + H_STAMP) | 0] = ++this.#clock;
        return i;
      }
      o = (o + HOT_STRIDE) | 0;
    }
    return -1;
  }

  /**
   * The 2 MiB and 1 GiB probes of {@linkcode lookup} (what it tries after
   * the 4 KiB page missed): the entry's index or -1 (refreshes its LRU
   * stamp).
   */
  lookupLarge(a: number, b: number, addr: number): number {
    const valid = this.#validBySize;
    if (valid[1] !== 0) {
      const i = this.#probe(a, b, addr, 2 ** -21, 21);
      if (i >= 0) return i;
    }
    if (valid[2] !== 0) return this.#probe(a, b, addr, 2 ** -30, 30);
    return -1;
  }

  /** The way of the set of `addr`'s 2^`shift` page that matches, or -1 (refreshes its LRU stamp). */
  #probe(
    a: number,
    b: number,
    addr: number,
    inv: number,
    shift: number,
  ): number {
    const page = Math.floor(addr * inv);
    const key = page * 2 ** shift + (shift - 12);
    const first = this.#setBase(page);
    const end = first + this.ways;
    const h = this.#hot;
    for (let i = first, o = first * HOT_STRIDE; i < end; i++) {
      if (h[o + H_KEY] === key && h[o + H_A] === a && h[o + H_B] === b) {
        h[o + H_STAMP] = ++this.#clock;
        return i;
      }
      o += HOT_STRIDE;
    }
    return -1;
  }

  /**
   * A transaction's IOTLB hit in one call: {@linkcode lookup} of `addr` in
   * context (`a`, `b`) (which refreshes the entry's LRU stamp), then the
   * output address of `addr` if the entry grants every permission in
   * `need` and answers by `readyBy` ({@linkcode readyAt}), else -1 (also
   * when nothing matches).
   */
  hit(
    a: number,
    b: number,
    addr: number,
    need: number,
    readyBy: number,
  ): number {
    let i = this.probe4k(a, b, addr);
    if (i < 0) {
      i = this.lookupLarge(a, b, addr);
      if (i < 0) return -1;
    }
    const h = this.#hot, o = (i * HOT_STRIDE) | 0;
    if (
      (this.prot[i]! & need) !== need || h[(o + H_READY) | 0]! > readyBy
    ) {
      return -1;
    }
    return h[(o + H_OUT) | 0]! + (addr - h[(o + H_VA) | 0]!);
  }

  /**
   * Simulated time (ns) from which entry `i` may answer: the end of the
   * walk that filled it (0: at once). The SMMU sets it after an insert
   * ({@linkcode setReadyAt}); the TLB itself reads it only in
   * {@linkcode hit}.
   */
  readyAt(i: number): number {
    return this.#hot[i * HOT_STRIDE + H_READY]!;
  }

  /** Sets {@linkcode readyAt} of entry `i` (an insert resets it to 0). */
  setReadyAt(i: number, t: number): void {
    this.#hot[i * HOT_STRIDE + H_READY] = t;
  }

  /** The output address of `addr` through entry `i` (from {@linkcode lookup}). */
  translate(i: number, addr: number): number {
    return this.out[i]! + (addr - this.va[i]!);
  }

  /**
   * Inserts a translation of the `pageSize` page holding `inBase` to
   * `outBase` (both aligned down to `pageSize`), replacing an existing entry
   * with the same tag or the least recently used way. Returns the index.
   */
  insert(
    a: number,
    b: number,
    kind: number,
    pageSize: number,
    inBase: number,
    outBase: number,
    prot: number,
  ): number {
    const s = pageSize >= SIZES[2] ? 2 : pageSize >= SIZES[1] ? 1 : 0;
    const size = SIZES[s]!;
    const page = Math.floor(inBase * INV_SIZES[s]!);
    const va = page * size;
    const first = this.#setBase(page);
    const shift = SHIFTS[s]!;
    let same = -1, free = -1, lru = first;
    let oldest = Infinity;
    for (let i = first; i < first + this.ways; i++) {
      if (this.kind[i] === 0) {
        if (free < 0) free = i;
        continue;
      }
      if (
        this.va[i] === va && this.shift[i] === shift && this.tagA[i] === a &&
        this.tagB[i] === b
      ) {
        same = i;
        break;
      }
      const stamp = this.#hot[i * HOT_STRIDE + H_STAMP]!;
      if (stamp < oldest) {
        oldest = stamp;
        lru = i;
      }
    }
    const victim = same >= 0 ? same : free >= 0 ? free : lru;
    const i = victim;
    if (this.kind[i] !== 0) {
      this.#validBySize[(this.shift[i]! - 12) / 9]!--;
      this.valid--;
    }
    this.tagA[i] = a;
    this.tagB[i] = b;
    this.kind[i] = kind;
    this.shift[i] = shift;
    this.va[i] = va;
    const out = Math.floor(outBase / size) * size;
    this.out[i] = out;
    this.prot[i] = prot;
    const h = this.#hot, o = i * HOT_STRIDE;
    h[o + H_KEY] = kind === 0 ? -1 : va + (shift - 12);
    h[o + H_A] = this.tagA[i]!;
    h[o + H_B] = this.tagB[i]!;
    h[o + H_VA] = va;
    h[o + H_OUT] = out;
    h[o + H_READY] = 0;
    h[o + H_STAMP] = ++this.#clock;
    this.lastInsert = i;
    this.inserts++;
    this.#validBySize[s]!++;
    this.valid++;
    return i;
  }

  /** Drops entry `i`. */
  drop(i: number): void {
    if (this.kind[i] === 0) return;
    this.kind[i] = 0;
    this.#hot[i * HOT_STRIDE + H_KEY] = -1;
    this.#validBySize[(this.shift[i]! - 12) / 9]!--;
    this.valid--;
  }

  /**
   * Invalidates the valid entries matching: tag A equal to `a` (or any when
   * `a` is -1), tag B equal to `b` (any when `b` is undefined; -1 matches
   * entries without an ASID), kind in `kindMask` (bit per kind; 0 = any),
   * and a page overlapping [start, end). Returns how many were dropped.
   */
  invalidate(
    a: number,
    b: number | undefined,
    kindMask: number,
    start: number,
    end: number,
  ): number {
    if (this.valid === 0 || !(end > start)) return 0;
    if (end - start <= 16 * SIZES[0]) {
      return this.#invalidateSmall(a, b, kindMask, start, end);
    }
    let n = 0;
    for (let i = 0; i < this.entries; i++) {
      if (this.#match(i, a, b, kindMask, start, end)) {
        this.drop(i);
        n++;
      }
    }
    return n;
  }

  #match(
    i: number,
    a: number,
    b: number | undefined,
    kindMask: number,
    start: number,
    end: number,
  ): boolean {
    const k = this.kind[i]!;
    if (k === 0) return false;
    if (kindMask !== 0 && (kindMask & (1 << k)) === 0) return false;
    if (a !== -1 && this.tagA[i] !== a) return false;
    if (b !== undefined && this.tagB[i] !== b) return false;
    const va = this.va[i]!;
    return va < end && va + 2 ** this.shift[i]! > start;
  }

  #invalidateSmall(
    a: number,
    b: number | undefined,
    kindMask: number,
    start: number,
    end: number,
  ): number {
    let n = 0;
    for (let s = 0; s < 3; s++) {
      if (this.#validBySize[s] === 0) continue;
      const size = SIZES[s]!;
      const last = Math.floor((end - 1) / size);
      for (let page = Math.floor(start / size); page <= last; page++) {
        const first = this.#setBase(page);
        for (let i = first; i < first + this.ways; i++) {
          if (this.#match(i, a, b, kindMask, start, end)) {
            this.drop(i);
            n++;
          }
        }
      }
    }
    return n;
  }

  /** Invalidates everything; returns how many entries were dropped. */
  invalidateAll(): number {
    const n = this.valid;
    this.kind.fill(0);
    const h = this.#hot;
    for (let i = 0; i < this.entries; i++) h[i * HOT_STRIDE + H_KEY] = -1;
    this.#validBySize.fill(0);
    this.valid = 0;
    return n;
  }
}
