/** Shared setup of the lib/vfio tests: a fake IOMMU driver, the core, host memory, a VMM mm. */
import { IommuCore } from "../../lib/iommu/core.ts";
import type { IommuDevice } from "../../lib/iommu/types.ts";
import { type FrameOrder, HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import type { Backing, VmArea } from "../../lib/mm/types.ts";
import { type Costs, loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VfioContainer,
  type VfioContainerOptions,
} from "../../lib/vfio/container.ts";
import { fakeDevice, FakeIommuDriver } from "../iommu/_fake_driver.ts";

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
export const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
export const GUEST_RAM_GPA = 0x4000_0000;

export interface SetupOptions extends VfioContainerOptions {
  hostSize?: number;
  memlockLimit?: number;
  guestSize?: number;
  backing?: Backing;
  /** The host's 4 KiB frame order (default scattered). */
  frameOrder?: FrameOrder;
  iopf?: boolean;
  nesting?: boolean;
  faultWorkers?: number;
  lazy?: boolean;
  costOverrides?: Record<string, number>;
  dev?: IommuDevice;
}

export interface Setup {
  sim: Simulator;
  costs: Costs;
  driver: FakeIommuDriver;
  core: IommuCore;
  host: HostMemory;
  mm: MmStruct;
  ram: VmArea;
  container: VfioContainer;
  dev: IommuDevice;
}

/** A container with one stall-capable device attached and guest RAM mmapped (not mapped for DMA). */
export function setup(options: SetupOptions = {}): Setup {
  const sim = new Simulator();
  const costs = loadCostProfile(options.costOverrides ?? {});
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, {
    costs,
    driver,
    faultWorkers: options.faultWorkers ?? 1,
    invalidation: options.lazy ? "lazy" : "strict",
  });
  driver.bind(core);
  const host = new HostMemory({
    size: options.hostSize ?? 4 * GiB,
    costs,
    ...(options.frameOrder ? { frameOrder: options.frameOrder } : {}),
  });
  const mm = new MmStruct(host, {
    memlockLimit: options.memlockLimit ?? Infinity,
  });
  const ram = mm.mmap({
    size: options.guestSize ?? 64 * MiB,
    backing: options.backing ?? "4k",
  });
  const copt: VfioContainerOptions = {};
  if (options.premapPages !== undefined) copt.premapPages = options.premapPages;
  if (options.mmuNotifier !== undefined) copt.mmuNotifier = options.mmuNotifier;
  if (options.dmaEntryLimit !== undefined) {
    copt.dmaEntryLimit = options.dmaEntryLimit;
  }
  if (options.premapSkipMapped !== undefined) {
    copt.premapSkipMapped = options.premapSkipMapped;
  }
  const container = new VfioContainer(core, mm, copt);
  container.setIommu(options.nesting ? "nesting" : "type1v2");
  const dev = options.dev ?? fakeDevice("0000:01:00.0", 0x100);
  container.attachDevice(dev);
  if (options.iopf) container.enableIopf();
  sim.run();
  return { sim, costs, driver, core, host, mm, ram, container, dev };
}

/** Maps the whole guest RAM at GUEST_RAM_GPA; returns the ioctl's ns. */
export function mapGuest(s: Setup, flags = RW): number {
  return s.container.mapDma({
    vaddr: s.ram.start,
    iova: GUEST_RAM_GPA,
    size: s.ram.size,
    flags,
  });
}
