/** Shared setup of the coIOMMU tests: the real SMMU stack, one VMM, a container, a DTT, backend and frontend. */
import {
  CoiommuBackend,
  type CoiommuBackendOptions,
  CoiommuFrontend,
  DmaTrackingTable,
} from "../../lib/coiommu/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { type Costs, loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import { VfioContainer } from "../../lib/vfio/mod.ts";

export const GPA = 0x4000_0000;
export const MiB = 2 ** 20;
/** GFN of the first frame of guest RAM. */
export const GFN0 = GPA / 4096;

export interface Rig {
  sim: Simulator;
  costs: Costs;
  mm: MmStruct;
  container: VfioContainer;
  dtt: DmaTrackingTable;
  backend: CoiommuBackend;
  frontend: CoiommuFrontend;
}

export interface RigOptions {
  memlockLimit?: number;
  backend?: Partial<
    Pick<
      CoiommuBackendOptions,
      "unpinPolicy" | "unpinInterval" | "generationThreshold"
    >
  >;
}

/** A 64 MiB guest (4 KiB backing) on a 1 GiB host, nothing pinned. */
export function rig(options: RigOptions = {}): Rig {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, { costs, driver });
  driver.setFaultSink(core);
  const host = new HostMemory({ size: 2 ** 30, costs });
  const mm = new MmStruct(host, {
    memlockLimit: options.memlockLimit ?? Infinity,
  });
  const ram = mm.mmap({ size: 64 * MiB, backing: "4k" });
  const container = new VfioContainer(core, mm);
  container.setIommu("type1v2");
  container.attachDevice({
    name: "nic0",
    sid: 3,
    ats: false,
    pri: false,
    stall: false,
  });
  sim.run();
  const dtt = new DmaTrackingTable({ frames: (GPA + ram.size) / 4096 });
  const backend = new CoiommuBackend(sim, {
    costs,
    container,
    dtt,
    hva: ram.start,
    ramBase: GPA,
    ramSize: ram.size,
    ...options.backend,
  });
  const frontend = new CoiommuFrontend(sim, { costs, dtt, backend });
  return { sim, costs, mm, container, dtt, backend, frontend };
}

/** Runs `n` LRU passes, one after the other, then lets pending IOTLB syncs finish. */
export function passes(r: Rig, n: number): void {
  for (let i = 0; i < n; i++) {
    r.backend.unpinPass();
    r.sim.run();
  }
}
