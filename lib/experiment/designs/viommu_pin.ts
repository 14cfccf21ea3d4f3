/**
 * `viommu-pin`: nothing is mapped at VM start; the guest's caching-mode
 * vIOMMU traps every dma_map and dma_unmap to the VMM, which pins and maps
 * (VFIO_IOMMU_MAP_DMA / UNMAP_DMA) the buffer at the guest's IOVA.
 *
 * @module
 */
import { CachingModeViommu } from "../../guest/mod.ts";
import { ViommuDmaOps } from "../dma_ops.ts";
import { GUEST_IOVA_BASE, GUEST_RAM_BASE } from "../layout.ts";
import type { Design } from "./design.ts";

/** Pinning on the guest's vIOMMU map. */
export const viommuPin: Design = {
  name: "viommu-pin",
  label: "vIOMMU pinning",
  status: () => ({
    status: "mainline",
    basis:
      "QEMU's caching-mode vIOMMU replaying guest maps as VFIO_IOMMU_MAP_DMA",
  }),
  setup(m, vm) {
    const viommu = new CachingModeViommu(m.sim, {
      costs: m.costs,
      container: vm.container,
      hva: vm.hva,
      ramBase: GUEST_RAM_BASE,
      ramSize: vm.ramSize,
      iovaBase: GUEST_IOVA_BASE,
    });
    return { ns: 0, dmaOps: new ViommuDmaOps(viommu) };
  },
  extras(vm) {
    const v = vm.dmaOps instanceof ViommuDmaOps ? vm.dmaOps.viommu : undefined;
    return {
      viommuTraps: v?.counters.get("viommu.traps") ?? 0,
      viommuMaps: v?.counters.get("viommu.maps") ?? 0,
      viommuUnmaps: v?.counters.get("viommu.unmaps") ?? 0,
      viommuMapFailures: v?.counters.get("viommu.mapFailures") ?? 0,
      viommuEmulationWaitNs: v?.emulation.totalWaitNs ?? 0,
    };
  },
};
