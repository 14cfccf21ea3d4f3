/**
 * The SMMU's caches besides the IOTLB: the table walk caches (one per stage
 * and level) and the tag store of the configuration cache (STEs and CDs).
 * Their default sizes, associativity and replacement policy are those of
 * gem5's SMMUv3 model (src/dev/arm/SMMUv3.py: `walk_S1L0`..`walk_S2L2`,
 * `walk_assoc`, `walk_policy`, `cfg_entries`, `cfg_assoc`, `cfg_policy`).
 * Typed arrays only: lookups and fills do not allocate. Private to lib/smmu.
 *
 * @module
 */

/** Walk-cache entries per level (L0, L1, L2) of one stage. */
export type WalkLevelSizes = readonly [number, number, number];

/**
 * gem5's SMMUv3 walk-cache sizes (`walk_S1L0` 4, `walk_S1L1` 28,
 * `walk_S1L2` 348; `walk_S2L0` 4, `walk_S2L1` 28, `walk_S2L2` 92), with
 * `wc_s1_levels` = `wc_s2_levels` = 7 (levels 0-2 cached: the level-3 leaf
 * lives in the IOTLB).
 */
export const GEM5_WALK_CACHE: {
  readonly s1: WalkLevelSizes;
  readonly s2: WalkLevelSizes;
} = Object.freeze({ s1: [4, 28, 348], s2: [4, 28, 92] });

/** gem5's `walk_assoc` and `cfg_assoc`: 4 ways. */
export const GEM5_CACHE_WAYS = 4;

/** gem5's `cfg_entries`: 64 configuration cache entries. */
export const GEM5_CONFIG_ENTRIES = 64;

/** 2^-39, 2^-30, 2^-21: the input span of one descriptor at levels 0-2 (4 KiB granule), inverted. */
const LEVEL_INV = [2 ** -39, 2 ** -30, 2 ** -21] as const;
const LEVEL_SIZE = [2 ** 39, 2 ** 30, 2 ** 21] as const;

const EMPTY_I32 = new Int32Array(0);
const EMPTY_F64 = new Float64Array(0);
const EMPTY_U8 = new Uint8Array(0);

/**
 * A set-associative tag store with round-robin replacement (gem5's `rr`
 * policy: the victim pointer of a set advances on every fill that finds no
 * free way). Entries are (a, b, key): two context tags and a number the set
 * is chosen by. 0 entries: nothing is ever cached.
 */
export class TagStore {
  /** Total entries (0: disabled). */
  readonly entries: number;
  /** Ways per set. */
  readonly ways: number;
  /** Sets. */
  readonly sets: number;
  /** Context tag A. */
  readonly tagA: Int32Array = EMPTY_I32;
  /** Context tag B. */
  readonly tagB: Int32Array = EMPTY_I32;
  /** The key (region number, or StreamID). */
  readonly key: Float64Array = EMPTY_F64;
  /** 1 when the way holds an entry. */
  readonly valid: Uint8Array = EMPTY_U8;
  /** Next victim way per set. */
  readonly #rr: Int32Array = EMPTY_I32;
  /** Lookups that hit. */
  hits = 0;
  /** Lookups that missed. */
  misses = 0;

  /** An empty store of `entries` (a multiple of `ways`, or 0). */
  constructor(entries: number, ways: number) {
    this.entries = entries;
    this.ways = entries === 0 ? 1 : Math.min(ways, entries);
    this.sets = entries === 0 ? 0 : Math.ceil(entries / this.ways);
    this.tagA = new Int32Array(entries);
    this.tagB = new Int32Array(entries);
    this.key = new Float64Array(entries);
    this.valid = new Uint8Array(entries);
    this.#rr = new Int32Array(this.sets);
  }

  /** First way of `key`'s set. */
  base(key: number): number {
    return (key % this.sets) * this.ways;
  }

  /** One past the last way of the set starting at `base`. */
  end(base: number): number {
    return Math.min(base + this.ways, this.entries);
  }

  /** The way holding (a, b, key), or -1; counts the hit or miss. */
  lookup(a: number, b: number, key: number): number {
    if (this.entries === 0) {
      this.misses++;
      return -1;
    }
    const first = this.base(key), end = this.end(first);
    for (let i = first; i < end; i++) {
      if (
        this.valid[i] === 1 && this.key[i] === key && this.tagA[i] === a &&
        this.tagB[i] === b
      ) {
        this.hits++;
        return i;
      }
    }
    this.misses++;
    return -1;
  }

