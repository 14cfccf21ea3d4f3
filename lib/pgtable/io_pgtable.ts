/**
 * The Arm LPAE io-pgtable (drivers/iommu/io-pgtable-arm.c): a 4-level,
 * 4 KiB granule, 48-bit page table for stage 1 (AP bits, nG) or stage 2
 * (S2AP), with 2 MiB and 1 GiB blocks.
 *
 * Descriptors are real 64-bit Arm descriptors kept as pairs of 32-bit words in
 * pooled typed arrays, 512 per table page. Each table has a page "address"
 * (from an `allocTable` callback or a private bump allocator) which the table
 * descriptors above it hold and which {@linkcode WalkResult.descAddrs}
 * reports. To follow a table descriptor without a hash lookup, every table at
 * levels 0-2 also keeps the pool slot of each child next to its descriptors
 * (the model's `__va()` of the address in the descriptor).
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { PROT_READ, PROT_WRITE, SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";
import type { Prot } from "../sim/units.ts";
import {
  MAX_IOVA,
  MAX_PADDR,
  protToPte,
  PTE_AF,
  PTE_TYPE_PAGE,
  PTE_TYPE_TABLE,
  PTE_VALID,
  pteToProt,
} from "./_desc.ts";
import { AddrIndex } from "./_addr_index.ts";
import { grown } from "../sim/typed.ts";

export {
  IAS_BITS,
  levelSize,
  MAIR_ATTR_IDX_CACHE,
  MAX_IOVA,
  MAX_PADDR,
  protToPte,
  PTE_AF,
  PTE_AP_RDONLY,
  PTE_AP_UNPRIV,
  PTE_ATTRINDX_SHIFT,
  PTE_MEMATTR_OIWB,
  PTE_NG,
  PTE_S2AP_READ,
  PTE_S2AP_WRITE,
  PTE_SH_IS,
  PTE_TYPE_PAGE,
  PTE_TYPE_TABLE,
  PTE_VALID,
  pteAddress,
  pteIsLeaf,
  pteIsTable,
  pteToProt,
} from "./_desc.ts";

/** The translation stage a table is for: 1 (IOVA -> IPA/PA) or 2 (IPA -> PA). */
export type PgtableStage = 1 | 2;

/** The page sizes a 4 KiB granule table can map: 4 KiB, 2 MiB, 1 GiB. */
export const PGSIZE_BITMAP_4K = SZ_4K | SZ_2M | SZ_1G;

/** Options of {@linkcode IoPgtable}. */
export interface IoPgtableOptions {
  /** Translation stage: 1 (AP permissions, nG set) or 2 (S2AP). */
  stage: PgtableStage;
  /**
   * Page sizes `map` may use, a subset of 4K|2M|1G that includes 4K
   * (like io_pgtable_cfg.pgsize_bitmap). Default: 4K|2M|1G.
   */
  pgsizeBitmap?: number;
  /**
   * Returns the address of a fresh 4 KiB table page (4 KiB aligned, below
   * 2^48, not in use by this table). May throw (for example ENOMEM); the
   * operation that needed the page then fails with the table unchanged.
   * Default: a private bump allocator from 0x800000000000 up, shared by all
   * tables of the process so that table addresses are unique.
   */
  allocTable?: () => number;
  /**
   * Called with the address of a table page the table no longer uses (it
   * became empty). Default: hand it back to the private allocator if it
   * came from there, otherwise drop it.
   */
  freeTable?: (addr: number) => void;
  /**
   * Whether `unmap` splits a block it only partly covers
   * (arm_lpae_split_blk_unmap(), removed upstream in v6.13 by
   * "iommu/io-pgtable-arm: Remove split on unmap behavior", 33729a5fc0ca).
   * Default false, as mainline since v6.13: unmapping part of a block fails
   * (EINVAL here; mainline WARNs "Unmap of a partial large IOPTE is not
   * allowed" and unmaps nothing). True is the pre-6.13 behaviour, a what-if.
   */
  splitOnUnmap?: boolean;
}

/**
 * The result of a table walk, filled in place by {@linkcode IoPgtable.walk}
 * so that a caller can reuse one object for every walk.
 */
export interface WalkResult {
  /** True when the walk found a valid page or block. */
  ok: boolean;
  /** The output address of the IOVA, or -1 when `ok` is false. */
  pa: number;
  /** Effective permissions ({@linkcode PROT_READ} | {@linkcode PROT_WRITE}); 0 on a fault. */
  prot: Prot;
  /** Size of the page or block found (4 KiB, 2 MiB, 1 GiB); 0 on a fault. */
  pageSize: number;
  /** Level (0-3) where the walk stopped: the leaf or the invalid entry. */
  level: number;
  /** Descriptors read: 4 for a page, 3 for a 2 MiB block, 2 for 1 GiB. */
  reads: number;
  /**
   * The leaf's access flag (AF, bit 10); false on a fault. `map` always
   * sets it (ARM_LPAE_PTE_AF, as io-pgtable-arm); only
   * {@linkcode IoPgtable.setAccessFlag} clears it.
   */
  af: boolean;
  /**
   * Byte address of the i-th descriptor read (table address + index * 8),
   * for i < `reads`; -1 beyond.
   */
  readonly descAddrs: Float64Array;
}

/** Returns a fresh {@linkcode WalkResult} to pass to {@linkcode IoPgtable.walk}. */
export function newWalkResult(): WalkResult {
  return {
    ok: false,
    pa: -1,
    prot: 0,
    pageSize: 0,
    level: 0,
    reads: 0,
    af: false,
    descAddrs: new Float64Array(4).fill(-1),
  };
}

/** One mapped extent reported by {@linkcode IoPgtable.forEachMapping}. */
export interface Mapping {
  /** First IOVA of the extent. */
  readonly iova: number;
  /** Output address of `iova`. */
  readonly pa: number;
  /** Bytes in the extent. */
  readonly size: number;
  /** Effective permissions. */
  readonly prot: Prot;
}

/** Options of {@linkcode IoPgtable.forEachMapping}. */
export interface ForEachMappingOptions {
  /**
   * Report each page and block descriptor on its own instead of merging
   * neighbours that continue each other (same permissions, contiguous
   * output). Default false.
   */
  leaves?: boolean;
}

/**
 * Cumulative counters of the work a table did, for pricing an operation (take
 * the difference before and after it).
 */
export interface PgtableStats {
  /** Page and block descriptors written (including those a split writes). */
  readonly leavesWritten: number;
  /** Page and block descriptors cleared by unmap. */
  readonly leavesCleared: number;
  /** Table pages allocated, the root included. */
  readonly tablesAllocated: number;
  /** Table pages freed because they became empty. */
  readonly tablesFreed: number;
  /** Blocks replaced by a next-level table on a partial unmap. */
  readonly blocksSplit: number;
}

/**
 * What {@linkcode IoPgtable.mapPages} did, filled as it goes (so also when it
 * throws): the pages it mapped, and the table pages each of them allocated.
 */
export interface MapPagesProgress {
  /** Pages mapped, in order from the first (those before a failing one). */
  pages: number;
  /**
   * `tables[k]`: table pages page k's map allocated (what
   * `stats.tablesAllocated` grew by in its single map call); at least as
   * long as the batch.
   */
  tables: Uint8Array;
}

// ---------------------------------------------------------------------------
// Private table pool

/** log2 of the tables per pool chunk. */
const CHUNK_SHIFT = 6;
const CHUNK_TABLES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_TABLES - 1;
/** 32-bit words per table: 512 descriptors of two words. */
const TABLE_WORDS = 1024;
const ENTRIES = 512;
const TWO32 = 2 ** 32;
const SPAN = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12] as const;
/**
 * 1 / SPAN. Multiplying by a power of two is exact, so `x * INV_SPAN[l]`
 * equals `x / SPAN[l]` bit for bit and `Number.isInteger(x * INV_...)`
 * equals `x % size === 0`, without a division or a (library call)
 * floating-point modulo on every map and walk.
 */
