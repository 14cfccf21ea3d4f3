/**
 * iommufd (drivers/iommu/iommufd, include/uapi/linux/iommufd.h), the VFIO
 * backend mainline Linux grew instead of the 2021 RFC's type1 IOPF: an
 * {@linkcode IommufdCtx} holds a VMM's IOAS (every IOMMU_IOAS_MAP pinned),
 * paging and nested HWPTs, vIOMMU and vDEVICE objects (6.13), and fault
 * objects (6.11) whose fd hands a nested HWPT's fault groups to user space
 * as 40-byte struct iommu_hwpt_pgfault records and takes 8-byte struct
 * iommu_hwpt_page_response answers ({@linkcode IommufdFault}), and vEVENTQs
 * (6.15) that hand a vIOMMU's non-recoverable events to user space as raw
 * SMMUv3 records behind a sequence-numbered header
 * ({@linkcode IommufdVeventq}).
 *
 * What-if, labelled as such: an IOAS allocated with `iopf: true` pins and
 * maps on fault in the kernel (the RFC's idea on iommufd; no kernel has
 * it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodePgfaults, encodePageResponses, IommufdCtx, IOMMU_HWPT_ALLOC_NEST_PARENT,
 *   IOMMU_HWPT_FAULT_ID_VALID, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
 *   IOMMU_IOAS_MAP_WRITEABLE, IOMMUFD_PAGE_RESP_SUCCESS,
 * } from "./mod.ts";
 * import { IommuCore } from "../iommu/mod.ts";
 * import { HostMemory, MmStruct } from "../mm/mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 * import { IoPgtable } from "../pgtable/mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const core = new IommuCore(sim, { costs, driver });
 * driver.setFaultSink(core);
 * const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), { memlockLimit: Infinity });
 * const ram = mm.mmap({ size: 2 ** 24, backing: "4k" });
 * const dev = { name: "zip0", sid: 7, ats: false, pri: false, stall: true };
 * const GPA = 0x4000_0000; // guest RAM starts here
 *
 * // QEMU's accelerated SMMUv3: an S2 HWPT over a pinned IOAS, a vIOMMU, a
 * // vDEVICE, a fault queue and a nested HWPT for the guest's stage 1.
 * const ctx = new IommufdCtx(core, mm);
 * const devId = ctx.bindDevice(dev);
 * const ioas = ctx.ioasAlloc();
 * const s2 = ctx.hwptAlloc({ devId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).id;
 * const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
 * ctx.ioasMap(ioas, { userVa: ram.start, iova: GPA, length: 2 ** 24, flags });
 * const viommu = ctx.viommuAlloc({ devId, hwptId: s2 });
 * ctx.vdeviceAlloc({ viommuId: viommu, devId, virtId: 0x10 });
 * const { faultId, fault } = ctx.faultQueueAlloc();
 * // The guest's empty stage 1, its tables in the last MiB of its RAM.
 * let table = GPA + 15 * 2 ** 20;
 * const s1 = new IoPgtable({ stage: 1, allocTable: () => (table += 4096) });
 * memory.register(ctx.hwpt(s2).domain.driverDomain.vmid!, s1);
 * const nested = ctx.hwptAlloc({
 *   devId, ptId: viommu, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId,
 *   data: { s1Ttb: s1.root, asid: 1, stall: true },
 * }).id;
 * ctx.attach(devId, nested);
 * sim.run();
 *
 * // The device touches an IOVA the guest has not mapped: a stage-1 stall,
 * // delivered to user space as one group of one 40-byte record.
 * let result: boolean | undefined;
 * smmu.translate({ sid: 7, iova: 0x1000, write: true }, (r) => (result = r.ok));
 * sim.run();
 * const recs = decodePgfaults(fault.read(40 * 16));
 * assert.equal(recs.length, 1);
 * assert.equal(recs[0]!.devId, devId);
 * assert.equal(recs[0]!.addr, 0x1000);
 * assert.equal(recs[0]!.length, 0); // no hint
 * // The guest maps the page (IPA GPA) and answers SUCCESS.
 * s1.map(0x1000, GPA, 4096, 3);
 * fault.write(encodePageResponses([{ cookie: recs[0]!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]));
 * sim.run();
 * assert.equal(result, true);
 * // A repeated cookie is EINVAL.
 * assert.throws(
 *   () => fault.write(encodePageResponses([{ cookie: recs[0]!.cookie, code: 0 }])),
 *   { code: "EINVAL" },
 * );
 * ```
 *
 * @module
 */
export {
  type HwptAllocRequest,
  IommufdCtx,
  type IommufdCtxOptions,
  type IommufdHwpt,
  type IommufdViommu,
} from "./ctx.ts";
export {
  IOMMUFD_ACCOUNT_MODES,
  IommufdAccount,
  type IommufdAccountMode,
  IommufdUser,
} from "./account.ts";
export { IommufdFault, type IommufdFaultOptions } from "./fault.ts";
export {
  type IoasMapRequest,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IommufdIoas,
  type IommufdIoasOptions,
  IOPT_PIN_BATCH_PAGES,
  IoptArea,
} from "./ioas.ts";
export { ioasIopfHandler } from "./iopf.ts";
export { IommufdVeventq, type IommufdVeventqOptions } from "./veventq.ts";
export {
  decodePageResponse,
  decodePgfault,
  decodePgfaults,
  decodeVevents,
  encodePageResponses,
  encodePgfault,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_PAGE_RESPONSE_SIZE,
  IOMMU_HWPT_PGFAULT_SIZE,
  IOMMU_VEVENT_ARM_SMMUV3_SIZE,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMUFD_VEVENT_HEADER_SIZE,
  type IommufdVevent,
  type IommuHwptPageResponse,
  type IommuHwptPgfault,
  PGFAULT_OFFSETS,
  VEVENT_SEQUENCE_MAX,
} from "./uapi.ts";
