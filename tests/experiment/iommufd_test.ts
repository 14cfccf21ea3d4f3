/**
 * dma.backend "iommufd" end to end: the same workload on type1 and iommufd,
 * what each pins, where the faults go, and the design label every run
 * carries (mainline, posted, rfc, what-if).
 */
import assert from "node:assert/strict";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import { runScenario } from "../../lib/experiment/run.ts";
import type { Metrics } from "../../lib/experiment/metrics.ts";

const RAM_PAGES = (256 * 2 ** 20) / 4096;

function run(
  dma: Record<string, unknown>,
  more: Record<string, unknown> = {},
): Metrics {
  return runScenario(parseScenario({
    name: "t",
    vm: { memory: "256MiB" },
    workload: {
      kind: "accelerator",
      messageSize: "256KiB",
      messages: 8,
      reuseBuffers: true,
    },
    dma,
    check: true,
    ...more,
  }));
}

const NESTED = { smmu: { stage: "nested" }, guest: { stage1: "on-fault" } };

Deno.test("iommufd pinned IOAS pins all guest RAM at start, as type1 static pinning, and takes no fault", () => {
  const t1 = run({ mode: "static-pin" });
  const fd = run({ mode: "static-pin", backend: "iommufd" });
  assert.equal(fd.pinnedPagesPeak, RAM_PAGES);
  assert.equal(fd.pinnedPagesPeak, t1.pinnedPagesPeak);
  assert.equal(fd.lockedBytesPeak, RAM_PAGES * 4096);
  assert.equal(fd.faults.total, 0);
  assert.equal(fd.dmaErrors, 0);
  assert.deepEqual(
    [fd.design?.backend, fd.design?.status],
    ["iommufd", "mainline"],
  );
  assert.deepEqual([t1.design?.backend, t1.design?.status], [
    "type1",
    "mainline",
  ]);
});

Deno.test("iommufd IOPF (what-if) pins only what the device touches, like the RFC's type1 IOPF, and says it is a what-if", () => {
  const rfc = run({ mode: "iopf" });
  const wi = run({ mode: "iopf", backend: "iommufd" });
  assert.equal(rfc.design?.status, "rfc");
  assert.equal(wi.design?.status, "what-if");
  assert.match(wi.design!.basis, /not supported yet/);
  assert(wi.pinnedPagesPeak < RAM_PAGES / 10, `${wi.pinnedPagesPeak}`);
  assert.equal(wi.pinnedPagesPeak, rfc.pinnedPagesPeak);
  assert.equal(wi.faults.stage2, rfc.faults.stage2);
  assert(wi.faults.stage2 > 0);
  assert.equal(wi.extra!.iommufdIopfFaults, wi.faults.total);
  assert.equal(wi.dmaErrors, 0);
  assert(wi.setupNs < run({ mode: "static-pin", backend: "iommufd" }).setupNs);
});

Deno.test("iommufd nested forwards stage-1 faults through the fault fd to the guest and back (mainline with stall)", () => {
  const m = run({ mode: "static-pin", backend: "iommufd" }, NESTED);
  assert.equal(m.design?.status, "mainline");
  assert.equal(m.design?.label, "iommufd pinned IOAS + iommufd nested stage 1");
  assert(m.faults.stage1 > 0);
  assert.equal(m.faults.stage2, 0); // the IOAS is pinned: stage 2 never faults
  assert.equal(m.extra!.iommufdFaultGroups, m.faults.stage1);
  assert.equal(m.extra!.iommufdFaultGroupsRead, m.faults.stage1);
  assert.equal(m.extra!.iommufdFaultResponses, m.faults.stage1);
  assert.equal(m.extra!.guestStage1Faults, m.faults.stage1);
  assert(m.extra!.vmmFaultFdReads! > 0);
  assert.equal(m.dmaErrors, 0);
  assert.equal(m.pinnedPagesPeak, RAM_PAGES);
});

Deno.test("iommufd nested with a PRI device rests on the posted SMMUv3 PRI series", () => {
  const m = run({ mode: "static-pin", backend: "iommufd" }, {
    ...NESTED,
    device: { fault: "pri" },
  });
  assert.equal(m.design?.status, "posted");
  assert(m.faults.pri > 0);
  assert.equal(m.dmaErrors, 0);
});

Deno.test("iommufd nested over a fault-mapped IOAS (what-if) handles stage 2 in the kernel and forwards stage 1", () => {
  const m = run({ mode: "iopf", backend: "iommufd" }, NESTED);
  assert.equal(m.design?.status, "what-if");
  assert(m.faults.stage1 > 0 && m.faults.stage2 > 0);
  assert.equal(m.extra!.iommufdFaultGroups, m.faults.stage1);
  assert.equal(m.extra!.iommufdIopfFaults, m.faults.stage2);
  assert(m.pinnedPagesPeak < RAM_PAGES / 10);
  assert.equal(m.dmaErrors, 0);
});

Deno.test("an iommufd VM over the memlock limit fails to start and leaves nothing pinned", () => {
  const m = run({ mode: "static-pin", backend: "iommufd" }, {
    host: { memlockLimit: "64MiB" },
  });
  assert.equal(m.extra!.vmsFailed, 1);
  assert.match(m.errors![0]!, /RLIMIT_MEMLOCK/);
  assert.equal(m.pinnedPagesEnd, 0);
});
