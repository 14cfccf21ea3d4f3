import assert from "node:assert/strict";
import fc from "fast-check";
import { IoPgtable, newWalkResult } from "../../lib/pgtable/mod.ts";
import type { PgtableStage } from "../../lib/pgtable/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  PROT_READ,
  PROT_WRITE,
  SZ_1G,
  SZ_2M,
  SZ_4K,
} from "../../lib/sim/units.ts";

const PAGES_2M = SZ_2M / SZ_4K;
const PAGES_1G = SZ_1G / SZ_4K;

type Op =
  | { kind: "map"; page: number; npages: number; paPage: number; prot: number }
  | { kind: "unmap"; page: number; npages: number };

/** An unmap aimed inside an earlier map request (resolved when run). */
type UnmapIn = {
  kind: "unmap-in";
  which: number;
  offset: number;
  npages: number;
};

/** Turns an `unmap-in` into a plain unmap inside one of the `maps` so far. */
function resolve(op: Op | UnmapIn, maps: Op[]): Op {
  if (op.kind !== "unmap-in") return op;
  const m = maps[op.which % Math.max(1, maps.length)];
  const start = m ? m.page + (op.offset % m.npages) : op.offset;
  return { kind: "unmap", page: start, npages: op.npages };
}

/** Reference model: IOVA page -> paPage * 4 + prot. */
type Ref = Map<number, number>;

/** The permissions a stage can express (stage 1 has no write-only). */
function effectiveProt(stage: PgtableStage, prot: number): number {
  return stage === 1 && prot === PROT_WRITE ? PROT_READ | PROT_WRITE : prot;
}

/** Applies `op` to both the table and the reference and checks the result. */
function step(
  pt: IoPgtable,
  ref: Ref,
  op: Op,
  base: number,
  paBase: number,
): void {
  const iova = base + op.page * SZ_4K;
  const size = op.npages * SZ_4K;
  if (op.kind === "map") {
    let overlaps = false;
    for (let k = 0; k < op.npages && !overlaps; k++) {
      overlaps = ref.has(op.page + k);
    }
    const pa = paBase + op.paPage * SZ_4K;
    if (overlaps) {
      const before = pt.mappedBytes;
      const tables = pt.tablePages;
      assert.throws(
        () => pt.map(iova, pa, size, op.prot),
        (e: unknown) => e instanceof IopfLabError && e.code === "EEXIST",
      );
      assert.equal(pt.mappedBytes, before);
      assert.equal(pt.tablePages, tables);
      return;
    }
    pt.map(iova, pa, size, op.prot);
    const prot = effectiveProt(pt.stage, op.prot);
    for (let k = 0; k < op.npages; k++) {
      ref.set(op.page + k, (paBase / SZ_4K + op.paPage + k) * 4 + prot);
    }
  } else {
    let expected = 0;
    for (let k = 0; k < op.npages; k++) {
      if (ref.delete(op.page + k)) expected += SZ_4K;
    }
    assert.equal(pt.unmap(iova, size), expected);
  }
}

const w = newWalkResult();

/** Checks that `page` translates in the table as in the reference. */
function checkPage(pt: IoPgtable, ref: Ref, page: number, base: number): void {
  const iova = base + page * SZ_4K + 0x123;
  pt.walk(iova, w);
  const v = ref.get(page);
  if (v === undefined) {
    assert.equal(w.ok, false, `page ${page} should be unmapped`);
    assert.equal(pt.iovaToPhys(iova), -1);
    return;
  }
  assert.equal(w.ok, true, `page ${page} should be mapped`);
  assert.equal(w.pa, Math.floor(v / 4) * SZ_4K + 0x123, `pa of page ${page}`);
  assert.equal(w.prot, v % 4, `prot of page ${page}`);
  assert.equal(w.reads, w.level + 1);
  assert.equal(w.reads, { [SZ_4K]: 4, [SZ_2M]: 3, [SZ_1G]: 2 }[w.pageSize]);
}

function checkTotals(pt: IoPgtable, ref: Ref): void {
  assert.equal(pt.mappedBytes, ref.size * SZ_4K);
  let total = 0;
  pt.forEachMapping((_iova, _pa, size) => (total += size));
  assert.equal(total, pt.mappedBytes);
  pt.assertConsistent();
}

const bitmaps = [SZ_4K, SZ_4K | SZ_2M, SZ_4K | SZ_2M | SZ_1G];
const prots = fc.constantFrom(PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE);