const INV_SPAN = [2 ** -39, 2 ** -30, 2 ** -21, 2 ** -12] as const;
const INV_4K = 2 ** -12;
const INV_2M = 2 ** -21;
const INV_1G = 2 ** -30;
const LEAF_OA_MASK = [0, 0xc0000000 | 0, 0xffe00000 | 0, 0xfffff000 | 0];

/**
 * Table pages of one kind (directory tables of levels 0-2, or leaf tables of
 * level 3) in chunks of {@linkcode CHUNK_TABLES}; chunk 0 starts small and
 * grows so that small tables stay small.
 */
class TablePool {
  /** Descriptor words: table `s`, entry `i` at `desc[s >> 6][(s & 63) * 1024 + 2i]` (lo, hi). */
  readonly desc: Uint32Array[] = [];
  /** For directory pools: pool slot of each child table, `(s & 63) * 512 + i`. */
  readonly child: Int32Array[] | null;
  /** Table page address of each slot. */
  addr = new Float64Array(4);
  /** Valid descriptors in each slot. */
  used = new Uint16Array(4);
  #free: number[] = [];
  #next = 0;

  constructor(withChild: boolean) {
    this.child = withChild ? [] : null;
  }

  alloc(address: number): number {
    const slot = this.#free.pop() ?? this.#next++;
    if (slot >= this.addr.length) {
      const a = new Float64Array(this.addr.length * 2);
      a.set(this.addr);
      this.addr = a;
      const u = new Uint16Array(this.used.length * 2);
      u.set(this.used);
      this.used = u;
    }
    const ci = slot >>> CHUNK_SHIFT;
    const inChunk = (slot & CHUNK_MASK) + 1;
    let chunk = this.desc[ci];
    if (chunk === undefined || chunk.length < inChunk * TABLE_WORDS) {
      // Chunk 0 doubles up to a full chunk; later chunks are full at once.
      const had = (chunk?.length ?? 0) / TABLE_WORDS;
      const tables = ci === 0
        ? Math.min(CHUNK_TABLES, Math.max(inChunk, had * 2))
        : CHUNK_TABLES;
      const d = new Uint32Array(tables * TABLE_WORDS);
      if (chunk) d.set(chunk);
      this.desc[ci] = chunk = d;
      if (this.child) {
        const c = new Int32Array(tables * ENTRIES);
        const old = this.child[ci];
        if (old) c.set(old);
        this.child[ci] = c;
      }
    }
    const base = (slot & CHUNK_MASK) * TABLE_WORDS;
    chunk.fill(0, base, base + TABLE_WORDS);
    this.addr[slot] = address;
    this.used[slot] = 0;
    return slot;
  }

  release(slot: number): void {
    this.#free.push(slot);
  }
}

/** Largest offset a compact leaf entry holds (output frame - base + 1). */
const COMPACT_MAX = 0xffff;
/** How far below its first output frame a compact table's base goes. */
const COMPACT_BELOW = 0x8000;

/** Forms of a leaf table in {@linkcode LeafPool}. */
const COMPACT = 0, WIDE = 1, SPARSE = 2;
/** Valid entries a sparse leaf table holds at most. */
const SPARSE_MAX = 8;

/**
 * Leaf (level 3) table pages, each in one of three forms:
 *
 * - sparse, while it holds at most {@linkcode SPARSE_MAX} valid entries:
 *   (index, descriptor) triples, 64 bytes, so that faults scattered over a
 *   large space (one page per 2 MiB) do not each cost a table array;
 * - compact, while all its valid entries have the same low attribute bits
 *   and output frames within 1..65535 of its base (set from its first
 *   entry, half a window below it), as the tables of a range pinned or
 *   mapped in one go are: one 16-bit word per entry (0: invalid, else the
 *   output frame - base + 1), 1 KiB a table instead of 4 KiB;
 * - wide, for good once an entry fits neither: real descriptor words, two
 *   per entry, as {@linkcode TablePool} keeps them.
 *
 * Whatever the form, {@linkcode lo} and {@linkcode hi} return exactly the
 * descriptor {@linkcode set} wrote (and 0, 0 for an invalid entry).
 */
class LeafPool {
  /** Per slot: its form (COMPACT, WIDE, SPARSE). */
  kind = new Uint8Array(4);
  /** Compact arrays: compact index `x`, entry `i` at `off[x >> 6][(x & 63) * 512 + i]`. */
  readonly off: Uint16Array[] = [];
  /** Per slot: its compact index (compact tables). */
  cix = new Int32Array(4);
  #cfree: number[] = [];
  #cnext = 0;
  /** Per slot: base output frame of a compact table (-1 before its first entry). */
  base = new Float64Array(4);
  /** Per slot: the low descriptor word's attribute bits of a compact table. */
  attr = new Uint16Array(4);
  /** Per slot: its index in the wide pool (wide tables). */
  wide = new Int32Array(4);
  /** Wide tables' descriptor words: index `w`, entry `i` at `wdesc[w >> 6][(w & 63) * 1024 + 2i]`. */
  readonly wdesc: Uint32Array[] = [];
  #wfree: number[] = [];
  #wnext = 0;
  /** Sparse tables: entries held, and (index, lo, hi) at `s * SPARSE_MAX + j`. */
  #spN = new Uint8Array(4);
  #spI = new Uint16Array(4 * SPARSE_MAX);
  #spLo = new Uint32Array(4 * SPARSE_MAX);
  #spHi = new Uint16Array(4 * SPARSE_MAX);
  /** Table page address of each slot. */
  addr = new Float64Array(4);
  /** Valid descriptors in each slot. */
  used = new Uint16Array(4);
  #free: number[] = [];
  #next = 0;

  alloc(address: number): number {
    const slot = this.#free.pop() ?? this.#next++;
    if (slot >= this.addr.length) this.#grow();
    this.kind[slot] = SPARSE;
    this.#spN[slot] = 0;
    this.addr[slot] = address;
    this.used[slot] = 0;
    return slot;
  }

