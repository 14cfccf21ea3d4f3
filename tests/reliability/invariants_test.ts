/**
 * The model's invariant checks (lib/experiment/invariants.ts) hold on a
 * healthy machine and catch a hand-broken one: each broken invariant throws
 * EIO naming it, with the numbers that disagree.
 */
import assert from "node:assert/strict";
import {
  checkInvariants,
  INVARIANTS,
  type Machine,
  teardown,
} from "../../lib/experiment/mod.ts";
import { IOMMU_PAGE_RESP_SUCCESS } from "../../lib/iommu/types.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  newDmaLog,
  smallScenario,
  startDma,
  startMachine,
} from "./_machine.ts";

/** Asserts `checkInvariants` throws EIO naming `name` and matching `detail`. */
function assertBroken(
  m: Machine,
  when: "after the workload" | "after teardown",
  name: keyof typeof INVARIANTS,
  detail: RegExp,
): void {
  assert.throws(
    () => checkInvariants(m, when),
    (e: unknown) => {
      assert.ok(e instanceof IopfLabError);
      assert.equal(e.code, "EIO");
      assert.ok(
        e.message.startsWith(
          `Invariant broken ${when} in ${m.scenario.name}: ${name} (${
            INVARIANTS[name]
          }): `,
        ),
        e.message,
      );
      assert.match(e.message, detail);
      return true;
    },
  );
}

const scenario = (mode: "iopf" | "static-pin") =>
  smallScenario({
    name: `broken-${mode}`,
    vm: { memory: "16MiB" },
    dma: { mode },
  });

Deno.test("a healthy machine passes every check, before and after teardown", () => {
  for (const mode of ["iopf", "static-pin"] as const) {
    const { m, vm } = startMachine(scenario(mode));
    const log = newDmaLog();
    startDma(vm, log, { iova: 0x4010_0000, size: 3 * 4096, write: true });
    m.sim.run();
    const r = checkInvariants(m, "after the workload");
    assert.equal(r.checks, 7);
    assert.equal(r.violations, 0);
    teardown(m);
    assert.equal(checkInvariants(m, "after teardown").checks, 8);
  }
});

Deno.test("a page pinned behind VFIO's back breaks pinsAgree", () => {
  const { m, vm } = startMachine(scenario("iopf"));
  vm.mm.pinUserPages(vm.hva + 0x5000, 1, { longterm: true });
  assertBroken(
    m,
    "after the workload",
    "pinsAgree",
    /vm0: mm holds 1 pins, VFIO holds 0 \(EIO\)$/,
  );
  vm.mm.unpinUserPages(vm.hva + 0x5000, 1);
  checkInvariants(m, "after the workload");
});

Deno.test("memory charged behind VFIO's back breaks lockedAgree", () => {
  const { m, vm } = startMachine(scenario("static-pin"));
  vm.mm.accountLockedVm(2, true);
  assertBroken(
    m,
    "after the workload",
    "lockedAgree",
    /vm0: locked_vm 4098 pages, VFIO charged 4096 \(EIO\)$/,
  );
});

Deno.test("a fault group left without its answer breaks noPendingGroups", () => {
  const { m, vm } = startMachine(scenario("iopf"));
  let release: (() => void) | undefined;
  vm.container.lock.acquire((r) => (release = r));
  startDma(vm, newDmaLog(), { iova: 0x4010_0000, size: 4096, write: true });
  m.sim.run(); // the fault waits for the container lock forever
  assertBroken(m, "after the workload", "noPendingGroups", /1 groups pending/);
  release!();
  m.sim.run();
  checkInvariants(m, "after the workload");
});

Deno.test("a second response to an answered group breaks oneResponsePerGroup", () => {
  const { m, vm } = startMachine(scenario("iopf"));
  vm.container.lock.acquire(() => {}); // VFIO's handler never runs
  startDma(vm, newDmaLog(), { iova: 0x4010_0000, size: 4096, write: true });
  m.sim.run();
  const [g] = m.core.iopf.pendingGroups();
  assert.ok(g);
  m.core.pageResponse(g.dev, g, IOMMU_PAGE_RESP_SUCCESS);
  assert.throws(
    () => m.core.pageResponse(g.dev, g, IOMMU_PAGE_RESP_SUCCESS),
    { code: "EINVAL" },
  );
  assertBroken(
    m,
    "after the workload",
    "oneResponsePerGroup",
    /1 groups, 1 answered, 0 pending, 1 second responses refused/,
  );
});

Deno.test("a pin that outlives the container breaks nothingPinnedAfterTeardown", () => {
  const { m, vm } = startMachine(scenario("iopf"));
  vm.mm.pinUserPages(vm.hva, 3, { longterm: true });
  vm.container.release();
  m.sim.run();
  assertBroken(
    m,
    "after teardown",
    "nothingPinnedAfterTeardown",
    /vm0: 3 pages pinned/,
  );
});

Deno.test("guest RAM left populated breaks nothingPopulatedAfterTeardown", () => {
  const { m, vm } = startMachine(scenario("static-pin"));
  vm.container.release(); // the VMM never exits its address space
  m.sim.run();
  assertBroken(
    m,
    "after teardown",
    "nothingPopulatedAfterTeardown",
    /vm0: 16777216 bytes populated/,
  );
});

Deno.test("a page VFIO pins twice (two IOVAs) keeps pinsAgree", () => {
  const { m, vm } = startMachine(scenario("static-pin"));
  // The VMM maps one more IOVA onto guest RAM that is already pinned: the
  // page's pin count is 2, mm's pinned pages stay the same.
  vm.container.mapDma({
    vaddr: vm.hva,
    iova: 0x8000_0000_0000,
    size: 4096,
    flags: 3,
  });
  m.sim.run();
  assert.equal(vm.mm.pinRefs, vm.mm.pinnedPages + 1);
  checkInvariants(m, "after the workload");
  teardown(m);
  checkInvariants(m, "after teardown");
});
