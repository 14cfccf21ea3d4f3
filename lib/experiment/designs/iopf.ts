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
  status: () => ({
    status: "rfc",
    basis:
      'the 2021 RFC "Add IOPF support for VFIO passthrough" (type1 fault handler), never merged',
  }),
  setup(_m, vm) {
    vm.container.enableIopf();
    return { ns: mapGuestRam(vm) };
  },
  extras: () => NO_EXTRAS,
};