  /** Doubles the per-slot arrays. */
  #grow(): void {
    const n = this.addr.length * 2;
    this.addr = grown(this.addr, n);
    this.used = grown(this.used, n);
    this.base = grown(this.base, n);
    this.attr = grown(this.attr, n);
    this.wide = grown(this.wide, n);
    this.cix = grown(this.cix, n);
    this.kind = grown(this.kind, n);
    this.#spN = grown(this.#spN, n);
    this.#spI = grown(this.#spI, n * SPARSE_MAX);
    this.#spLo = grown(this.#spLo, n * SPARSE_MAX);
    this.#spHi = grown(this.#spHi, n * SPARSE_MAX);
  }

  /** Gives table `slot` a compact array of invalid entries (base unset). */
  #makeCompact(slot: number): void {
    const x = this.#cfree.pop() ?? this.#cnext++;
    const ci = x >>> CHUNK_SHIFT;
    const inChunk = (x & CHUNK_MASK) + 1;
    const chunk = this.off[ci];
    if (chunk === undefined || chunk.length < inChunk * ENTRIES) {
      // Chunk 0 doubles up to a full chunk; later chunks are full at once.
      const had = (chunk?.length ?? 0) / ENTRIES;
      const tables = ci === 0
        ? Math.min(CHUNK_TABLES, Math.max(inChunk, had * 2))
        : CHUNK_TABLES;
      const d = new Uint16Array(tables * ENTRIES);
      if (chunk) d.set(chunk);
      this.off[ci] = d;
    } else {
      const o = (x & CHUNK_MASK) * ENTRIES;
      chunk.fill(0, o, o + ENTRIES);
    }
    this.kind[slot] = COMPACT;
    this.cix[slot] = x;
    this.base[slot] = -1;
    this.attr[slot] = 0;
  }

  release(slot: number): void {
    const k = this.kind[slot]!;
    if (k === WIDE) this.#wfree.push(this.wide[slot]!);
    else if (k === COMPACT) this.#cfree.push(this.cix[slot]!);
    this.kind[slot] = SPARSE;
    this.#spN[slot] = 0;
    this.#free.push(slot);
  }

  /** Where entry i of sparse table `slot` is in the sparse arrays, or -1. */
  #find(slot: number, i: number): number {
    const o = slot * SPARSE_MAX, end = o + this.#spN[slot]!, idx = this.#spI;
    for (let j = o; j < end; j++) if (idx[j] === i) return j;
    return -1;
  }

  /** Whether entry i of table `slot` is valid. */
  valid(slot: number, i: number): boolean {
    const k = this.kind[slot]!;
    if (k === COMPACT) {
      const x = this.cix[slot]!;
      return this.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i] !== 0;
    }
    if (k === SPARSE) return this.#find(slot, i) >= 0;
    const w = this.wide[slot]!;
    return (this
      .wdesc[w >>> CHUNK_SHIFT]![((w & CHUNK_MASK) << 10) | (i << 1)]! &
      PTE_VALID) !== 0;
  }

  /** The low descriptor word of entry i of table `slot`. */
  lo(slot: number, i: number): number {
    const k = this.kind[slot]!;
    if (k === WIDE) {
      const w = this.wide[slot]!;
      return this
        .wdesc[w >>> CHUNK_SHIFT]![((w & CHUNK_MASK) << 10) | (i << 1)]!;
    }
    if (k === SPARSE) {
      const j = this.#find(slot, i);
      return j < 0 ? 0 : this.#spLo[j]!;
    }
    const x = this.cix[slot]!;
    const e = this.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i]!;
    if (e === 0) return 0;
    const frame = this.base[slot]! + e - 1;
    return (((frame % 0x100000) * SZ_4K) | this.attr[slot]!) >>> 0;
  }

  /** The high descriptor word of entry i of table `slot`. */
  hi(slot: number, i: number): number {
    const k = this.kind[slot]!;
    if (k === WIDE) {
      const w = this.wide[slot]!;
      return this.wdesc[w >>> CHUNK_SHIFT]![
        (((w & CHUNK_MASK) << 10) | (i << 1)) + 1
      ]!;
    }
    if (k === SPARSE) {
      const j = this.#find(slot, i);
      return j < 0 ? 0 : this.#spHi[j]!;
    }
    const x = this.cix[slot]!;
    const e = this.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i]!;
    if (e === 0) return 0;
    return Math.floor((this.base[slot]! + e - 1) / 0x100000) & 0xffff;
  }

  /**
   * Writes entry i of table `slot`: a valid page descriptor for the 4 KiB
   * aligned output address `pa` with low attribute bits `a` (page type and
   * valid included).
   */
  set(slot: number, i: number, pa: number, a: number): void {
    let k = this.kind[slot]!;
    if (k === SPARSE) {
      let j = this.#find(slot, i);
      if (j < 0) {
        const n = this.#spN[slot]!;
        if (n < SPARSE_MAX) {
          j = slot * SPARSE_MAX + n;
          this.#spI[j] = i;
          this.#spN[slot] = n + 1;
        }
      }
      if (j >= 0) {
        this.#spLo[j] = (pa & 0xfffff000) | a;
        this.#spHi[j] = (pa / TWO32) & 0xffff;
        return;
      }
      this.#promote(slot);
      k = COMPACT;
    }
    if (k === COMPACT) {
      const frame = pa * INV_4K;
      let base = this.base[slot]!;
      if (base < 0) {
        base = frame > COMPACT_BELOW ? frame - COMPACT_BELOW : 0;
        this.base[slot] = base;
        this.attr[slot] = a;
      }
      const e = frame - base + 1;
      if (a === this.attr[slot] && e >= 1 && e <= COMPACT_MAX) {
        const x = this.cix[slot]!;
        this.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i] = e;
        return;
      }
      this.#widen(slot);
    }
    const w = this.wide[slot]!;
    const c = this.wdesc[w >>> CHUNK_SHIFT]!;
    const o = ((w & CHUNK_MASK) << 10) | (i << 1);
    c[o] = (pa & 0xfffff000) | a;
    c[o + 1] = (pa / TWO32) & 0xffff;
  }

  /** A full sparse table becomes compact (or wide) with the entries it held. */
  #promote(slot: number): void {
    const o = slot * SPARSE_MAX, n = this.#spN[slot]!;
    const idx = this.#spI.slice(o, o + n);
    const los = this.#spLo.slice(o, o + n);
    const his = this.#spHi.slice(o, o + n);
    this.#spN[slot] = 0;
    this.#makeCompact(slot);
    for (let j = 0; j < n; j++) {
      const lo = los[j]!;
      const pa = his[j]! * TWO32 + ((lo & 0xfffff000) >>> 0);
      this.set(slot, idx[j]!, pa, lo & 0xfff);
    }
  }

  /**
   * {@linkcode set} of entries i..i+n-1 to the consecutive pages from `pa`
   * (a contiguous run, written in one loop when it fits the compact form).
   */
  setRun(slot: number, i: number, n: number, pa: number, a: number): void {
    if (this.kind[slot] === SPARSE && this.#spN[slot]! + n > SPARSE_MAX) {
      this.#promote(slot);
    }
    if (this.kind[slot] === COMPACT && n > 0) {
      const frame = pa * INV_4K;
      let base = this.base[slot]!;
      if (base < 0) {
        base = frame > COMPACT_BELOW ? frame - COMPACT_BELOW : 0;
        this.base[slot] = base;
        this.attr[slot] = a;
      }
      const e = frame - base + 1;
      if (a === this.attr[slot] && e >= 1 && e + n - 1 <= COMPACT_MAX) {
        const x = this.cix[slot]!;
        const c = this.off[x >>> CHUNK_SHIFT]!;
        const o = ((x & CHUNK_MASK) << 9) | i;
        for (let k = 0; k < n; k++) c[o + k] = e + k;
        return;
      }
    }
    for (let k = 0; k < n; k++) this.set(slot, i + k, pa + k * SZ_4K, a);
  }

  /** Invalidates entry i of table `slot` (both words 0). */
  clear(slot: number, i: number): void {
    const k = this.kind[slot]!;
    if (k === COMPACT) {
      const x = this.cix[slot]!;
      this.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i] = 0;
      return;
    }
    if (k === SPARSE) {
      const j = this.#find(slot, i);
      if (j < 0) return;
      // The last entry takes its place.
      const last = slot * SPARSE_MAX + this.#spN[slot]! - 1;
      this.#spI[j] = this.#spI[last]!;
      this.#spLo[j] = this.#spLo[last]!;
      this.#spHi[j] = this.#spHi[last]!;
      this.#spN[slot] = this.#spN[slot]! - 1;
      return;
    }
    const w = this.wide[slot]!;
    const c = this.wdesc[w >>> CHUNK_SHIFT]!;
    const o = ((w & CHUNK_MASK) << 10) | (i << 1);
    c[o] = 0;
    c[o + 1] = 0;
  }

  /** Makes compact table `slot` wide (its descriptors in words). */
  #widen(slot: number): void {
    const w = this.#wfree.pop() ?? this.#wnext++;
    const ci = w >>> CHUNK_SHIFT;
    let chunk = this.wdesc[ci];
    if (chunk === undefined) {
      chunk = new Uint32Array(CHUNK_TABLES * TABLE_WORDS);
      this.wdesc[ci] = chunk;
    }
    const t = (w & CHUNK_MASK) << 10;
    for (let i = 0; i < ENTRIES; i++) {
      chunk[t | (i << 1)] = this.lo(slot, i);
      chunk[(t | (i << 1)) + 1] = this.hi(slot, i);
    }
    this.#cfree.push(this.cix[slot]!);
    this.kind[slot] = WIDE;
    this.wide[slot] = w;
  }
}

// ---------------------------------------------------------------------------
// The default table page allocator (shared so that addresses are unique)

const DEFAULT_TABLE_BASE = 2 ** 47;
let defaultNext = DEFAULT_TABLE_BASE;
const defaultFreed: number[] = [];

function defaultAllocTable(): number {
  const a = defaultFreed.pop();
  if (a !== undefined) return a;
  if (defaultNext >= MAX_PADDR) {
    throw new IopfLabError(
      "ENOMEM",
      "Cannot allocate a page table: the default table address range is exhausted",
    );
  }
  const r = defaultNext;
  defaultNext += SZ_4K;
  return r;
}