/**
 * Map and unmap requests in a window of `windowPages` pages. Each picks a
 * granule (in pages) from `grans`: the IOVA page, and for a map the output
 * page, are aligned to it, and the size is 1-`maxN` granules plus, half the
 * time, a few extra pages. Requests aligned to a block size make blocks;
 * smaller unmaps inside them split them.
 */
function ops(
  windowPages: number,
  paPages: number,
  grans: number[],
  maxN: number,
): fc.Arbitrary<Op | UnmapIn> {
  const shape = fc.record({
    g: fc.constantFrom(...grans),
    page: fc.nat({ max: windowPages - 1 }),
    n: fc.integer({ min: 1, max: maxN }),
    extra: fc.oneof(fc.constant(0), fc.nat(8)),
  });
  return fc.oneof(
    fc.record({ shape, paPage: fc.nat({ max: paPages - 1 }), prot: prots })
      .map(({ shape: { g, page, n, extra }, paPage, prot }): Op => ({
        kind: "map",
        page: page - (page % g),
        npages: g * n + extra,
        paPage: paPage - (paPage % g),
        prot,
      })),
    shape.map(({ g, page, n, extra }): Op => ({
      kind: "unmap",
      page: page - (page % g),
      npages: g * n + extra,
    })),
    fc.record({ shape, which: fc.nat(), offset: fc.nat() }).map((
      { shape: { g, n, extra }, which, offset },
    ): UnmapIn => ({
      kind: "unmap-in",
      which,
      offset: offset - (offset % g),
      npages: g * n + extra,
    })),
  );
}

Deno.test("IoPgtable agrees with a page map on random map/unmap sequences", () => {
  // 16 MiB of IOVA straddling the 512 GiB line (new tables at levels 0-3).
  const base = 2 ** 39 - 4 * SZ_2M;
  const windowPages = 8 * PAGES_2M;
  const paBase = 0x40_0000_0000;
  const op = fc.oneof(
    ops(windowPages, 64 * PAGES_2M, [1], 600),
    ops(windowPages, 64 * PAGES_2M, [1, PAGES_2M], 3),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<PgtableStage>(1, 2),
      fc.constantFrom(...bitmaps),
      fc.array(op, { minLength: 4, maxLength: 20 }),
      (stage, pgsizeBitmap, ops) => {
        const pt = new IoPgtable({ stage, pgsizeBitmap, splitOnUnmap: true });
        const ref: Ref = new Map();
        const touched = new Set<number>();
        const maps: Op[] = [];
        for (const generated of ops) {
          const o = resolve(generated, maps);
          if (o.kind === "map") maps.push(o);
          step(pt, ref, o, base, paBase);
          for (let k = -1; k <= o.npages; k++) touched.add(o.page + k);
          for (const page of touched) checkPage(pt, ref, page, base);
          checkTotals(pt, ref);
        }
        // Unmapping everything leaves only the root.
        pt.unmap(base - SZ_4K, (windowPages + 4000) * SZ_4K);
        assert.equal(pt.mappedBytes, 0);
        assert.equal(pt.tablePages, 1);
      },
    ),
    { seed: 0x10f, numRuns: 100 },
  );
});

Deno.test("IoPgtable agrees with a page map when 1 GiB blocks split", () => {
  // 4 GiB of IOVA; requests aligned to 4 KiB, 2 MiB or 1 GiB.
  const base = 0;
  const windowPages = 4 * PAGES_1G;
  const paBase = 0;
  const op = ops(windowPages, 8 * PAGES_1G, [1, PAGES_2M, PAGES_1G], 2);
  fc.assert(
    fc.property(
      fc.constantFrom<PgtableStage>(1, 2),
      fc.array(op, { minLength: 2, maxLength: 6 }),
      fc.array(fc.nat({ max: windowPages + PAGES_1G }), {
        minLength: 64,
        maxLength: 64,
      }),
      (stage, ops, samples) => {
        const pt = new IoPgtable({ stage, splitOnUnmap: true });
        const ref: Ref = new Map();
        const edges = new Set<number>(samples);
        const maps: Op[] = [];
        for (const generated of ops) {
          const o = resolve(generated, maps);
          if (o.kind === "map") maps.push(o);
          step(pt, ref, o, base, paBase);
          // Pages around each request's ends and the block lines inside it.
          for (const p of [o.page, o.page + o.npages]) {
            for (const q of [p, p - (p % PAGES_2M), p - (p % PAGES_1G)]) {
              edges.add(q - 1).add(q).add(q + 1);
            }
          }
          for (const page of edges) {
            if (page >= 0) checkPage(pt, ref, page, base);
          }
          checkTotals(pt, ref);
        }
      },
    ),
    { seed: 0x2f1, numRuns: 40 },
  );
});
