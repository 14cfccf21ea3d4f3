/**
 * The guest kernel's side: for nested IOPF, the guest's SMMU driver and DMA
 * API with its own stage-1 table at guest-physical addresses
 * ({@linkcode GuestIommu}), driving the virtual SMMU its VMM emulates; for
 * the comparison modes, the guest's DMA API over a vIOMMU in caching mode
 * whose every map and unmap traps to the VMM and becomes a VFIO MAP_DMA /
 * UNMAP_DMA of that buffer ({@linkcode CachingModeViommu}). The VMM's side
 * (the vSMMU, its backend, the trap handler) is lib/vmm; its names are
 * re-exported here too, where they used to live.
 *
 * A stage-1 fault travels: SMMU event -> arm-smmu-v3 driver -> IOMMU core
 * (NESTED_L1) -> VFIO fault region record + eventfd -> VMM -> vSMMU event +
 * interrupt -> guest handler (maps its stage-1 PTE) -> CMD_RESUME/PRI_RESP
 * trap -> VMM -> VFIO response -> CMD_RESUME/PRI_RESP on the real SMMU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GuestIommu } from "./mod.ts";
 * import { VmmSmmuBackend, VSmmu } from "../vmm/mod.ts";
 * import { IommuCore } from "../iommu/mod.ts";
 * import { HostMemory, MmStruct } from "../mm/mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 * import { VfioContainer } from "../vfio/mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const core = new IommuCore(sim, { costs, driver });
 * driver.setFaultSink(core);
 * const host = new HostMemory({ size: 2 ** 30, costs });
 * const mm = new MmStruct(host, { memlockLimit: Infinity });
 * const ram = mm.mmap({ size: 64 * 2 ** 20, backing: "4k" });
 * const GPA = 0x4000_0000; // guest RAM starts here
 *
 * // Host: a nesting container, stage 2 mapped on fault, stage-1 faults forwarded.
 * const container = new VfioContainer(core, mm);
 * container.setIommu("nesting");
 * const dev = { name: "zip0", sid: 3, ats: false, pri: false, stall: true };
 * container.attachDevice(dev);
 * container.enableIopf();
 * const region = container.enableFaultRegion();
 * container.mapDma({ vaddr: ram.start, iova: GPA, size: ram.size, flags: 3 });
 *
 * // Guest: a vSMMU, the guest's driver with tables in its last 2 MiB, the VMM glue.
 * const vsmmu = new VSmmu(sim, { costs });
 * const vmid = container.domain!.driverDomain.vmid!;
 * const guest = new GuestIommu(sim, {
 *   costs,
 *   vsmmu,
 *   tables: memory,
 *   vmid,
 *   tablePool: { gpa: GPA + 62 * 2 ** 20, size: 2 ** 21 },
 *   stage1: "on-fault",
 * });
 * new VmmSmmuBackend(sim, { costs, container, region, vsmmu });
 * container.setPasidTable(dev, guest.config);
 * guest.dmaMap({ iova: 0x1_0000, gpa: GPA + 0x20_0000, size: 0x1_0000, prot: 3 });
 * sim.run();
 *
 * // The device's DMA faults at stage 2 (table pages, the buffer: the host
 * // maps them) and once at stage 1 (the guest maps its PTE), then completes.
 * let ok = false;
 * smmu.translate({ sid: 3, iova: 0x1_2345, write: true }, (r) => (ok = r.ok));
 * sim.run();
 * assert(ok && guest.stats().faults === 1);
 * assert(guest.s1.iovaToPhys(0x1_2345) === GPA + 0x20_2345);
 * assert(container.stats().faults === 5); // 4 table pages + the buffer page
 * ```
 *
 * @module
 */
export * from "./guest_iommu.ts";
export * from "./viommu.ts";
// The VMM's side, which lived here before lib/vmm (same classes).
export {
  VmmSmmuBackend,
  type VmmSmmuBackendOptions,
  VSmmu,
  type VSmmuCommand,
  type VSmmuCommandHandler,
  type VSmmuEvent,
  type VSmmuFaultKind,
  type VSmmuOptions,
} from "../vmm/mod.ts";
