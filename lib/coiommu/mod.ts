/**
 * coIOMMU: cooperative DMA buffer tracking, the design of Tian, Zhang,
 * Kang, Zhao and Dong, "coIOMMU: A Virtual IOMMU with Cooperative DMA
 * Buffer Tracking for Efficient Memory Management in Direct I/O" (USENIX
 * ATC 2020), as a comparison mode for VFIO passthrough: instead of pinning
 * all guest RAM at VM start (static pinning) or mapping on I/O page faults
 * (IOPF), the guest tells the host which pages it uses for DMA through a
 * table in shared memory, and the host pins exactly those, lazily.
 *
 * What the model takes from the paper (sections named as in the paper):
 *
 * - **Cooperative DMA buffer tracking / the DMA Tracking Table (DTT)**: a
 *   page-table-like structure in guest memory, indexed by guest frame
 *   number, shared with the host and kept apart from DMA remapping (IOVA =
 *   GPA: coIOMMU tracks, it does not translate, so it gives no protection
 *   inside the guest). A 4-byte leaf entry holds PINNED (bit 31, host),
 *   ACCESSED (bit 30, guest) and a map count ({@linkcode DmaTrackingTable};
 *   the 10-bit leaf and 9-bit upper strides follow crosvm's public backend,
 *   devices/src/pci/coiommu.rs).
 * - **Fine-grained pinning / guest mapping operations**: the guest's
 *   dma_map marks each frame (`coiommu.dttMark`) and rings a doorbell only
 *   for frames not pinned yet, one per dma_map call naming all of them
 *   (`coiommu.doorbell`, an ioeventfd write handled in the kernel, far
 *   cheaper than a trap to the VMM); the host's pin thread
 *   (`coiommu.threadWakeup`, `coiommu.pinLookup` per frame) pins and maps
 *   each 4 KiB frame with its own VFIO_IOMMU_MAP_DMA, charged to locked_vm,
 *   and sets PINNED; the guest waits for it. dma_unmap only unmarks
 *   ({@linkcode CoiommuFrontend}).
 * - **Lazy unpinning**: pages stay pinned after dma_unmap. Policy `off`
 *   (the default, as in crosvm) never unpins; policy `lru` runs an unpin
 *   thread every unpin interval (default 60 s) that unpins a page only when
 *   its entry is exactly PINNED (no map outstanding, ACCESSED clear, by one
 *   compare-and-exchange), clears ACCESSED otherwise (a second chance), and
 *   moves pages busy for `generationThreshold` intervals (default 10) to an
 *   older generation scanned only every `generationThreshold` passes
 *   (`coiommu.unpinScanPerEntry` per page examined, plus VFIO's unmap).
 *   A balloon request unpins by force and is refused for a page the guest
 *   still has mapped ({@linkcode CoiommuBackend}).
 *
 * Not modelled: the paper's speculative ("smart") pinning of pages beyond
 * the ones requested, the per-vCPU notify registers (the doorbell cost is
 * per request, whatever the vCPU), the unpin limit per pass, and the DTT's
 * own guest pages as part of guest RAM (reported as `dtt.bytes`). Where the
 * crosvm backend forgets a page that is busy while the generation
 * threshold is 0, the model keeps it in the single generation. All costs
 * are estimates in data/costs/default.json; the paper's figures are
 * end-to-end results the model must reproduce from the mechanism, not
 * inputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoiommuBackend, CoiommuFrontend, DmaTrackingTable } from "./mod.ts";
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
 * // The VMM: a type1 container without IOPF and without a RAM-wide MAP_DMA.
 * const container = new VfioContainer(core, mm);
 * container.setIommu("type1v2");
 * container.attachDevice({ name: "nic0", sid: 3, ats: false, pri: false, stall: false });
 * const dtt = new DmaTrackingTable({ frames: (GPA + ram.size) / 4096 });
 * const backend = new CoiommuBackend(sim, {
 *   costs, container, dtt, hva: ram.start, ramBase: GPA, ramSize: ram.size,
 *   unpinPolicy: "lru", unpinInterval: 1e6, // 1 ms, to see it in a short run
 * });
 * const guest = new CoiommuFrontend(sim, { costs, dtt, backend });
 *
 * // The guest maps a 16 KiB buffer (one doorbell, 4 pages pinned), then unmaps it.
 * guest.dmaMap(GPA + 0x10_0000, 0x4000, (iova) => guest.dmaUnmap(iova, 0x4000, () => {}));
 * sim.run();
 * const pinnedBefore = mm.pinnedPages;
 * assert.equal(pinnedBefore, 4); // still pinned: unpinning is lazy
 *
 * // First pass: ACCESSED is set, second chance. Second pass: exactly PINNED, unpinned.
 * backend.start();
 * sim.run({ until: 2.5e6 });
 * backend.stop();
 * sim.run();
 * assert(mm.pinnedPages === 0 && backend.stats().secondChances === 4);
 * ```
 *
 * @module
 */
export * from "./dtt.ts";
export * from "./frontend.ts";
export * from "./backend.ts";
