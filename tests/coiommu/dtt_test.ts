import assert from "node:assert/strict";
import {
  DmaTrackingTable,
  DTT_LEAF_ENTRIES,
  DTTE_ACCESSED,
  DTTE_MAP_COUNT_MASK,
  DTTE_PINNED,
} from "../../lib/coiommu/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

Deno.test("DTT entry layout: PINNED bit 31, ACCESSED bit 30, map count below", () => {
  assert.equal(DTTE_PINNED, 2 ** 31);
  assert.equal(DTTE_ACCESSED, 2 ** 30);
  assert.equal(DTTE_MAP_COUNT_MASK, 2 ** 30 - 1);
  assert.equal(DTT_LEAF_ENTRIES, 1024, "a 4 KiB leaf of 4-byte entries");
});

Deno.test("guest marks count maps and set ACCESSED; host bits survive them", async (t) => {
  const dtt = new DmaTrackingTable({ frames: 1 << 20 });
  await t.step("mark twice, unmark once", () => {
    assert.equal(dtt.entry(7), 0);
    assert.equal(dtt.mark(7), DTTE_ACCESSED | 1);
    assert.equal(dtt.mark(7), DTTE_ACCESSED | 2);
    assert.equal(dtt.unmark(7), DTTE_ACCESSED | 1, "unmap leaves ACCESSED");
  });
  await t.step("PINNED set by the host stays through marks", () => {
    dtt.setPinned(7);
    assert.equal(dtt.entry(7), (DTTE_PINNED | DTTE_ACCESSED | 1) >>> 0);
    assert.equal(dtt.unmark(7), (DTTE_PINNED | DTTE_ACCESSED) >>> 0);
  });
  await t.step("compare-and-exchange succeeds only on exactly PINNED", () => {
    assert.equal(
      dtt.compareExchange(7, DTTE_PINNED, 0),
      (DTTE_PINNED | DTTE_ACCESSED) >>> 0,
      "ACCESSED set: fails",
    );
    dtt.clearAccessed(7);
    assert.equal(dtt.compareExchange(7, DTTE_PINNED, 0), DTTE_PINNED);
    assert.equal(dtt.entry(7), 0);
  });
  await t.step("unmark without a map is refused, nothing changes", () => {
    assert.throws(
      () => dtt.unmark(7),
      (e: unknown) =>
        e instanceof IopfLabError && e.code === "EINVAL" &&
        e.message.includes("no map outstanding"),
    );
    assert.equal(dtt.entry(7), 0);
  });
  await t.step("frames outside the table are refused", () => {
    assert.throws(() => dtt.mark(1 << 20), /covers frames 0-0xfffff/);
    assert.throws(() => dtt.entry(-1), IopfLabError);
  });
});

Deno.test("DTT leaves are allocated lazily: a 1 TiB guest costs one leaf per 4 MiB touched", () => {
  // 1 TiB of guest RAM above 1 GiB: 2^28 + 2^18 frames.
  const dtt = new DmaTrackingTable({ frames: 2 ** 28 + 2 ** 18 });
  assert.equal(dtt.levels, 4, "leaf (2^10) + 9-bit levels: 2^19, 2^28, 2^37");
  assert.equal(dtt.leafPages, 0);
  assert.equal(dtt.bytes, 4096, "the root page only");
  dtt.mark(2 ** 18); // first frame of RAM
  dtt.mark(2 ** 18 + 1023); // same leaf
  dtt.mark(2 ** 18 + 1024); // next leaf
  assert.equal(dtt.leafPages, 2);
  // Two leaves plus one page at each of the three upper levels.
  assert.equal(dtt.bytes, (2 + 3) * 4096);
});
