/**
 * `iopf`: VFIO_IOMMU_MAP_DMA of all guest RAM with IOPF enabled, so pages
 * are pinned and mapped when the device faults on them; the guest's dma_map
 * is free and the IOVA is the GPA.
 *
 * @module
 */
import { type Design, NO_EXTRAS } from "./design.ts";
import { mapGuestRam } from "./static_pin.ts";

/** I/O page faults: guest RAM mapped on fault. */
export const iopf: Design = {
  name: "iopf",
  label: "IOPF",
  setup(_m, vm) {
    vm.container.enableIopf();
    return { ns: mapGuestRam(vm) };
  },
  extras: () => NO_EXTRAS,
};
