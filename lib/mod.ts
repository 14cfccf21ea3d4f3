/**
 * iopf-lab: a model of the I/O page fault stack for VFIO passthrough (Arm
 * SMMUv3, PCIe ATS/PRI, the Linux IOMMU core's IOPF queue, VFIO type1 with
 * static pinning, IOPF, pre-map, MMU notifier and nested fault forwarding,
 * and the host memory manager) on a discrete-event simulator with a
 * calibrated cost model.
 *
 * The entry point is {@linkcode runScenario}: it validates a scenario
 * (shared/INTERFACE.md), builds the stack, runs the workload and returns the
 * metrics. Each layer is also available as a namespace (`sim`, `mm`,
 * `pgtable`, `smmu`, `device`, `pci`, `iommu`, `vfio`, `guest`, `vmm`, `workload`,
 * `coiommu`, `analysis`). The figures (`./plot`), the report (`./report`)
 * and the notebook helpers (`./notebook`) are entries of their own, so
 * importing the simulator does not load the plotting stack (Observable
 * Plot, linkedom, resvg).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario, runScenario } from "./mod.ts";
 * const metrics = runScenario(parseScenario({
 *   vm: { memory: "1GiB" },
 *   dma: { mode: "iopf", premapPages: 512 },
 *   workload: { kind: "accelerator", messageSize: "1MiB", messages: 10 },
 * }));
 * assert(metrics.faults.total > 0 && metrics.pinnedPagesPeak < 262144);
 * ```
 *
 * @module
 */
export * from "./experiment/mod.ts";
export * as sim from "./sim/mod.ts";
export * as mm from "./mm/mod.ts";
export * as pgtable from "./pgtable/mod.ts";
export * as smmu from "./smmu/mod.ts";
export * as device from "./device/mod.ts";
export * as pci from "./pci/mod.ts";
export * as iommu from "./iommu/mod.ts";
export * as vfio from "./vfio/mod.ts";
export * as guest from "./guest/mod.ts";
export * as vmm from "./vmm/mod.ts";
export * as workload from "./workload/mod.ts";
export * as coiommu from "./coiommu/mod.ts";
export * as analysis from "./analysis/mod.ts";