  /**
   * The way (a, b, key) goes into: the way already tagged with it (live or
   * not), else a free way (`live(i)` false counts as free), else the set's round-robin
   * victim. Returns -1 when the store has no entries. The caller evicts
   * the victim's old contents, then calls {@linkcode set}.
   */
  victim(
    a: number,
    b: number,
    key: number,
    live: ((i: number) => boolean) | undefined,
  ): number {
    if (this.entries === 0) return -1;
    const first = this.base(key), end = this.end(first);
    let free = -1;
    for (let i = first; i < end; i++) {
      if (
        this.valid[i] === 1 && this.key[i] === key && this.tagA[i] === a &&
        this.tagB[i] === b
      ) {
        return i;
      }
      if (
        free < 0 && (this.valid[i] === 0 || (live !== undefined && !live(i)))
      ) {
        free = i;
      }
    }
    if (free >= 0) return free;
    const set = first / this.ways;
    const n = end - first;
    const w = this.#rr[set]!;
    this.#rr[set] = (w + 1) % n;
    return first + w;
  }

  /** Stores (a, b, key) in way `i`. */
  set(i: number, a: number, b: number, key: number): void {
    this.tagA[i] = a;
    this.tagB[i] = b;
    this.key[i] = key;
    this.valid[i] = 1;
  }

  /** Drops every entry. */
  clear(): void {
    this.valid.fill(0);
  }
}

/** Entry kinds a walk-cache invalidation may name (the IOTLB's kind bits). */
export const WALK_S1 = 1;
/** Stage-2 walk-cache entries. */
export const WALK_S2 = 2;

/**
 * The table walk caches of one SMMU: per stage (1, 2) and level (0-2), the
 * table descriptors read on earlier walks, tagged by (VMID, ASID) at stage
 * 1 and (VMID, -1) at stage 2 and keyed by the input region the descriptor
 * covers (512 GiB at level 0, 1 GiB at level 1, 2 MiB at level 2). A walk
 * that finds the descriptor of level L cached starts at level L + 1, so it
 * reads `reads - (L + 1)` descriptors.
 *
 * They shape timing only: the walk's result is always read from the tables
 * in memory, as on hardware once the driver has invalidated what it
 * changed (Linux invalidates with a non-leaf TLBI before freeing a table).
 * Every TLBI invalidates the walk-cache entries it covers (IHI0070 4.4,
 * paraphrased: a TLBI with Leaf = 0 also invalidates the cached
 * intermediate, walk-cache, entries of the range, with Leaf = 1 only the
 * last level needs to go; invalidating more than asked is allowed, so
 * Leaf is not consulted).
 */
export class WalkCache {
  /** Stage-1 levels 0-2. */
  readonly s1: readonly [TagStore, TagStore, TagStore];
  /** Stage-2 levels 0-2. */
  readonly s2: readonly [TagStore, TagStore, TagStore];

  /** Walk caches of the given sizes (entries per level) and ways. */
  constructor(s1: WalkLevelSizes, s2: WalkLevelSizes, ways: number) {
    this.s1 = [
      new TagStore(s1[0], ways),
      new TagStore(s1[1], ways),
      new TagStore(s1[2], ways),
    ];
    this.s2 = [
      new TagStore(s2[0], ways),
      new TagStore(s2[1], ways),
      new TagStore(s2[2], ways),
    ];
  }

  /**
   * Levels a walk of `va` can skip: looks up levels `deepest` down to 0
   * (deepest = the last table-descriptor level of this walk, at most 2) and
   * returns L + 1 for the first level L that hits, 0 when none does.
   */
  skip(
    stage: 1 | 2,
    a: number,
    b: number,
    va: number,
    deepest: number,
  ): number {
    const lv = stage === 1 ? this.s1 : this.s2;
    for (let l = deepest > 2 ? 2 : deepest; l >= 0; l--) {
      const key = Math.floor(va * LEVEL_INV[l]!);
      if (lv[l]!.lookup(a, b, key) >= 0) return l + 1;
    }
    return 0;
  }

