/**
 * A platform (non-PCI) DMA master behind the SMMU, relying on the SMMU's
 * stall model for its translation faults.
 *
 * @module
 */
import type { Simulator } from "../sim/simulator.ts";
import type { IommuDevice } from "../iommu/types.ts";
import { type DmaDeviceOptions, DmaEngine, DmaMaster } from "./dma_engine.ts";

/**
 * A platform (non-PCI) DMA master, such as an accelerator on an SoC: its
 * transactions go straight to {@linkcode Smmu.translate}, so a translation
 * fault on a stall-enabled stream holds the access until software resumes
 * it. A terminated transaction fails the transfer with "fault".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "../sim/simulator.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { TableMemory } from "../smmu/memory.ts";
 * import { Smmu } from "../smmu/smmu.ts";
 * import { PlatformDevice } from "./platform.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
 * smmu.writeSte(5, { V: true, Config: 4 }); // bypass
 * const dev = new PlatformDevice(sim, { name: "zip0", sid: 5, smmu, costs });
 * let bytes = 0;
 * dev.dma({ iova: 0x10000, size: 8192, write: true }, (r) => (bytes = r.bytes));
 * sim.run();
 * assert(bytes === 8192 && dev.stats.pageAccesses === 2);
 * ```
 */
export class PlatformDevice extends DmaMaster {
  /** How the IOMMU core sees it: a stall-capable device without ATS/PRI. */
  readonly iommuDevice: IommuDevice;

  /** Creates the device. */
  constructor(sim: Simulator, options: DmaDeviceOptions) {
    super(new DmaEngine(sim, options));
    this.iommuDevice = Object.freeze({
      name: options.name,
      sid: options.sid,
      ats: false,
      pri: false,
      stall: true,
    });
  }
}
