/**
 * The Linux IOMMU core model (drivers/iommu/iommu.c and io-pgfault.c):
 * domains (stage-1 or stage-2 paging domains, nested domains whose stage 1
 * is a guest's), device attach/detach, map/unmap with an IOTLB gather and
 * strict or lazy (flush queue) invalidation, and the IOPF queue that parks
 * partial page requests, groups them, runs the fault handler registered for
 * the device (FAULT_REPORT_FLAT / NESTED_L1 / NESTED_L2) on a workqueue of N
 * workers, and sends exactly one page response per group.
 *
 * The contract with the IOMMU driver is in `types.ts`
 * ({@linkcode IommuDriverOps}, {@linkcode IommuFaultSink}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FAULT_REPORT_FLAT, IOMMU_PAGE_RESP_SUCCESS, IommuCore } from "./mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const core = new IommuCore(sim, { costs, driver, faultWorkers: 2 });
 * driver.setFaultSink(core);
 *
 * // A platform device whose faults stall, on an empty stage-2 domain.
 * const dev = { name: "zip0", sid: 3, ats: false, pri: false, stall: true };
 * const domain = core.domainAllocPaging(2);
 * core.attachDevice(domain, dev);
 * core.devEnableIopf(dev);
 * // The fault handler maps the faulting page, then answers the group.
 * core.registerDeviceFaultHandler(dev, (group, done) => {
 *   const page = group.last.addr - (group.last.addr % 4096);
 *   const ns = core.map(domain, page, 0x8000_0000, 4096, 3);
 *   sim.after(ns, () => {
 *     core.pageResponse(dev, group, IOMMU_PAGE_RESP_SUCCESS);
 *     done();
 *   });
 * }, FAULT_REPORT_FLAT);
 * sim.run();
 *
 * // The device's DMA stalls, faults, is fixed and retried.
 * let pa = -1;
 * smmu.translate({ sid: 3, iova: 0x4000_0123, write: true }, (r) => {
 *   if (r.ok) pa = r.pa;
 * });
 * sim.run();
 * assert(pa === 0x8000_0123);
 * assert(core.iopf.stats().responses.success === 1);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./core.ts";
export * from "./io_pgfault.ts";
export * from "./flush_queue.ts";
