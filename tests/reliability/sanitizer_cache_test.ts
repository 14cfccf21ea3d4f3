/**
 * The sanitizer's cache of checked pages changes no verdict: the same runs
 * with the cache on and off check the same accesses and find the same
 * violations, word for word, on every path that moves a generation (the
 * domain's unmaps, the MMU notifier's reclaim, lazy flushes, the guest's
 * stage-1 unmaps); and a violation seeded right after a cached check is
 * caught.
 */
import assert from "node:assert/strict";
import { GUEST_RAM_BASE, teardown } from "../../lib/experiment/mod.ts";
import { newIotlbGather } from "../../lib/iommu/types.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import {
  newDmaLog,
  runWithReclaim,
  smallScenario,
  startDma,
  startMachine,
} from "./_machine.ts";

const RECLAIM = { everyNs: 200_000, pages: 32 };

Deno.test("sanitizer cache: same accesses checked and same violations as the full check, under reclaim", async (t) => {
  for (const invalidation of ["strict", "lazy"] as const) {
    for (const stage of ["s2", "nested"] as const) {
      await t.step(`${invalidation} ${stage}`, () => {
        const scenario = smallScenario({
          name: `cache ${invalidation} ${stage}`,
          vm: { memory: "16MiB" },
          smmu: { stage, invalidation },
          device: { fault: "stall" },
          dma: { mode: "iopf", mmuNotifier: true, faultWorkers: 2 },
          workload: {
            kind: "random",
            workingSet: "4MiB",
            accesses: 1500,
            queueDepth: 8,
          },
        });
        const verdicts = [true, false].map((cache) => {
          const r = runWithReclaim(scenario, {
            ...RECLAIM,
            sanitizer: { cache },
          });
          const s = r.sanitizer;
          assert.ok(
            cache ? s.cached > 0 : s.cached === 0,
            `${s.cached} of ${s.checked} from the cache`,
          );
          return {
            checked: s.checked,
            violations: s.violations,
            lazyExposures: s.lazyExposures,
            examples: s.examples,
            reclaimed: r.reclaimed,
          };
        });
        assert.ok(verdicts[0]!.reclaimed > 0, "no reclaim");
        assert.ok(
          verdicts[0]!.checked >= 1000,
          `${verdicts[0]!.checked} checked`,
        );
        assert.deepEqual(verdicts[0], verdicts[1]);
        // The MMU notifier's unmaps are strict in every mode (lazy is for
        // DMA-API style unmaps only), so neither mode leaves a window here.
        assert.equal(verdicts[0]!.violations, 0);
      });
    }
  }
});

Deno.test("sanitizer cache: a page checked a moment ago and then unmapped behind the driver's back is a violation", () => {
  const { m, sanitizer, vm } = startMachine(smallScenario({
    dma: { mode: "static-pin" },
  }));
  const log = newDmaLog();
  const iova = GUEST_RAM_BASE + 0x10_0000;
  // Twice, so the second access is answered from the cache.
  startDma(vm, log, { iova, size: PAGE_SIZE, write: false });
  startDma(vm, log, { iova, size: PAGE_SIZE, write: false });
  m.sim.run();
  assert.equal(sanitizer.checked, 2);
  assert.equal(sanitizer.cached, 1);
  assert.equal(sanitizer.violations, 0);
  m.core.unmapFast(vm.container.domain!, iova, PAGE_SIZE, newIotlbGather());
  startDma(vm, log, { iova, size: PAGE_SIZE, write: true });
  m.sim.run();
  assert.deepEqual(log.results.map((x) => x.ok), [true, true, true]);
  assert.equal(sanitizer.violations, 1);
  assert.match(
    sanitizer.examples[0]!,
    /the domain maps nothing at this address$/,
  );
  teardown(m);
});