function defaultFreeTable(addr: number): void {
  defaultFreed.push(addr);
}

/**
 * The start of map's error messages, formatted only when one is thrown (a
 * string or closure built on every call would cost every fault).
 */
function mapWhat(iova: number, size: number): string {
  return `Cannot map IOVA ${hex(iova)}-${hex(iova + size)}`;
}

// ---------------------------------------------------------------------------

/**
 * An Arm LPAE I/O page table: 4 KiB granule, levels 0-3, 48-bit IOVAs and
 * output addresses, stage 1 or stage 2.
 *
 * `map` picks the largest allowed page size for each chunk (like
 * iommu_pgsize()) and is all-or-nothing; `unmap` refuses a range that covers
 * only part of a block (mainline since v6.13; with `splitOnUnmap` it splits
 * the block as arm_lpae_split_blk_unmap() did before) and frees table pages
 * that become empty; `walk` reports what an SMMU table walker would read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IoPgtable, newWalkResult } from "./io_pgtable.ts";
 * import { PROT_READ, PROT_WRITE, SZ_2M } from "../sim/units.ts";
 *
 * const pt = new IoPgtable({ stage: 2 });
 * pt.map(0x4000_0000, 0x8000_0000, SZ_2M, PROT_READ | PROT_WRITE);
 * const w = pt.walk(0x4000_1234, newWalkResult());
 * assert(w.ok && w.pa === 0x8000_1234 && w.pageSize === SZ_2M);
 * assert(w.reads === 3 && w.level === 2);
 * // Part of a block cannot be unmapped (v6.13+); the whole block can.
 * assert.throws(() => pt.unmap(0x4000_0000, 0x1000), { code: "EINVAL" });
 * assert(pt.unmap(0x4000_0000, SZ_2M) === SZ_2M);
 * assert(pt.iovaToPhys(0x4000_0000) === -1);
 * ```
 */
