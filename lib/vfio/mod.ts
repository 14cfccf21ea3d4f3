/**
 * VFIO type1 (drivers/vfio/vfio_iommu_type1.c) with the 2021 RFC "Add IOPF
 * support for VFIO passthrough": a {@linkcode VfioContainer} holds a VMM's
 * vfio_dma ranges over the IOMMU core and the VMM's address space.
 *
 * - Static pinning (classic type1): VFIO_IOMMU_MAP_DMA pins every page,
 *   charges locked_vm against RLIMIT_MEMLOCK and maps physically contiguous
 *   runs with the largest page sizes.
 * - IOPF (VFIO_IOMMU_ENABLE_IOPF): MAP_DMA records the range and a bitmap;
 *   the fault handler, serialised by the container lock, pins and maps the
 *   faulting page (plus `premapPages - 1` following ones) and answers.
 * - IOPF with the MMU notifier: no long-term pins; the host mm's
 *   invalidations unmap the pages again.
 * - Nested: stage-2 faults are handled here, stage-1 faults are forwarded to
 *   the guest through the {@linkcode VfioDmaFaultRegion} (ring + eventfd).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VfioContainer } from "./mod.ts";
 * import { IommuCore } from "../iommu/mod.ts";
 * import { HostMemory, MmStruct } from "../mm/mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const core = new IommuCore(sim, { costs, driver });
 * driver.setFaultSink(core);
 *
 * // The VMM's 64 MiB of guest RAM, not touched yet.
 * const host = new HostMemory({ size: 2 ** 30, costs });
 * const mm = new MmStruct(host, { memlockLimit: Infinity });
 * const ram = mm.mmap({ size: 64 * 2 ** 20, backing: "4k" });
 *
 * // A container with IOPF and the RFC v3's pre-map of 512 pages.
 * const container = new VfioContainer(core, mm, { premapPages: 512 });
 * container.setIommu("type1v2");
 * const dev = { name: "zip0", sid: 3, ats: false, pri: false, stall: true };
 * container.attachDevice(dev);
 * container.enableIopf();
 * container.mapDma({
 *   vaddr: ram.start,
 *   iova: 0x4000_0000,
 *   size: ram.size,
 *   flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
 * });
 * sim.run();
 * const pinnedAtStart = mm.pinnedPages;
 * assert.equal(pinnedAtStart, 0); // nothing pinned up front
 *
 * // The device's first DMA stalls; VFIO pins and maps 2 MiB; the SMMU retries.
 * let ok = false;
 * smmu.translate({ sid: 3, iova: 0x4000_0000, write: true }, (r) => (ok = r.ok));
 * sim.run();
 * const pinnedAfterFault = mm.pinnedPages;
 * assert(ok && pinnedAfterFault === 512);
 * assert(container.stats().faults === 1);
 *
 * // Teardown releases every pin and charge.
 * container.release();
 * sim.run();
 * assert(mm.pinnedPages === 0 && mm.lockedVm === 0);
 * ```
 *
 * @module
 */
export * from "./container.ts";
export * from "./fault_region.ts";
