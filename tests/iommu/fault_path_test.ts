import assert from "node:assert/strict";
import { IommuCore } from "../../lib/iommu/core.ts";
import {
  FAULT_REPORT_FLAT,
  type FaultPath,
  IOMMU_PAGE_RESP_SUCCESS,
} from "../../lib/iommu/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../../lib/smmu/mod.ts";

/** Handler time of the first fault (ns): a slow one, say a 2 MiB zeroing. */
const SLOW = 400_000;
/** Handler time of the second fault (ns). */
const FAST = 1_000;

/**
 * Two stall-capable devices on one SMMU, each on its own stage-2 domain,
 * whose handler maps the faulting page after `SLOW` (dev A) or `FAST` (dev
 * B) ns and answers. Both devices fault at t = 0; the times each handler
 * started are recorded.
 */
function twoFaults(path: FaultPath, workers = 2) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, {
    costs,
    driver,
    faultWorkers: workers,
    faultPath: path,
  });
  driver.setFaultSink(core);
  const started: Record<string, number> = {};
  const mapped: Record<string, number> = {};
  const devs = [
    { name: "a", sid: 1, ns: SLOW, pa: 0x8000_0000 },
    { name: "b", sid: 2, ns: FAST, pa: 0x9000_0000 },
  ];
  for (const d of devs) {
    const dev = {
      name: d.name,
      sid: d.sid,
      ats: false,
      pri: false,
      stall: true,
    };
    const domain = core.domainAllocPaging(2);
    core.attachDevice(domain, dev);
    core.devEnableIopf(dev);
    core.registerDeviceFaultHandler(dev, (group, done) => {
      started[d.name] = sim.now;
      sim.after(d.ns, () => {
        const page = group.last.addr - (group.last.addr % 4096);
        core.map(domain, page, d.pa, 4096, 3);
        core.pageResponse(dev, group, IOMMU_PAGE_RESP_SUCCESS);
        done();
      });
    }, FAULT_REPORT_FLAT);
  }
  sim.run();
  const t0 = sim.now;
  for (const d of devs) {
    smmu.translate({ sid: d.sid, iova: 0x4000_0000, write: true }, (r) => {
      assert(r.ok, `${d.name}'s access completes`);
      mapped[d.name] = sim.now;
    });
  }
  sim.run();
  return {
    t0,
    costs,
    core,
    driver,
    startA: started.a! - t0,
    startB: started.b! - t0,
    doneB: mapped.b! - t0,
  };
}

Deno.test("fault path evtq-thread: a second fault waits for the first fault's handler", () => {
  const sync = twoFaults("evtq-thread");
  const wq = twoFaults("workqueue");
  const k = sync.costs;
  // In the event-queue thread, B's record is read only once A's handler
  // returned: B's handler starts exactly SLOW + one record's decode, the
  // reporting and the group dispatch after A's.
  assert.equal(
    sync.startB - sync.startA,
    SLOW + k["smmu.evtqHandlerPerRecord"] + k["iopf.reportFault"] +
      k["iopf.groupOverhead"],
  );
  // On the workqueue (two workers), B's handler starts one record later
  // than A's: the thread hands A's group off and reads B's at once.
  assert.equal(wq.startB - wq.startA, k["smmu.evtqHandlerPerRecord"]);
  // The thread was held for the two handlers (and their dispatch), and B's
  // access completes after A's slow handler only on the synchronous path.
  assert(sync.doneB > SLOW && wq.doneB < SLOW);
  assert(sync.driver.stats.evtqThreadHeldNs >= SLOW + FAST);
  assert.equal(wq.driver.stats.evtqThreadHeldNs, 0);
  assert.equal(sync.core.iopf.stats().threadHandled, 2);
  assert.equal(wq.core.iopf.stats().threadHandled, 0);
  assert.equal(sync.core.iopf.path, "evtq-thread");
});

Deno.test("fault path evtq-thread: no workqueue wakeup, no worker", () => {
  // The first handler starts after the IRQ, one record's decode, the
  // report and the group overhead; the workqueue adds a kworker wakeup.
  const sync = twoFaults("evtq-thread", 1);
  const wq = twoFaults("workqueue", 1);
  const k = sync.costs;
  assert.equal(wq.startA - sync.startA, k["iopf.workqueueWakeup"]);
  assert.equal(sync.core.iopf.workers.waits, 0);
});

Deno.test("fault path: an unknown path is EINVAL", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  assert.throws(
    () =>
      new IommuCore(sim, {
        costs,
        driver,
        faultPath: "tasklet" as FaultPath,
      }),
    (e) => e instanceof IopfLabError && e.code === "EINVAL",
  );
});