export class IoPgtable {
  readonly #stage: PgtableStage;
  readonly #bitmap: number;
  readonly #alloc: () => number;
  readonly #free: ((addr: number) => void) | undefined;
  readonly #splitOnUnmap: boolean;
  /** Tables of levels 0-2; slot 0 is the root (level 0). */
  readonly #dir = new TablePool(true);
  /** Tables of level 3. */
  readonly #leaf = new LeafPool();
  /** Table page address -> slot * 2 + (1 for a leaf table). */
  readonly #byAddr = new AddrIndex();
  /** Table pages reserved ahead of an unmap that must split blocks. */
  readonly #spare: number[] = [];
  readonly #rootAddr: number;
  #mappedBytes = 0;
  #tablePages = 0;
  readonly #stats = {
    leavesWritten: 0,
    leavesCleared: 0,
    tablesAllocated: 0,
    tablesFreed: 0,
    blocksSplit: 0,
  };
  readonly #scratch = newWalkResult();
  /**
   * The leaf table last found or made by {@linkcode #tableFor}: the 2 MiB
   * region it covers (-1: none) and its slot. Maps of consecutive 4 KiB
   * pages then skip the walk from the root; freeing any table forgets it.
   */
  #leafBase = -1;
  #leafSlot = 0;

  /**
   * Creates an empty table (just the root page).
   *
   * @param options the stage, page sizes and table page allocator
   * @throws {IopfLabError} EINVAL for a bad stage or page size bitmap
   */
  constructor(options: IoPgtableOptions) {
    const { stage, pgsizeBitmap = PGSIZE_BITMAP_4K } = options;
    if (stage !== 1 && stage !== 2) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create an io-pgtable: stage must be 1 or 2, got ${
          String(stage)
        }`,
      );
    }
    if (
      !Number.isInteger(pgsizeBitmap) || (pgsizeBitmap & SZ_4K) === 0 ||
      (pgsizeBitmap & ~PGSIZE_BITMAP_4K) !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create an io-pgtable: pgsizeBitmap ${
          hex(pgsizeBitmap)
        } must include 4K and use only 4K|2M|1G`,
      );
    }
    this.#stage = stage;
    this.#bitmap = pgsizeBitmap;
    this.#splitOnUnmap = options.splitOnUnmap ?? false;
    if (options.allocTable) {
      this.#alloc = options.allocTable;
      this.#free = options.freeTable;
    } else {
      this.#alloc = defaultAllocTable;
      this.#free = options.freeTable ?? defaultFreeTable;
    }
    const root = this.#takeTableAddr();
    this.#rootAddr = root;
    this.#installSlot(root, 0);
  }

  static #unmapGen = 0;

  /**
   * A counter over every table of the process that moves on each unmap
   * (the only operation that changes or removes a translation: map refuses
   * to replace one). While it stands still, every {@linkcode iovaToPhys}
   * answer any table gave stays true.
   */
  static get unmapGeneration(): number {
    return IoPgtable.#unmapGen;
  }

  /** The translation stage (1 or 2). */
  get stage(): PgtableStage {
    return this.#stage;
  }

  /** The page sizes `map` may use. */
  get pgsizeBitmap(): number {
    return this.#bitmap;
  }

  /** Address of the level-0 table (what TTB0 or S2TTB points at). */
  get root(): number {
    return this.#rootAddr;
  }

  /** Bytes currently mapped. */
  get mappedBytes(): number {
    return this.#mappedBytes;
  }

  /** Table pages in use, the root included. */
  get tablePages(): number {
    return this.#tablePages;
  }

  /** Cumulative work counters (live; read the fields before and after). */
  get stats(): PgtableStats {
    return this.#stats;
  }

  // -------------------------------------------------------------------------
  // Translation

  /**
   * Walks the table for `iova` as the hardware walker would and fills `out`
   * (no allocation). An IOVA outside [0, 2^48) faults with no reads.
   *
   * @param iova the input address (a whole number)
   * @param out the result to fill, from {@linkcode newWalkResult}
   * @returns `out`
   */
  walk(iova: number, out: WalkResult): WalkResult {
    const addrs = out.descAddrs;
    out.ok = false;
    out.pa = -1;
    out.prot = 0;
    out.pageSize = 0;
    out.level = 0;
    out.reads = 0;
    out.af = false;
    addrs[0] = -1;
    addrs[1] = -1;
    addrs[2] = -1;
    addrs[3] = -1;
    if (!(iova >= 0 && iova < MAX_IOVA)) return out;
    const dir = this.#dir;
    let slot = 0;
    for (let level = 0; level < 3; level++) {
      const i = (iova * INV_SPAN[level]!) & 511;
      const c = dir.desc[slot >>> CHUNK_SHIFT]!;
      const o = ((slot & CHUNK_MASK) << 10) | (i << 1);
      addrs[level] = dir.addr[slot]! + i * 8;
      out.reads = level + 1;
      out.level = level;
      const lo = c[o]!;
      if ((lo & PTE_VALID) === 0) return out;
      if ((lo & PTE_TYPE_TABLE) === 0) {
        if (level === 0) return out; // no level-0 blocks with a 4K granule
        return this.#leafResult(out, lo, c[o + 1]!, level, iova);
      }
      slot = dir.child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i]!;
    }
    const leaf = this.#leaf;
    const i = (iova >>> 12) & 511;
    addrs[3] = leaf.addr[slot]! + i * 8;
    out.reads = 4;
    out.level = 3;
    const kind = leaf.kind[slot]!;
    if (kind === COMPACT) {
      // A compact table: every valid entry is a page with the table's attributes.
      const x = leaf.cix[slot]!;
      const e = leaf.off[x >>> CHUNK_SHIFT]![((x & CHUNK_MASK) << 9) | i]!;
      if (e === 0) return out;
      out.ok = true;
      out.pageSize = SZ_4K;
      out.prot = pteToProt(this.#stage, leaf.attr[slot]!);
      out.af = (leaf.attr[slot]! & PTE_AF) !== 0;
      out.pa = (leaf.base[slot]! + e - 1) * SZ_4K + (iova & 0xfff);
      return out;
    }
    if (kind === SPARSE) {
      const lo = leaf.lo(slot, i);
      if ((lo & 3) !== 3) return out;
      return this.#leafResult(out, lo, leaf.hi(slot, i), 3, iova);
    }
    const w = leaf.wide[slot]!;
    const c = leaf.wdesc[w >>> CHUNK_SHIFT]!;
    const o = ((w & CHUNK_MASK) << 10) | (i << 1);
    const lo = c[o]!;
    if ((lo & 3) !== 3) return out;
    return this.#leafResult(out, lo, c[o + 1]!, 3, iova);
  }

  #leafResult(
    out: WalkResult,
    lo: number,
    hi: number,
    level: number,
    iova: number,
  ): WalkResult {
    const size = SPAN[level]!;
    out.ok = true;
    out.pageSize = size;
    out.af = (lo & PTE_AF) !== 0;
    out.prot = pteToProt(this.#stage, lo);
    out.pa = (hi & 0xffff) * TWO32 + ((lo & LEAF_OA_MASK[level]!) >>> 0) +
      (iova & (size - 1));
    return out;
  }

  /**
   * Sets (`af` true) or clears the access flag (AF, bit 10) of the page or
   * block descriptor that maps `iova`, changing nothing else: software
   * that manages AF itself (a guest OS clearing it to track accesses,
   * which io-pgtable-arm never does), or an SMMU's hardware update of the
   * flag (HTTU, IHI0070 3.13). Translations already cached elsewhere are
   * not affected. Returns false (and changes nothing) when `iova` is not
   * mapped.
   */
  setAccessFlag(iova: number, af: boolean): boolean {
    if (!(Number.isInteger(iova) && iova >= 0 && iova < MAX_IOVA)) {
      return false;
    }
    const dir = this.#dir;
    let slot = 0;
    let c: Uint32Array;
    let o: number;
    for (let level = 0;; level++) {
      if (level === 3) {
        // A leaf table: rewrite the page descriptor (a compact table whose
        // attributes no longer match all its entries becomes wide).
        const leaf = this.#leaf;
        const i = (iova >>> 12) & 511;
        if (!leaf.valid(slot, i)) return false;
        const lo = leaf.lo(slot, i);
        const pa = leaf.hi(slot, i) * TWO32 + ((lo & 0xfffff000) >>> 0);
        const a = lo & 0xfff;
        leaf.set(slot, i, pa, af ? a | PTE_AF : a & ~PTE_AF);
        return true;
      }
      const i = (iova * INV_SPAN[level]!) & 511;
      c = dir.desc[slot >>> CHUNK_SHIFT]!;
      o = ((slot & CHUNK_MASK) << 10) | (i << 1);
      const lo = c[o]!;
      if ((lo & PTE_VALID) === 0) return false;
      if ((lo & PTE_TYPE_TABLE) === 0) {
        if (level === 0) return false;
        break;
      }
      slot = dir.child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i]!;
    }
    c[o] = af ? c[o]! | PTE_AF : c[o]! & ~PTE_AF;
    return true;
  }

  /** The output address of `iova`, or -1 when it is not mapped (iommu_iova_to_phys). */
  iovaToPhys(iova: number): number {
    return this.walk(iova, this.#scratch).pa;
  }

  /**
   * The whole descriptor (as a number) at byte address `descAddr` in one of
   * this table's pages, as a table walker reading memory would see it; -1
   * when the address is not 8-byte aligned inside one of its pages.
   */
  readDescriptor(descAddr: number): number {
    const off = descAddr % SZ_4K;
    const enc = this.#byAddr.get(descAddr - off);
    if (enc < 0 || off % 8 !== 0) return -1;
    const slot = enc >>> 1;
    if ((enc & 1) === 1) {
      const leaf = this.#leaf;
      return leaf.hi(slot, off / 8) * TWO32 + leaf.lo(slot, off / 8);
    }
    const o = ((slot & CHUNK_MASK) << 10) | ((off / 8) << 1);
    const c = this.#dir.desc[slot >>> CHUNK_SHIFT]!;
    return c[o + 1]! * TWO32 + c[o]!;
  }

  // -------------------------------------------------------------------------
  // Map

  /**
   * Maps [iova, iova + size) to [paddr, paddr + size) with `prot`, each chunk
   * with the largest page size that the alignment of both addresses, the
   * remaining size and `pgsizeBitmap` allow (iommu_pgsize()). All or
   * nothing: on any error the table is unchanged. Bits of `prot` other than
   * read and write are ignored.
   *
   * @throws {IopfLabError} EINVAL for a misaligned, empty or out-of-range
   *   request or a `prot` with neither read nor write; EEXIST when part of the
   *   range is already mapped; whatever `allocTable` throws
   */
  map(iova: number, paddr: number, size: number, prot: Prot): void {
    this.#checkRange("map", iova, size);
    if (
      typeof paddr !== "number" || !Number.isInteger(paddr) || paddr < 0 ||
      !Number.isInteger(paddr * INV_4K)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${mapWhat(iova, size)}: physical address ${
          String(paddr)
        } is not a 4 KiB aligned address`,
      );
    }
    if (paddr + size > MAX_PADDR) {
      throw new IopfLabError(
        "EINVAL",
        `${mapWhat(iova, size)}: physical range ${hex(paddr)}-${
          hex(paddr + size)
        } is beyond the 48-bit output address space`,
      );
    }
    if (
      typeof prot !== "number" || (prot & (PROT_READ | PROT_WRITE)) === 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${mapWhat(iova, size)}: prot ${
          String(prot)
        } grants neither read nor write`,
      );
    }
    const hit = size === SZ_4K
      ? this.#pageMapped(iova)
      : this.#firstMapped(0, 0, 0, iova, iova + size);
    if (hit >= 0) {
      throw new IopfLabError(
        "EEXIST",
        `${mapWhat(iova, size)}: overlaps the mapping at ${hex(hit)}`,
      );
    }
    try {
      this.#mapRange(iova, paddr, size, protToPte(this.#stage, prot));
    } catch (e) {
      // Only allocTable can throw: undo what this call wrote (the range was
      // empty) and free the tables it installed.
      this.#unmapRange(0, 0, 0, iova, iova + size);
      throw e;
    }
    this.#mappedBytes += size;
  }

  /**
   * Maps `n` single 4 KiB pages: page k at `iova + k * 4 KiB` to frame
   * `pfns[from + k]` (physical address `pfns[from + k] * 4 KiB`), exactly as
   * the `n` calls `map(iova + k * 4 KiB, pfns[from + k] * 4 KiB, 4 KiB,
   * prot)` in order would: the same descriptors, table pages (allocated in
   * the same order), stats and mappedBytes, and on an error the same
   * exception as the first failing call, with the pages before it left
   * mapped (each call is all or nothing, the batch is not). The checks that
   * do not depend on the page run once; a page that looks wrong in any way
   * goes through `map` itself. `progress` says how many pages were mapped
   * and what table pages each allocated.
   *
   * @throws {IopfLabError} what the first failing `map` call throws
   */
  mapPages(
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    progress: MapPagesProgress,
  ): void {
    progress.pages = 0;
    const tables = progress.tables;
    const stats = this.#stats;
    if (
      !(typeof iova === "number" && Number.isInteger(iova) && iova >= 0 &&
        Number.isInteger(iova * INV_4K) && iova + n * SZ_4K <= MAX_IOVA &&
        typeof prot === "number" && (prot & (PROT_READ | PROT_WRITE)) !== 0)
    ) {
      // Some call fails a range or prot check: let each call find out.
      for (let k = 0; k < n; k++) {
        const t = stats.tablesAllocated;
        this.map(iova + k * SZ_4K, pfns[from + k]! * SZ_4K, SZ_4K, prot);
        tables[k] = stats.tablesAllocated - t;
        progress.pages = k + 1;
      }
      return;
    }
    const attrs = protToPte(this.#stage, prot) | PTE_VALID | PTE_TYPE_PAGE;
    const leaf = this.#leaf;
    for (let k = 0; k < n; k++) {
      const cur = iova + k * SZ_4K;
      const pa = pfns[from + k]! * SZ_4K;
      const t = stats.tablesAllocated;
      let slot = -1;
      if (
        Number.isInteger(pa) && pa >= 0 && Number.isInteger(pa * INV_4K) &&
        pa + SZ_4K <= MAX_PADDR
      ) {
        if (Math.floor(cur * INV_2M) * SZ_2M === this.#leafBase) {
          if (!leaf.valid(this.#leafSlot, (cur * INV_4K) & 511)) {
            slot = this.#leafSlot;
          }
        } else if (this.#pageMapped(cur) < 0) {
          try {
            slot = this.#tableFor(cur, 3);
          } catch (e) {
            // As map: only allocTable throws; free what this page installed.
            this.#unmapRange(0, 0, 0, cur, cur + SZ_4K);
            throw e;
          }
        }
      }
      if (slot < 0) {
        // A bad address or a mapped page: map throws what it would.
        this.map(cur, pa, SZ_4K, prot);
        tables[k] = stats.tablesAllocated - t;
        progress.pages = k + 1;
        continue;
      }
      let i = (cur * INV_4K) & 511;
      leaf.setRun(slot, i, 1, pa, attrs);
      leaf.used[slot]!++;
      stats.leavesWritten++;
      this.#mappedBytes += SZ_4K;
      tables[k] = stats.tablesAllocated - t;
      progress.pages = k + 1;
      // The next pages in this leaf table (it stays the cached one): their
      // map calls would find it at once and allocate nothing.
      const end = Math.min(n, k + ENTRIES - i);
      while (k + 1 < end) {
        const p = pfns[from + k + 1]! * SZ_4K;
        if (
          !Number.isInteger(p) || p < 0 || !Number.isInteger(p * INV_4K) ||
          p + SZ_4K > MAX_PADDR || leaf.valid(slot, i + 1)
        ) break;
        k++;
        i++;
        leaf.setRun(slot, i, 1, p, attrs);
        leaf.used[slot]!++;
        stats.leavesWritten++;
        this.#mappedBytes += SZ_4K;
        tables[k] = 0;
        progress.pages = k + 1;
      }
    }
  }

  #checkRange(op: "map" | "unmap", iova: number, size: number): void {
    if (
      typeof iova !== "number" || !Number.isInteger(iova) || iova < 0 ||
      !Number.isInteger(iova * INV_4K)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${op} IOVA ${String(iova)}: not a 4 KiB aligned address`,
      );
    }
    if (
      typeof size !== "number" || !Number.isInteger(size) || size <= 0 ||
      !Number.isInteger(size * INV_4K)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${op} IOVA ${hex(iova)}: size ${
          String(size)
        } is not a positive multiple of 4 KiB`,
      );
    }
    if (iova + size > MAX_IOVA) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${op} IOVA ${hex(iova)}-${
          hex(iova + size)
        }: beyond the 48-bit input address space`,
      );
    }
  }

  /** First mapped IOVA in [start, end) under the table `slot` at `level` whose entry 0 maps `base`; -1 if none. */
  #firstMapped(
    slot: number,
    level: number,
    base: number,
    start: number,
    end: number,
  ): number {
    const span = SPAN[level]!;
    const inv = INV_SPAN[level]!;
    const i0 = Math.floor((start - base) * inv);
    const i1 = Math.floor((end - 1 - base) * inv);
    if (level === 3) {
      const leaf = this.#leaf;
      for (let i = i0; i <= i1; i++) {
        if (leaf.valid(slot, i)) return base + i * span;
      }
      return -1;
    }
    const c = this.#dir.desc[slot >>> CHUNK_SHIFT]!;
    const t = (slot & CHUNK_MASK) << 10;
    for (let i = i0; i <= i1; i++) {
      const lo = c[t | (i << 1)]!;
      if ((lo & PTE_VALID) === 0) continue;
      const eb = base + i * span;
      if ((lo & PTE_TYPE_TABLE) === 0) return Math.max(start, eb);
      const child = this.#dir.child![slot >>> CHUNK_SHIFT]![
        ((slot & CHUNK_MASK) << 9) | i
      ]!;
      const r = this.#firstMapped(
        child,
        level + 1,
        eb,
        Math.max(start, eb),
        Math.min(end, eb + span),
      );
      if (r >= 0) return r;
    }
    return -1;
  }

  /**
   * {@linkcode #firstMapped} of the single 4 KiB page at `iova` (the common
   * map of an IOPF or of a scattered 4 KiB frame), as a loop: `iova` when a
   * valid entry on its path maps it, else -1.
   */
  #pageMapped(iova: number): number {
    if (Math.floor(iova * INV_2M) * SZ_2M === this.#leafBase) {
      // The leaf table of this region exists, so the path holds tables only.
      return this.#leaf.valid(this.#leafSlot, (iova * INV_4K) & 511)
        ? iova
        : -1;
    }
    const dir = this.#dir;
    let slot = 0;
    for (let level = 0; level < 3; level++) {
      const i = (iova * INV_SPAN[level]!) & 511;
      const lo = dir.desc[slot >>> CHUNK_SHIFT]![
        ((slot & CHUNK_MASK) << 10) | (i << 1)
      ]!;
      if ((lo & PTE_VALID) === 0) return -1;
      if ((lo & PTE_TYPE_TABLE) === 0) return iova; // a block
      slot = dir.child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i]!;
    }
    return this.#leaf.valid(slot, (iova * INV_4K) & 511) ? iova : -1;
  }

  /** Writes the leaves of a checked, empty range. */
  #mapRange(iova: number, paddr: number, size: number, attrs: number): void {
    const bitmap = this.#bitmap;
    const pageAttrs = attrs | PTE_VALID | PTE_TYPE_PAGE;
    const blockAttrs = attrs | PTE_VALID;
    let cur = iova;
    let pa = paddr;
    let left = size;
    while (left > 0) {
      let level: 1 | 2 | 3 = 3;
      if (
        (bitmap & SZ_1G) !== 0 && left >= SZ_1G &&
        Number.isInteger(cur * INV_1G) && Number.isInteger(pa * INV_1G)
      ) {
        level = 1;
      } else if (
        (bitmap & SZ_2M) !== 0 && left >= SZ_2M &&
        Number.isInteger(cur * INV_2M) && Number.isInteger(pa * INV_2M)
      ) {
        level = 2;
      }
      const span = SPAN[level]!;
      const slot = this.#tableFor(cur, level);
      const inv = INV_SPAN[level]!;
      const i = (cur * inv) & 511;
      // Stay inside this table: the next bigger page size can only start at
      // the next table boundary.
      const n = Math.min(ENTRIES - i, Math.floor(left * inv));
      if (level === 3) {
        const leaf = this.#leaf;
        leaf.setRun(slot, i, n, pa, pageAttrs);
        leaf.used[slot]! += n;
      } else {
        const dir = this.#dir;
        const c = dir.desc[slot >>> CHUNK_SHIFT]!;
        let o = ((slot & CHUNK_MASK) << 10) | (i << 1);
        let p = pa;
        for (let k = 0; k < n; k++) {
          c[o] = (p & 0xfffff000) | blockAttrs;
          c[o + 1] = (p / TWO32) & 0xffff;
          o += 2;
          p += span;
        }
        dir.used[slot]! += n;
      }
      this.#stats.leavesWritten += n;
      const bytes = n * span;
      cur += bytes;
      pa += bytes;
      left -= bytes;
    }
  }

  /**
   * Slot of the table at `level` (1-3) that covers `iova`, installing missing
   * tables on the way. The path must hold no block (map checks first).
   */
  #tableFor(iova: number, level: number): number {
    const region = level === 3 ? Math.floor(iova * INV_2M) * SZ_2M : -1;
    if (region >= 0 && region === this.#leafBase) return this.#leafSlot;
    const dir = this.#dir;
    let slot = 0;
    for (let l = 0; l < level; l++) {
      const i = (iova * INV_SPAN[l]!) & 511;
      const lo = dir.desc[slot >>> CHUNK_SHIFT]![
        ((slot & CHUNK_MASK) << 10) | (i << 1)
      ]!;
      if ((lo & PTE_VALID) === 0) {
        slot = this.#newTable(slot, i, l + 1);
      } else {
        slot = dir
          .child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i]!;
      }
    }
    if (region >= 0) {
      this.#leafBase = region;
      this.#leafSlot = slot;
    }
    return slot;
  }

  /** Gets a table page address: a reserved spare first, else allocTable. */
  #takeTableAddr(): number {
    return this.#spare.pop() ?? this.#allocTableAddr();
  }

  /** Calls allocTable and checks what it returns. */
  #allocTableAddr(): number {
    const addr = this.#alloc();
    if (
      typeof addr !== "number" || !Number.isInteger(addr) || addr < 0 ||
      addr >= MAX_PADDR || addr % SZ_4K !== 0 || this.#byAddr.has(addr)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a page table: allocTable returned ${
          String(addr)
        }, not an unused 4 KiB aligned address below 2^48`,
      );
    }
    return addr;
  }

  /** Puts a table page at `addr` in the pool for `level`; returns its slot. */
  #installSlot(addr: number, level: number): number {
    const isLeaf = level === 3;
    const slot = (isLeaf ? this.#leaf : this.#dir).alloc(addr);
    this.#byAddr.set(addr, slot * 2 + (isLeaf ? 1 : 0));
    this.#tablePages++;
    this.#stats.tablesAllocated++;
    return slot;
  }

  /**
   * Allocates a table for `level` and points entry `i` of directory table
   * `parent` at it; returns the new slot.
   */
  #newTable(parent: number, i: number, level: number): number {
    const addr = this.#takeTableAddr();
    const slot = this.#installSlot(addr, level);
    const dir = this.#dir;
    // Re-read the chunk: installing may have grown chunk 0 of the dir pool.
    const c = dir.desc[parent >>> CHUNK_SHIFT]!;
    const o = ((parent & CHUNK_MASK) << 10) | (i << 1);
    if ((c[o]! & PTE_VALID) === 0) dir.used[parent]!++;
    c[o] = (addr & 0xfffff000) | PTE_VALID | PTE_TYPE_TABLE;
    c[o + 1] = (addr / TWO32) & 0xffff;
    dir.child![parent >>> CHUNK_SHIFT]![((parent & CHUNK_MASK) << 9) | i] =
      slot;
    return slot;
  }

  /** Releases the table in `slot` at `level` (it must be empty). */
  #freeTable(slot: number, level: number): void {
    this.#leafBase = -1;
    const pool = level === 3 ? this.#leaf : this.#dir;
    const addr = pool.addr[slot]!;
    this.#byAddr.delete(addr);
    pool.release(slot);
    this.#tablePages--;
    this.#stats.tablesFreed++;
    this.#free?.(addr);
  }

  // -------------------------------------------------------------------------
  // Unmap

  /**
   * Unmaps what is mapped in [iova, iova + size) and returns the bytes
   * unmapped (holes count 0); table pages that become empty are freed. A
   * block only partly inside the range: EINVAL and nothing unmapped
   * (__arm_lpae_unmap() since v6.13), or, with `splitOnUnmap`, split into
   * next-level entries so that the rest stays mapped.
   *
   * @throws {IopfLabError} EINVAL for a misaligned, empty or out-of-range
   *   request, or one covering part of a block; whatever `allocTable` throws
   *   when a split needs a table (the table is then unchanged)
   */
  unmap(iova: number, size: number): number {
    this.#checkRange("unmap", iova, size);
    IoPgtable.#unmapGen++;
    const end = iova + size;
    if (!this.#splitOnUnmap) this.#checkNoPartialBlock(iova, end);
    // Reserve the tables the splits need, so a failing allocTable changes
    // nothing: at most one split chain at each end of the range.
    const need = this.#splitsNeeded(iova, end);
    while (this.#spare.length < need) this.#spare.push(this.#allocTableAddr());
    const bytes = this.#unmapRange(0, 0, 0, iova, end);
    this.#mappedBytes -= bytes;
    return bytes;
  }

  /** EINVAL when `start` or `end` falls inside a block (a partial unmap). */
  #checkNoPartialBlock(start: number, end: number): void {
    const w = this.#scratch;
    for (const b of [start, end]) {
      if (b >= MAX_IOVA) continue;
      this.walk(b, w);
      if (!w.ok || w.level === 3 || b % w.pageSize === 0) continue;
      const blk = b - (b % w.pageSize);
      throw new IopfLabError(
        "EINVAL",
        `Cannot unmap IOVA ${hex(start)}-${
          hex(end)
        }: it covers only part of the ${hex(w.pageSize)}-byte block at ${
          hex(blk)
        } (io-pgtable-arm does not split blocks on unmap since v6.13)`,
      );
    }
  }

  /** Number of table pages that unmapping [start, end) must allocate. */
  #splitsNeeded(start: number, end: number): number {
    const w = this.#scratch;
    let l1a = -1, l2a = -1, l1b = -1, l2b = -1;
    for (let k = 0; k < 2; k++) {
      const b = k === 0 ? start : end;
      if (b >= MAX_IOVA) continue;
      this.walk(b, w);
      if (!w.ok || w.level === 3 || b % w.pageSize === 0) continue;
      let l1 = -1, l2 = -1;
      if (w.level === 1) {
        l1 = b - (b % SZ_1G);
        if (b % SZ_2M !== 0) l2 = b - (b % SZ_2M);
      } else {
        l2 = b - (b % SZ_2M);
      }
      if (k === 0) {
        l1a = l1;
        l2a = l2;
      } else {
        l1b = l1;
        l2b = l2;
      }
    }
    let n = (l1a >= 0 ? 1 : 0) + (l2a >= 0 ? 1 : 0);
    if (l1b >= 0 && l1b !== l1a) n++;
    if (l2b >= 0 && l2b !== l2a) n++;
    return n;
  }

  /**
   * Clears the leaves in [start, end) under the table `slot` at `level`
   * whose entry 0 maps `base`, splitting partly covered blocks and freeing
   * child tables left empty; returns the bytes cleared.
   */
  #unmapRange(
    slot: number,
    level: number,
    base: number,
    start: number,
    end: number,
  ): number {
    const span = SPAN[level]!;
    const inv = INV_SPAN[level]!;
    const i0 = Math.floor((start - base) * inv);
    const i1 = Math.floor((end - 1 - base) * inv);
    if (level === 3) {
      const leaf = this.#leaf;
      let cleared = 0;
      if (leaf.kind[slot] === COMPACT) {
        const x = leaf.cix[slot]!;
        const c = leaf.off[x >>> CHUNK_SHIFT]!;
        const t = (x & CHUNK_MASK) << 9;
        for (let i = i0; i <= i1; i++) {
          if (c[t | i] !== 0) {
            c[t | i] = 0;
            cleared++;
          }
        }
      } else {
        for (let i = i0; i <= i1; i++) {
          if (leaf.valid(slot, i)) {
            leaf.clear(slot, i);
            cleared++;
          }
        }
      }
      leaf.used[slot]! -= cleared;
      this.#stats.leavesCleared += cleared;
      return cleared * SZ_4K;
    }
    const dir = this.#dir;
    let bytes = 0;
    for (let i = i0; i <= i1; i++) {
      const t = (slot & CHUNK_MASK) << 10;
      const o = t | (i << 1);
      let c = dir.desc[slot >>> CHUNK_SHIFT]!;
      const lo = c[o]!;
      if ((lo & PTE_VALID) === 0) continue;
      const eb = base + i * span;
      const s = Math.max(start, eb);
      const e = Math.min(end, eb + span);
      if ((lo & PTE_TYPE_TABLE) === 0) {
        if (s === eb && e === eb + span) {
          c[o] = 0;
          c[o + 1] = 0;
          dir.used[slot]!--;
          this.#stats.leavesCleared++;
          bytes += span;
          continue;
        }
        this.#splitBlock(slot, level, i);
        c = dir.desc[slot >>> CHUNK_SHIFT]!;
      }
      const child = dir.child![slot >>> CHUNK_SHIFT]![
        ((slot & CHUNK_MASK) << 9) | i
      ]!;
      bytes += this.#unmapRange(child, level + 1, eb, s, e);
      const childPool = level + 1 === 3 ? this.#leaf : dir;
      if (childPool.used[child] === 0) {
        this.#freeTable(child, level + 1);
        c = dir.desc[slot >>> CHUNK_SHIFT]!;
        c[o] = 0;
        c[o + 1] = 0;
        dir.used[slot]!--;
      }
    }
    return bytes;
  }

  /**
   * Replaces the block at entry `i` of directory table `slot` (at `level`)
   * with a table of next-level entries mapping the same memory.
   */
  #splitBlock(slot: number, level: number, i: number): void {
    const dir = this.#dir;
    const o = ((slot & CHUNK_MASK) << 10) | (i << 1);
    let c = dir.desc[slot >>> CHUNK_SHIFT]!;
    const lo = c[o]!;
    const hi = c[o + 1]!;
    const pa = (hi & 0xffff) * TWO32 + ((lo & LEAF_OA_MASK[level]!) >>> 0);
    const childLevel = level + 1;
    const span = SPAN[childLevel]!;
    const attrs = (lo & 0xffc) | PTE_VALID |
      (childLevel === 3 ? PTE_TYPE_PAGE : 0);
    const addr = this.#takeTableAddr();
    const child = this.#installSlot(addr, childLevel);
    let p = pa;
    if (childLevel === 3) {
      const leaf = this.#leaf;
      for (let k = 0; k < ENTRIES; k++) {
        leaf.set(child, k, p, attrs);
        p += span;
      }
      leaf.used[child] = ENTRIES;
    } else {
      const cc = dir.desc[child >>> CHUNK_SHIFT]!;
      let co = (child & CHUNK_MASK) << 10;
      for (let k = 0; k < ENTRIES; k++) {
        cc[co] = (p & 0xfffff000) | attrs;
        cc[co + 1] = (p / TWO32) & 0xffff;
        co += 2;
        p += span;
      }
      dir.used[child] = ENTRIES;
    }
    c = dir.desc[slot >>> CHUNK_SHIFT]!;
    c[o] = (addr & 0xfffff000) | PTE_VALID | PTE_TYPE_TABLE;
    c[o + 1] = (addr / TWO32) & 0xffff;
    dir.child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i] = child;
    this.#stats.leavesWritten += ENTRIES;
    this.#stats.blocksSplit++;
  }

  // -------------------------------------------------------------------------
  // Iteration and checks

  /**
   * Calls `cb` for each mapped extent in IOVA order, walking the tables (not
   * the pages). By default neighbouring leaves that continue each other (same
   * permissions, contiguous output) are merged into one extent.
   */
  forEachMapping(
    cb: (iova: number, pa: number, size: number, prot: Prot) => void,
    options: ForEachMappingOptions = {},
  ): void {
    const leaves = options.leaves ?? false;
    let pIova = -1, pPa = -1, pSize = 0, pProt = 0;
    const emit = (iova: number, pa: number, size: number, prot: Prot) => {
      if (
        !leaves && pSize > 0 && iova === pIova + pSize && pa === pPa + pSize &&
        prot === pProt
      ) {
        pSize += size;
        return;
      }
      if (pSize > 0) cb(pIova, pPa, pSize, pProt);
      pIova = iova;
      pPa = pa;
      pSize = size;
      pProt = prot;
    };
    const visit = (slot: number, level: number, base: number): void => {
      const span = SPAN[level]!;
      if (level === 3) {
        const leaf = this.#leaf;
        for (let i = 0; i < ENTRIES; i++) {
          const lo = leaf.lo(slot, i);
          if ((lo & PTE_VALID) === 0) continue;
          const pa = leaf.hi(slot, i) * TWO32 + ((lo & 0xfffff000) >>> 0);
          emit(base + i * span, pa, span, pteToProt(this.#stage, lo));
        }
        return;
      }
      const c = this.#dir.desc[slot >>> CHUNK_SHIFT]!;
      const t = (slot & CHUNK_MASK) << 10;
      for (let i = 0; i < ENTRIES; i++) {
        const lo = c[t | (i << 1)]!;
        if ((lo & PTE_VALID) === 0) continue;
        const eb = base + i * span;
        if (level < 3 && (lo & PTE_TYPE_TABLE) !== 0) {
          visit(
            this.#dir
              .child![slot >>> CHUNK_SHIFT]![((slot & CHUNK_MASK) << 9) | i]!,
            level + 1,
            eb,
          );
          continue;
        }
        const hi = c[(t | (i << 1)) + 1]!;
        const pa = (hi & 0xffff) * TWO32 + ((lo & LEAF_OA_MASK[level]!) >>> 0);
        emit(eb, pa, span, pteToProt(this.#stage, lo));
      }
    };
    visit(0, 0, 0);
    if (pSize > 0) cb(pIova, pPa, pSize, pProt);
  }

  /** The mapped extents as plain records (see {@linkcode forEachMapping}). */
  mappings(options: ForEachMappingOptions = {}): Mapping[] {
    const out: Mapping[] = [];
    this.forEachMapping(
      (iova, pa, size, prot) => out.push({ iova, pa, size, prot }),
      options,
    );
    return out;
  }

  /**
   * Checks the table's internal invariants (valid counts, no empty non-root
   * table, no level-0 block, address index, `tablePages`, `mappedBytes`);
   * throws an Error describing the first violation. O(table pages): for tests.
   */
  assertConsistent(): void {
    let tables = 0;
    let bytes = 0;
    const fail = (why: string): never => {
      throw new Error(`io-pgtable inconsistent: ${why}`);
    };
    const visit = (slot: number, level: number, base: number): void => {
      tables++;
      const isLeaf = level === 3;
      const pool = isLeaf ? this.#leaf : this.#dir;
      const addr = pool.addr[slot]!;
      if (this.#byAddr.get(addr) !== slot * 2 + (isLeaf ? 1 : 0)) {
        fail(`table ${hex(addr)} missing from the address index`);
      }
      const c = this.#dir.desc[slot >>> CHUNK_SHIFT]!;
      const t = (slot & CHUNK_MASK) << 10;
      const leaf = this.#leaf;
      let valid = 0;
      for (let i = 0; i < ENTRIES; i++) {
        const lo = isLeaf ? leaf.lo(slot, i) : c[t | (i << 1)]!;
        const hi = isLeaf ? leaf.hi(slot, i) : c[(t | (i << 1)) + 1]!;
        if ((lo & PTE_VALID) === 0) {
          if (lo !== 0 || hi !== 0) fail(`stale invalid entry in ${hex(addr)}`);
          continue;
        }
        valid++;
        const eb = base + i * SPAN[level]!;
        if (isLeaf) {
          if ((lo & PTE_TYPE_PAGE) === 0) {
            fail(`reserved L3 entry at ${hex(eb)}`);
          }
          bytes += SZ_4K;
        } else if ((lo & PTE_TYPE_TABLE) === 0) {
          if (level === 0) fail(`level-0 block at ${hex(eb)}`);
          bytes += SPAN[level]!;
        } else {
          const child = this.#dir.child![slot >>> CHUNK_SHIFT]![
            ((slot & CHUNK_MASK) << 9) | i
          ]!;
          const cpool = level + 1 === 3 ? this.#leaf : this.#dir;
          const caddr = (hi & 0xffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
          if (cpool.addr[child] !== caddr) {
            fail(`table descriptor at ${hex(eb)} disagrees with its child`);
          }
          visit(child, level + 1, eb);
        }
      }
      if (valid !== pool.used[slot]) {
        fail(
          `table ${hex(addr)} counts ${
            pool.used[slot]
          } entries, holds ${valid}`,
        );
      }
      if (valid === 0 && level > 0) fail(`empty table ${hex(addr)} kept`);
    };
    visit(0, 0, 0);
    if (tables !== this.#tablePages) {
      fail(`tablePages ${this.#tablePages} but ${tables} reachable`);
    }
    if (tables !== this.#byAddr.size) {
      fail(
        `address index holds ${this.#byAddr.size} tables, ${tables} reachable`,
      );
    }
    if (bytes !== this.#mappedBytes) {
      fail(`mappedBytes ${this.#mappedBytes} but leaves map ${bytes}`);
    }
  }
}
