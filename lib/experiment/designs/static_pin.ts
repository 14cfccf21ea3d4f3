/**
 * `static-pin`: VFIO_IOMMU_MAP_DMA of all guest RAM at VM start, pinning
 * every page; the guest's dma_map is free and the IOVA is the GPA.
 *
 * @module
 */
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
} from "../../vfio/mod.ts";
import type { VmInstance } from "../machine.ts";
import { GUEST_RAM_BASE } from "../layout.ts";
import { type Design, NO_EXTRAS } from "./design.ts";

/** Maps (and, unless IOPF is enabled, pins) all of a VM's RAM at its GPA. */
export function mapGuestRam(vm: VmInstance): number {
  return vm.container.mapDma({
    vaddr: vm.hva,
    iova: GUEST_RAM_BASE,
    size: vm.ramSize,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
  });
}

/** Static pinning, as VFIO type1 does it without IOPF. */
export const staticPin: Design = {
  name: "static-pin",
  label: "static pinning",
  status: () => ({
    status: "mainline",
    basis:
      "VFIO type1 (vfio_iommu_type1.c): VFIO_IOMMU_MAP_DMA pins all guest RAM",
  }),
  setup: (_m, vm) => ({ ns: mapGuestRam(vm) }),
  extras: () => NO_EXTRAS,
};
