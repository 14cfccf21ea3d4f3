/** Shared helpers of the lib/mm tests. */
import assert from "node:assert/strict";
import { type Costs, loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import type { ErrorCode } from "../../lib/sim/errors.ts";

export const KiB = 1024;
export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

/** Round cost values so expected times are easy to compute by hand. */
export const TEST_COSTS: Costs = loadCostProfile({
  "mm.zeroPer4k": 100,
  "mm.faultOverhead": 1000,
  "mm.faultThp": 1000,
  "mm.faultHugetlb2m": 1000,
  "mm.faultHugetlb1g": 1000,
  "mm.pinCall": 50,
  "mm.pinPer4k": 10,
  "mm.pinPerHuge": 7,
  "mm.pinPerSmallFolio": 3,
  "mm.unpinPer4k": 5,
  "mm.reclaimPer4k": 2000,
  "mm.swapInPer4k": 20000,
  "mm.notifierCall": 3,
});

/** Asserts that `fn` throws an IopfLabError with `code`. */
export function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(
      e instanceof IopfLabError,
      `expected IopfLabError, got ${String(e)}`,
    );
    assert.equal(e.code, code, e.message);
    assert.match(e.message, /^Cannot /);
    return true;
  });
}