  /** Caches the table descriptors of levels `from`..`to` (at most 2) the walk of `va` read. */
  fill(
    stage: 1 | 2,
    a: number,
    b: number,
    va: number,
    from: number,
    to: number,
  ): void {
    const lv = stage === 1 ? this.s1 : this.s2;
    for (let l = from; l <= to && l <= 2; l++) {
      const t = lv[l]!;
      const key = Math.floor(va * LEVEL_INV[l]!);
      const i = t.victim(a, b, key, undefined);
      if (i >= 0) t.set(i, a, b, key);
    }
  }

  /**
   * {@linkcode WalkCache.skip}, then {@linkcode WalkCache.fill} of the
   * levels the walk then reads (skip .. deepest), for a walk whose reads
   * all happen: returns the levels skipped.
   */
  skipAndFill(
    stage: 1 | 2,
    a: number,
    b: number,
    va: number,
    deepest: number,
  ): number {
    const skip = this.skip(stage, a, b, va, deepest);
    this.fill(stage, a, b, va, skip, deepest);
    return skip;
  }

  /**
   * Drops the entries of the stages in `kinds` (bit `1 << WALK_S1`,
   * `1 << WALK_S2`; 0 = both) matching tag A `a` (-1: any), tag B `b`
   * (undefined: any) whose region overlaps [start, end). Returns how many.
   */
  invalidate(
    kinds: number,
    a: number,
    b: number | undefined,
    start: number,
    end: number,
  ): number {
    let n = 0;
    if (kinds === 0 || (kinds & (1 << WALK_S1)) !== 0) {
      n += invalidateLevels(this.s1, a, b, start, end);
    }
    if (kinds === 0 || (kinds & (1 << WALK_S2)) !== 0) {
      n += invalidateLevels(this.s2, a, b, start, end);
    }
    return n;
  }
}

function invalidateLevels(
  lv: readonly TagStore[],
  a: number,
  b: number | undefined,
  start: number,
  end: number,
): number {
  let n = 0;
  for (let l = 0; l < 3; l++) {
    const t = lv[l]!;
    const size = LEVEL_SIZE[l]!;
    for (let i = 0; i < t.entries; i++) {
      if (t.valid[i] === 0) continue;
      if (a !== -1 && t.tagA[i] !== a) continue;
      if (b !== undefined && t.tagB[i] !== b) continue;
      const lo = t.key[i]! * size;
      if (lo < end && lo + size > start) {
        t.valid[i] = 0;
        n++;
      }
    }
  }
  return n;
}

/**
 * A pool of `n` identical servers (translation slots, table walkers) taken
 * first come, first served: {@linkcode SlotPool.start} picks the server
 * free first and returns when a request arriving at `at` starts on it
 * (requests arrive in simulated-time order, so this is a FIFO multi-server
 * queue); {@linkcode SlotPool.hold} then keeps that server busy until the
 * request ends. No allocation.
 *
 * The servers are identical, so only the multiset of their free times
 * matters: it is kept sorted, oldest first, in a ring, so `start` reads the
 * head and `hold` drops it and puts the new free time in order from the
 * tail. A request usually ends after every request before it (its free
 * time is the largest), so `hold` is O(1) then; at worst O(n).
 */
export class SlotPool {
  /** Servers. */
  readonly size: number;
  /** Free times, ascending from `#head` around the ring. */
  readonly #freeAt: Float64Array;
  #head = 0;
  /** Requests that had to wait for a server. */
  waits = 0;
  /** Total ns waited. */
  waitNs = 0;

  /** A pool of `n` (>= 1) servers, all free. */
  constructor(n: number) {
    this.size = n;
    this.#freeAt = new Float64Array(n);
  }

  /** When a request arriving at `at` starts (its server is the one free first). */
  start(at: number): number {
    const best = this.#freeAt[this.#head]!;
    if (best > at) {
      this.waits++;
      this.waitNs += best - at;
      return best;
    }
    return at;
  }

  /** Keeps the server of the last {@linkcode SlotPool.start} busy until `until`. */
  hold(until: number): void {
    const f = this.#freeAt;
    const n = f.length;
    // The head's slot becomes the tail: shift larger free times up into it.
    let j = this.#head;
    const head = j + 1 === n ? 0 : j + 1;
    this.#head = head;
    while (j !== head) {
      const prev = j === 0 ? n - 1 : j - 1;
      const v = f[prev]!;
      if (v <= until) break;
      f[j] = v;
      j = prev;
    }
    f[j] = until;
  }
}
