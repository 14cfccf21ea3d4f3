/**
 * `static-pin`: VFIO_IOMMU_MAP_DMA of all guest RAM at VM start, pinning
 * every page; the guest's dma_map is free and the IOVA is the GPA.
 *
 * @module
 */
import type { IopfLabError } from "../../sim/errors.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  type VfioDmaMapRequest,
} from "../../vfio/mod.ts";
import type { VmInstance } from "../machine.ts";
import { GUEST_RAM_BASE } from "../layout.ts";
import { type Design, NO_EXTRAS } from "./design.ts";

/** The VFIO_IOMMU_MAP_DMA request of all of a VM's RAM at its GPA. */
function guestRamRequest(vm: VmInstance): VfioDmaMapRequest {
  return {
    vaddr: vm.hva,
    iova: GUEST_RAM_BASE,
    size: vm.ramSize,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
  };
}

/** Maps (and, unless IOPF is enabled, pins) all of a VM's RAM at its GPA at once; returns ns. */
export function mapGuestRam(vm: VmInstance): number {
  return vm.container.mapDma(guestRamRequest(vm));
}

/**
 * Maps all of a VM's RAM at its GPA as the ioctl runs in time (the static
 * pin advances step by step: `VfioContainer.mapDmaTimed`).
 */
export function mapGuestRamTimed(
  vm: VmInstance,
  done: (error?: IopfLabError) => void,
): void {
  vm.container.mapDmaTimed(guestRamRequest(vm), (e) => done(e));
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
  setup: (_m, vm) => ({ ns: 0, timed: (done) => mapGuestRamTimed(vm, done) }),
  extras: () => NO_EXTRAS,
};
