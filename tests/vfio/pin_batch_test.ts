/**
 * Static MAP_DMA of scattered 4 KiB frames hands its single-page runs to
 * IommuCore.mapPages in batches: against a twin whose core maps them with
 * one iommu_map call each (what type1 did before), the ioctl must cost the
 * same ns (fractional costs: the order of additions shows), count the same,
 * translate the same, and on a failing page unwind exactly as before.
 */
import assert from "node:assert/strict";
import { mapPagesOneByOne } from "../iommu/_one_by_one.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { GUEST_RAM_GPA, MiB, RW, type Setup, setup } from "./_setup.ts";

const COSTS = {
  "iommu.mapCall": 333.3,
  "iommu.mapPerPte": 0.1,
  "iommu.tableAlloc": 1234.567,
  "iommu.unmapCall": 77.7,
};

/** A setup whose core maps a batch as one map call per page. */
function reference(mixed = false): Setup {
  const s = mixed
    ? mixedRuns()
    : setup({ guestSize: 8 * MiB, costOverrides: COSTS });
  const core = s.core;
  mapPagesOneByOne(core);
  return s;
}

/**
 * Guest RAM prefaulted on an ascending host in blocks of 1, 3, 1, 1, 5, 2
 * ... pages, the blocks last to first: each block is a contiguous run, next
 * to runs of one page.
 */
function mixedRuns(): Setup {
  const s = setup({
    guestSize: 8 * MiB,
    costOverrides: COSTS,
    frameOrder: "ascending",
  });
  for (const [p, n] of blocks().reverse()) {
    s.mm.prefault(s.ram.start + p * 4096, n * 4096);
  }
  return s;
}

/** The blocks of {@linkcode mixedRuns}: [first page, pages]. */
function blocks(): [number, number][] {
  const lens = [1, 3, 1, 1, 5, 2, 1, 1, 1, 700, 1, 4];
  const out: [number, number][] = [];
  for (let p = 0, k = 0; p < 2048; k++) {
    const n = Math.min(lens[k % lens.length]!, 2048 - p);
    out.push([p, n]);
    p += n;
  }
  return out;
}

function mapAll(s: Setup): { ns: number } | { error: string } {
  try {
    return {
      ns: s.container.mapDma({
        vaddr: s.ram.start,
        iova: GUEST_RAM_GPA,
        size: s.ram.size,
        flags: RW,
      }),
    };
  } catch (e) {
    if (!(e instanceof IopfLabError)) throw e;
    return { error: `${e.code}: ${e.message}` };
  }
}

function state(s: Setup): unknown {
  s.sim.run();
  const tr = [];
  for (let p = -1; p <= 2048; p++) {
    tr.push(s.core.iovaToPhys(s.container.domain!, GUEST_RAM_GPA + p * 4096));
  }
  return {
    counters: s.core.counters.toJSON(),
    lockedVm: s.mm.lockedVm,
    mapped: s.container.domain!.mappedBytes,
    tr,
  };
}

Deno.test("static pin of scattered 4 KiB frames: batched maps cost and count what one call per page did", () => {
  const a = reference();
  const b = setup({ guestSize: 8 * MiB, costOverrides: COSTS });
  const ra = mapAll(a), rb = mapAll(b);
  assert.ok("ns" in rb);
  assert.deepEqual(rb, ra);
  assert.equal(b.core.counters.get("iommu.maps"), 2048);
  assert.deepEqual(state(b), state(a));
});

Deno.test("static pin: a page mapped already stops the batch with EEXIST and the unwind removes the pages before it", () => {
  const a = reference();
  const b = setup({ guestSize: 8 * MiB, costOverrides: COSTS });
  for (const s of [a, b]) {
    s.core.map(s.container.domain!, GUEST_RAM_GPA + 1000 * 4096, 0, 4096, 3);
  }
  const ra = mapAll(a), rb = mapAll(b);
  assert.ok("error" in rb && rb.error.startsWith("EEXIST: "));
  assert.deepEqual(rb, ra);
  const sb = state(b);
  assert.deepEqual(sb, state(a));
  // Only the page mapped beforehand is left; no page stays pinned.
  assert.equal(b.container.domain!.mappedBytes, 4096);
  assert.equal(b.mm.lockedVm, 0);
});

Deno.test("static pin of contiguous runs next to single pages: the same calls in the same order as before", () => {
  const a = reference(true), b = mixedRuns();
  const ra = mapAll(a), rb = mapAll(b);
  assert.ok("ns" in rb);
  assert.deepEqual(rb, ra);
  const maps = b.core.counters.get("iommu.maps");
  assert.equal(maps, blocks().length); // one call per block
  assert.deepEqual(state(b), state(a));
});
