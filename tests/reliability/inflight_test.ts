/**
 * Device removal, container release, UNMAP_DMA and VM teardown while I/O
 * page faults are in flight: every pending fault group is answered (INVALID
 * when the device goes away), the device sees its transfers fail, nothing
 * hangs, and nothing leaks (no pin, no locked memory, no populated page, no
 * stalled transaction, no page request left outstanding).
 */
import assert from "node:assert/strict";
import {
  checkInvariants,
  dmaContext,
  GUEST_RAM_BASE,
  type Machine,
  teardown,
  type VmInstance,
} from "../../lib/experiment/mod.ts";
import type { IopfGroup } from "../../lib/iommu/io_pgfault.ts";
import { IOMMU_PAGE_RESP_INVALID } from "../../lib/iommu/types.ts";
import { PciDevice } from "../../lib/pci/pci_device.ts";
import {
  assertNothingLeaked,
  assertQuiet,
  type DmaLog,
  newDmaLog,
  smallScenario,
  startMachine,
} from "./_machine.ts";

type Action = "detach" | "release" | "unmap" | "teardown";

/** Starts `n` transfers of `pages` pages each on fresh guest buffers (mapped by the guest's DMA API). */
function startTransfers(
  m: Machine,
  vm: VmInstance,
  log: DmaLog,
  n: number,
  pages: number,
): void {
  const ctx = dmaContext(m, vm, new Map());
  for (let i = 0; i < n; i++) {
    const size = pages * 4096;
    const gpa = ctx.allocBuffer(size);
    ctx.dmaMap(gpa, size, i % 2 === 0, (iova) => {
      log.started++;
      vm.device.dma(
        { iova, size, write: i % 2 === 0 },
        (r) => log.results.push(r),
      );
    });
  }
}

/** Steps the simulator until `cond` holds (or nothing is left to run). */
function runUntil(m: Machine, cond: () => boolean): void {
  while (!cond() && m.sim.pending > 0) m.sim.run({ maxEvents: 1 });
  assert.ok(cond(), "the condition never held");
}

/** Performs `action` on the VM while its faults are pending. */
function act(m: Machine, vm: VmInstance, action: Action): void {
  const c = vm.container;
  switch (action) {
    case "detach":
      c.detachDevice(vm.device.iommuDevice);
      break;
    case "release":
      c.release();
      break;
    case "unmap":
      assert.equal(
        c.unmapDma({ iova: GUEST_RAM_BASE, size: vm.ramSize }).bytes,
        vm.ramSize,
      );
      break;
    case "teardown":
      teardown(m);
      break;
  }
}

interface Case {
  readonly action: Action;
  readonly fault: "stall" | "pri";
  readonly stage: "s2" | "nested";
  readonly mode: "iopf" | "static-pin";
  /** Hold the container lock, so stage-2 groups wait inside the VFIO handler's lock. */
  readonly holdLock: boolean;
  /** Where handlers run: on the workqueue several groups are pending at once, in the evtq thread one. ["workqueue"] */
  readonly faultPath?: "workqueue" | "evtq-thread";
}

function runCase(k: Case): void {
  const { m, sanitizer, vm } = startMachine(smallScenario({
    vm: { memory: "16MiB" },
    smmu: { stage: k.stage },
    device: { fault: k.fault },
    iommu: { faultPath: k.faultPath ?? "workqueue" },
    dma: { mode: k.mode, faultWorkers: 2, mmuNotifier: k.mode === "iopf" },
    ...(k.stage === "nested" ? { guest: { stage1: "on-fault" } } : {}),
  }));
  const inThread = k.faultPath === "evtq-thread";
  const log = newDmaLog();
  let release: (() => void) | undefined;
  if (k.holdLock) vm.container.lock.acquire((r) => (release = r));
  startTransfers(m, vm, log, 6, 3);
  // Run until the first faults are reported and waiting for their answer.
  // (In the event-queue thread one group at a time is in its handler; the
  // others wait in the hardware queue.)
  runUntil(m, () => m.core.iopf.stats().pendingGroups >= (inThread ? 1 : 2));
  const pending: IopfGroup[] = m.core.iopf.pendingGroups();
  const d = vm.device;
  if (d instanceof PciDevice) assert.ok(d.outstandingPageRequests > 0);
  else assert.ok(m.smmu.stalledCount > 0);
  act(m, vm, k.action);
  if (k.action !== "unmap") {
    // Removal answers every pending group INVALID at once.
    for (const g of pending) {
      assert.equal(g.state, "revoked", `group ${g.id}`);
      assert.equal(g.code, IOMMU_PAGE_RESP_INVALID);
    }
    assert.equal(m.core.iopf.stats().pendingGroups, 0);
  }
  release?.();
  m.sim.run();
  assert.equal(log.results.length, log.started, "a transfer never completed");
  for (const g of pending) assert.ok(g.responded, `group ${g.id} unanswered`);
  if (k.mode === "iopf") {
    // Every transfer needed a stage-2 fault that can no longer be served.
    assert.equal(log.results.filter((r) => r.ok).length, 0);
    assert.equal(vm.device.stats.dmaErrors, log.started);
  } else {
    assert.ok(vm.device.stats.dmaErrors > 0, "the device saw no error");
  }
  assertQuiet(m);
  if (k.action !== "teardown") {
    checkInvariants(m, "after the workload");
    teardown(m);
  }
  assertQuiet(m);
  checkInvariants(m, "after teardown");
  assertNothingLeaked(m);
  assert.equal(sanitizer.violations, 0, sanitizer.examples.join("\n"));
}

Deno.test("faults in flight when the device, its mappings or the VM go away", async (t) => {
  for (const action of ["detach", "release", "unmap", "teardown"] as const) {
    for (const fault of ["stall", "pri"] as const) {
      for (const stage of ["s2", "nested"] as const) {
        for (const holdLock of [false, true]) {
          const k: Case = { action, fault, stage, mode: "iopf", holdLock };
          await t.step(
            `${action} ${fault} ${stage} iopf${holdLock ? " (lock held)" : ""}`,
            () => runCase(k),
          );
        }
        const sync: Case = {
          action,
          fault,
          stage,
          mode: "iopf",
          holdLock: true,
          faultPath: "evtq-thread",
        };
        await t.step(
          `${action} ${fault} ${stage} iopf (lock held, evtq-thread)`,
          () => runCase(sync),
        );
      }
      // Nested with a static stage 2: the pending groups are stage-1 faults
      // forwarded to the guest through the DMA fault region.
      if (action !== "unmap") {
        const k: Case = {
          action,
          fault,
          stage: "nested",
          mode: "static-pin",
          holdLock: false,
        };
        await t.step(`${action} ${fault} nested static-pin`, () => runCase(k));
      }
    }
  }
});
