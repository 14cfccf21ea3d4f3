/**
 * IoPgtable.mapPages against the single 4 KiB map calls it stands for: on
 * twin tables with the same history, the batch and the calls one by one
 * must leave the same descriptors, table pages, stats and mappedBytes, and
 * throw the same error (code and message) after mapping the same pages.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  IoPgtable,
  type MapPagesProgress,
  newWalkResult,
  type PgtableStage,
} from "../../lib/pgtable/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { PROT_READ, PROT_WRITE, SZ_2M, SZ_4K } from "../../lib/sim/units.ts";

const RW = PROT_READ | PROT_WRITE;

/** A table whose allocator hands out fixed addresses and fails at its `failAt`-th call. */
function table(stage: PgtableStage, failAt: number): IoPgtable {
  let calls = 0;
  return new IoPgtable({
    stage,
    allocTable: () => {
      if (++calls === failAt) throw new IopfLabError("ENOMEM", "no table");
      return 2 ** 40 + calls * SZ_4K;
    },
  });
}

/** What the table looks like from outside (stats, walks of `pages`, extents). */
function state(pt: IoPgtable, iova: number, pages: number): unknown {
  const walks = [];
  for (let k = -1; k <= pages; k++) {
    const a = iova + k * SZ_4K;
    if (a < 0 || a >= 2 ** 48) continue;
    walks.push(structuredClone(pt.walk(a, newWalkResult())));
  }
  pt.assertConsistent();
  return {
    stats: { ...pt.stats },
    mappedBytes: pt.mappedBytes,
    tablePages: pt.tablePages,
    mappings: pt.mappings(),
    walks,
  };
}

type Outcome = { pages: number; tables: number[]; error?: string };

function errText(e: unknown): string {
  if (!(e instanceof IopfLabError)) throw e;
  return `${e.code}: ${e.message}`;
}

/** The single calls mapPages stands for, stopping at the first error. */
function singles(
  pt: IoPgtable,
  iova: number,
  pfns: number[],
  prot: number,
): Outcome {
  const o: Outcome = { pages: 0, tables: [] };
  for (let k = 0; k < pfns.length; k++) {
    const t = pt.stats.tablesAllocated;
    try {
      pt.map(iova + k * SZ_4K, pfns[k]! * SZ_4K, SZ_4K, prot);
    } catch (e) {
      o.error = errText(e);
      return o;
    }
    o.tables.push(pt.stats.tablesAllocated - t);
    o.pages++;
  }
  return o;
}

function batch(
  pt: IoPgtable,
  iova: number,
  pfns: number[],
  prot: number,
): Outcome {
  // The PFNs sit inside a longer array, to exercise `from`.
  const arr = new Float64Array([7, 7, ...pfns, 7]);
  const p: MapPagesProgress = {
    pages: -1,
    tables: new Uint8Array(pfns.length + 3).fill(99),
  };
  const o: Outcome = { pages: 0, tables: [] };
  try {
    pt.mapPages(iova, arr, 2, pfns.length, prot, p);
  } catch (e) {
    o.error = errText(e);
  }
  o.pages = p.pages;
  o.tables = [...p.tables.subarray(0, p.pages)];
  return o;
}

/** A history both tables get first: maps of 4 KiB pages and 2 MiB blocks. */
type Pre = { page: number; npages: number; pfn: number };

const preArb: fc.Arbitrary<Pre> = fc.oneof(
  fc.record({
    page: fc.integer({ min: 0, max: 2047 }),
    npages: fc.integer({ min: 1, max: 3 }),
    pfn: fc.integer({ min: 0, max: 1 << 20 }),
  }),
  fc.record({
    page: fc.integer({ min: 0, max: 3 }).map((i) => i * 512),
    npages: fc.constant(512),
    pfn: fc.integer({ min: 0, max: 64 }).map((i) => i * 512),
  }),
);

/** One frame of the batch: mostly scattered, some contiguous, some bad. */
const pfnArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 2 ** 30 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 4 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      -1,
      0.5,
      1 / 4096,
      NaN,
      Infinity,
      2 ** 36 - 1, // the last frame below 2^48
      2 ** 36, // beyond the 48-bit output space
      2 ** 52,
      -0,
    ),
  },
);

/** The IOVA page of the batch: mostly near the history, some at the top or odd. */
const startArb: fc.Arbitrary<number> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.integer({ min: 0, max: 2100 }).map((p) => p * SZ_4K),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 8 }).map((k) => 2 ** 48 - k * SZ_4K),
  },
  { weight: 1, arbitrary: fc.constantFrom(-SZ_4K, 0x800, 0.5, NaN) },
);

Deno.test("pgtable mapPages: same table, stats, progress and error as the single 4 KiB maps", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<PgtableStage>(1, 2),
      fc.array(preArb, { maxLength: 6 }),
      startArb,
      fc.array(pfnArb, { minLength: 0, maxLength: 700 }),
      fc.constantFrom(RW, RW, RW, PROT_READ, PROT_WRITE, 0, 4 | PROT_READ),
      fc.integer({ min: 0, max: 12 }), // allocTable fails at this call (0: never)
      (stage, pre, iova, pfns, prot, failAt) => {
        // +1: the root is the first call.
        const a = table(stage, failAt === 0 ? 0 : failAt + 1);
        const b = table(stage, failAt === 0 ? 0 : failAt + 1);
        for (const pt of [a, b]) {
          for (const m of pre) {
            try {
              pt.map(m.page * SZ_4K, m.pfn * SZ_4K, m.npages * SZ_4K, RW);
            } catch {
              /* overlaps and failed allocations are part of the history */
            }
          }
        }
        const ra = singles(a, iova, pfns, prot);
        const rb = batch(b, iova, pfns, prot);
        assert.deepEqual(rb, ra);
        const n = Number.isFinite(iova) ? pfns.length : 0;
        const at = Number.isFinite(iova) ? iova : 0;
        assert.deepEqual(state(b, at, n), state(a, at, n));
      },
    ),
    { seed: 0x16a, numRuns: 300 },
  );
});

Deno.test("pgtable mapPages: scattered frames over leaf tables, then a mapped page stops it", () => {
  const a = table(2, 0), b = table(2, 0);
  const pfns = Array.from({ length: 1500 }, (_, k) => (k * 7919) % 100_003);
  // Page 1200 is mapped already: pages 0..1199 map, 1200 throws EEXIST.
  for (const pt of [a, b]) pt.map(1200 * SZ_4K, 5 * SZ_4K, SZ_4K, RW);
  const ra = singles(a, SZ_2M - 8 * SZ_4K, pfns, RW);
  const rb = batch(b, SZ_2M - 8 * SZ_4K, pfns, RW);
  assert.equal(rb.pages, 1200 - 504);
  assert.match(rb.error!, /^EEXIST: .*overlaps the mapping/);
  assert.deepEqual(rb, ra);
  assert.deepEqual(state(b, SZ_2M, 1500), state(a, SZ_2M, 1500));
  // The leaf tables it made: for its first page and at the 2 MiB boundary
  // (page 8); the one at 4 MiB (page 520) holds the premapped page.
  assert.deepEqual(
    rb.tables.flatMap((t, k) => (t > 0 ? [[k, t]] : [])),
    [[0, 1], [8, 1]],
  );
});
