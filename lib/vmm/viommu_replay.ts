/**
 * The VMM's half of a vIOMMU in caching mode (QEMU's intel-iommu with
 * caching-mode=on, or virtio-iommu): the trap handler that replays each
 * guest map and unmap on the host as VFIO_IOMMU_MAP_DMA /
 * VFIO_IOMMU_UNMAP_DMA of that buffer (QEMU's IOMMU notifier,
 * `vfio_iommu_map_notify`), one trap at a time under the emulation lock.
 * The guest's half (its DMA API, IOVA allocator and page table) is
 * `CachingModeViommu` in lib/guest.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import { type Prot, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  type VfioContainer,
} from "../vfio/container.ts";

/** Options of {@linkcode ViommuReplay}. */
export interface ViommuReplayOptions {
  /** The cost profile (vmm.trap; VFIO's costs come from the container). */
  readonly costs: Costs;
  /** The VM's VFIO container: type1, no IOPF, no RAM-wide mapping. */
  readonly container: VfioContainer;
  /** HVA where guest RAM starts in the VMM. */
  readonly hva: number;
  /** GPA where guest RAM starts. */
  readonly ramBase: number;
  /**
   * Where the `viommu.traps`, `viommu.mappedBytes` and `viommu.mapFailures`
   * counters go. Default: a new {@linkcode Counters}.
   */
  readonly counters?: Counters;
}

/** A guest map the VMM replays: the IOVA range and the guest pages behind it. */
export interface ViommuMapRequest {
  /** First IOVA (4 KiB aligned). */
  readonly iova: number;
  /** First guest-physical address, inside guest RAM (4 KiB aligned). */
  readonly gpa: number;
  /** Bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: Prot;
}

/** A guest unmap the VMM replays. */
export interface ViommuUnmapRequest {
  /** First IOVA of the buffer. */
  readonly iova: number;
  /** Bytes. */
  readonly size: number;
  /** Whether its MAP_DMA succeeded (else there is nothing to unmap in VFIO). */
  readonly mapped: boolean;
}

/**
 * The trap handler. A map trap costs `vmm.trap` plus the
 * VFIO_IOMMU_MAP_DMA of the buffer, which pins and maps it (IOVA -> the
 * buffer's host pages). A MAP_DMA that fails (locked_vm over
 * RLIMIT_MEMLOCK, host memory exhausted) is not reported to the guest, as
 * with QEMU: the IOVA stays unmapped and the device's DMA to it fails. An
 * unmap trap waits for VFIO_IOMMU_UNMAP_DMA to complete (its IOTLB sync and
 * the unpin) before the vCPU continues.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ViommuReplay } from "./viommu_replay.ts";
 * import { IommuCore } from "../iommu/mod.ts";
 * import { HostMemory, MmStruct } from "../mm/mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 * import { VfioContainer } from "../vfio/mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const core = new IommuCore(sim, { costs, driver });
 * driver.setFaultSink(core);
 * const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), {
 *   memlockLimit: Infinity,
 * });
 * const ram = mm.mmap({ size: 16 * 2 ** 20, backing: "4k" });
 * const container = new VfioContainer(core, mm);
 * container.setIommu("type1v2");
 * container.attachDevice({ name: "nic0", sid: 1, ats: false, pri: false, stall: false });
 *
 * const vmm = new ViommuReplay(sim, { costs, container, hva: ram.start, ramBase: 0x4000_0000 });
 * let mapped = false;
 * vmm.trapMap(
 *   { iova: 0x1000_0000, gpa: 0x4010_0000, size: 0x4000, prot: 3 },
 *   (_req, ok) => (mapped = ok),
 *   () => {},
 * );
 * sim.run();
 * assert(mapped && vmm.counters.get("viommu.traps") === 1);
 * assert(container.pinnedPages === 4);
 * ```
 */
export class ViommuReplay {
  /** Counters (`viommu.traps`, `viommu.mappedBytes`, `viommu.mapFailures`). */
  readonly counters: Counters;
  /** The VMM's emulation lock: traps are handled one at a time (QEMU's big lock). */
  readonly emulation: Resource;
  /** The first MAP_DMA error, if any. */
  lastMapError: IopfLabError | undefined;
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #container: VfioContainer;
  readonly #hva: number;
  readonly #ramBase: number;

  /** A handler with no trap taken yet. */
  constructor(sim: Simulator, options: ViommuReplayOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#container = options.container;
    this.#hva = options.hva;
    this.#ramBase = options.ramBase;
    this.counters = options.counters ?? new Counters();
    this.emulation = new Resource(sim, { name: "vIOMMU emulation" });
    this.lastMapError = undefined;
  }

  /**
   * The trap of a guest map (in caching mode, the invalidation the guest
   * issues even for a new entry). Under the emulation lock it replays
   * MAP_DMA of the buffer; `replayed` runs at once with the request and
   * whether VFIO mapped it, `done` gets the IOVA when the vCPU continues.
   * (The callbacks take the request so a caller can pass bound methods.)
   */
  trapMap<R extends ViommuMapRequest>(
    req: R,
    replayed: (req: R, mapped: boolean) => void,
    done: (iova: number) => void,
  ): void {
    this.emulation.acquire((release) => {
      this.counters.add("viommu.traps");
      const { iova, size, prot } = req;
      let ns = this.#costs["vmm.trap"];
      let mapped = true;
      try {
        ns += this.#container.mapDma({
          vaddr: this.#hva + (req.gpa - this.#ramBase),
          iova,
          size,
          flags: (prot & PROT_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
            (prot & PROT_WRITE ? VFIO_DMA_MAP_FLAG_WRITE : 0),
        });
        this.counters.add("viommu.mappedBytes", size);
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        mapped = false;
        this.counters.add("viommu.mapFailures");
        this.lastMapError ??= e;
        ns += this.#costs["vfio.mapDmaCall"];
      }
      replayed(req, mapped);
      this.#sim.after(ns, () => {
        release();
        done(iova);
      });
    });
  }

  /**
   * The trap of a guest unmap. Under the emulation lock it replays
   * UNMAP_DMA of the buffer (when its MAP_DMA succeeded); once that has
   * completed, `unmapped` runs (with the request), the lock is released and
   * `done` runs.
   */
  trapUnmap<R extends ViommuUnmapRequest>(
    req: R,
    unmapped: (req: R) => void,
    done: () => void,
  ): void {
    this.emulation.acquire((release) => {
      this.counters.add("viommu.traps");
      let left = 2;
      const one = () => {
        if (--left > 0) return;
        unmapped(req);
        release();
        done();
      };
      let ns = this.#costs["vmm.trap"];
      if (req.mapped) {
        ns += this.#container.unmapDma({ iova: req.iova, size: req.size }, one)
          .ns;
      } else {
        ns += this.#costs["vfio.unmapDmaCall"];
        left--;
      }
      this.#sim.after(ns, one);
    });
  }
}
