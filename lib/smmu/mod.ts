/**
 * The Arm SMMUv3 model: the hardware ({@linkcode Smmu}: stream table, CD
 * tables, configuration cache, IOTLB, stage-1/stage-2/nested walks, the
 * stall model, event/PRI/command queues holding the architected 32- and
 * 16-byte records, ATS and PRI) and the arm-smmu-v3 driver
 * ({@linkcode ArmSmmuV3Driver}, implementing the IOMMU core's driver
 * contract, with full PRI support unlike mainline Linux).
 *
 * The example below is a whole stall-model fault round trip: a stage-2
 * domain with IOPF enabled, a DMA to an unmapped IPA that stalls, a tiny
 * "IOMMU core" that maps the page and answers SUCCESS, CMD_RESUME Retry, and
 * the transaction completing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import type { IommuDevice, IommuFault } from "../iommu/types.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "./mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const drv = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const dom = drv.domainAllocPaging(2);
 * drv.setFaultSink({
 *   reportDeviceFault(dev: IommuDevice, fault: IommuFault) {
 *     drv.map(dom, fault.addr - (fault.addr % 4096), 0x8000_0000, 4096, 3);
 *     drv.pageResponse(dev, fault, 0); // SUCCESS -> CMD_RESUME Retry
 *   },
 *   iopfQueueDiscardPartial() {},
 * });
 * const dev = { name: "zip0", sid: 1, ats: false, pri: false, stall: true };
 * drv.enableIopf(dev);
 * let pa = -1;
 * drv.attachDev(dev, dom, () => {
 *   smmu.translate({ sid: 1, iova: 0x1234, write: true }, (r) => {
 *     pa = r.ok ? r.pa : -1;
 *   });
 * });
 * sim.run();
 * assert(pa === 0x8000_0234 && smmu.stats.stalls === 1);
 * assert(drv.stats.resumes.retry === 1);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./queue.ts";
export * from "./tlb.ts";
export * from "./memory.ts";
export * from "./smmu.ts";
export * from "./driver.ts";
