/**
 * `nested` (`smmu.stage: "nested"`): on top of a stage-2 design (`iopf` or
 * `static-pin`) the guest runs its own SMMU driver on an emulated vSMMU,
 * mapping its buffers in its own stage-1 tables; the VMM binds them to the
 * device (the PASID table) and forwards stage-1 faults through VFIO's fault
 * region.
 *
 * @module
 */
import { GuestIommu } from "../../guest/mod.ts";
import { VmmSmmuBackend, VSmmu } from "../../vmm/mod.ts";
import { IopfLabError } from "../../sim/errors.ts";
import { GuestIommuDmaOps } from "../dma_ops.ts";
import { GUEST_RAM_BASE, tablePoolSize } from "../layout.ts";
import type { Design } from "./design.ts";

/** The stage-2 designs nested translation is modelled on. */
const NESTABLE: readonly string[] = ["iopf", "static-pin"];

/** Nested translation: the guest's own stage 1 over the host's stage 2. */
export const nested: Design = {
  name: "nested",
  label: "nested stage 1",
  status: () => ({
    status: "rfc",
    basis:
      "the 2021 RFC's nested IOPF: VFIO_IOMMU_SET_PASID_TABLE and the DMA fault region, never merged",
  }),
  check(s) {
    const mode = s.dma.mode;
    if (!NESTABLE.includes(mode)) {
      throw new IopfLabError(
        "EINVAL",
        `dma.mode: nested translation is modelled with "iopf" stage 2 or "static-pin"; got "${mode}"`,
        "dma.mode",
      );
    }
  },
  setup(m, vm) {
    const { sim, costs } = m;
    const s = m.scenario;
    const c = vm.container;
    const region = c.enableFaultRegion();
    const vsmmu = new VSmmu(sim, { costs });
    // The VMID of the stage-2 domain the VMM allocated for the container.
    const vmid = c.domain?.driverDomain.vmid;
    if (vmid === undefined) {
      throw new IopfLabError(
        "EINVAL",
        "smmu.stage: nested translation needs a stage-2 domain with a VMID",
        "smmu.stage",
      );
    }
    const pool = tablePoolSize(vm.ramSize);
    const guest = new GuestIommu(sim, {
      costs,
      vsmmu,
      tables: m.memory,
      vmid,
      tablePool: { gpa: GUEST_RAM_BASE + vm.ramSize - pool, size: pool },
      stage1: s.guest.stage1,
      stall: s.device.fault === "stall",
    });
    new VmmSmmuBackend(sim, { costs, container: c, region, vsmmu });
    c.setPasidTable(vm.device.iommuDevice, guest.config);
    return { ns: 0, dmaOps: new GuestIommuDmaOps(sim, guest) };
  },
  extras(vm) {
    const g = vm.dmaOps instanceof GuestIommuDmaOps
      ? vm.dmaOps.guest
      : undefined;
    return { guestStage1Faults: g?.stats().faults ?? 0 };
  },
};
