/**
 * Random sequences of calls on an assembled machine (tests/fuzz/_api.ts):
 * MAP_DMA, UNMAP_DMA, device DMA, reclaim, MADV_DONTNEED, time passing,
 * detach and teardown over random configurations, with the invariants
 * checked after every step. Shrunk failures found so far are kept as named
 * tests in regressions_test.ts.
 *
 * FUZZ_RUNS=<n> runs n cases per property instead of the CI default, and
 * FUZZ_SEED=<s> changes the seed: `FUZZ_RUNS=2000 deno test -A tests/fuzz/`.
 */
import fc from "fast-check";
import { configArb, opArb, runSequence } from "./_api.ts";
import { fuzzRuns, fuzzSeed, withEventCap } from "./_gen.ts";

Deno.test("random API call sequences keep every invariant", () => {
  fc.assert(
    fc.property(
      configArb,
      fc.array(opArb, { minLength: 1, maxLength: 60, size: "max" }),
      (cfg, ops) => withEventCap(2_000_000, () => runSequence(cfg, ops)),
    ),
    { numRuns: fuzzRuns(500), seed: fuzzSeed() },
  );
});
