/**
 * A guest DMA API over a vIOMMU in caching mode (QEMU's intel-iommu with
 * caching-mode=on, or virtio-iommu): the guest allocates an IOVA and writes
 * its own IOMMU page table, and every map and unmap traps to the VMM (the
 * invalidation a caching-mode IOMMU requires even for new entries, or the
 * virtio-iommu request), whose trap handler ({@linkcode ViommuReplay} in
 * lib/vmm) replays it on the host with VFIO_IOMMU_MAP_DMA /
 * VFIO_IOMMU_UNMAP_DMA for that buffer: the buffer's pages are pinned
 * (charged to locked_vm) only while the guest has them mapped, at the price
 * of a trap per operation.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import { PAGE_SIZE, type Prot, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import type { VfioContainer } from "../vfio/container.ts";
import { type ViommuMapRequest, ViommuReplay } from "../vmm/viommu_replay.ts";

/** Options of {@linkcode CachingModeViommu}. */
export interface CachingModeViommuOptions {
  /** The cost profile (guest.dmaMap, vmm.trap; VFIO's costs come from the container). */
  readonly costs: Costs;
  /** The VM's VFIO container: type1, no IOPF, no RAM-wide mapping. */
  readonly container: VfioContainer;
  /** HVA where guest RAM starts in the VMM. */
  readonly hva: number;
  /** GPA where guest RAM starts. */
  readonly ramBase: number;
  /** Guest RAM in bytes. */
  readonly ramSize: number;
  /** First IOVA the guest's allocator hands out (4 KiB aligned). */
  readonly iovaBase: number;
}

/** A buffer the guest mapped: its IOVA range and the guest pages behind it. */
export interface ViommuMapping {
  /** First IOVA. */
  readonly iova: number;
  /** First guest-physical address. */
  readonly gpa: number;
  /** Bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** True when VFIO mapped it (false after a failed MAP_DMA: the device's DMA will fail). */
  readonly mapped: boolean;
}

/**
 * The guest's DMA API over a caching-mode vIOMMU, with the VMM's trap
 * handler behind it ({@linkcode CachingModeViommu.vmm}, built from the
 * options).
 *
 * dma_map: `guest.dmaMap` of guest work (IOVA allocation, page-table
 * write), then the trap: the VMM's emulation (serialised by its lock, as
 * QEMU's big lock does) costs `vmm.trap` plus the VFIO_IOMMU_MAP_DMA of the
 * buffer, which pins and maps it (IOVA -> the buffer's host pages). A
 * MAP_DMA that fails (locked_vm over RLIMIT_MEMLOCK, host memory
 * exhausted) is not reported to the guest, as with QEMU: the IOVA stays
 * unmapped and the device's DMA to it fails.
 *
 * dma_unmap: `guest.dmaMap` of guest work, then the trap, which waits for
 * VFIO_IOMMU_UNMAP_DMA to complete (its IOTLB sync and the unpin); only
 * then is the IOVA free for reuse.
 *
 * IOVAs come from a first-fit allocator over freed ranges of the same size
 * (like the kernel's per-size IOVA caches), then from fresh space.
 * Counters: `viommu.maps`, `viommu.unmaps`, `viommu.traps`,
 * `viommu.mapFailures`, `viommu.mappedBytes`.
 */
export class CachingModeViommu {
  /** Counters (`viommu.*`, shared with the VMM's trap handler). */
  readonly counters: Counters = new Counters();
  /** The VMM's trap handler that replays maps and unmaps through VFIO. */
  readonly vmm: ViommuReplay;
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #ramBase: number;
  readonly #ramSize: number;
  #nextIova: number;
  /** Live mappings sorted by IOVA. */
  readonly #maps: ViommuMapping[] = [];
  /** Freed IOVA ranges by size, reused last-in first-out. */
  readonly #free = new Map<number, number[]>();
  /** Mappings whose unmap is under way. */
  readonly #unmapping = new Set<ViommuMapping>();
  /** The VMM replayed a map: the entry is live (mapped in VFIO or not). */
  readonly #replayed = (req: ViommuMapRequest, mapped: boolean): void => {
    this.#insert({ iova: req.iova, gpa: req.gpa, size: req.size, mapped });
  };
  /** The VMM's UNMAP_DMA completed: the IOVA is free again. */
  readonly #unmapped = (m: ViommuMapping): void => this.#remove(m);

  /** A vIOMMU with nothing mapped. */
  constructor(sim: Simulator, options: CachingModeViommuOptions) {
    const { iovaBase } = options;
    if (
      !Number.isInteger(iovaBase) || iovaBase < 0 || iovaBase % PAGE_SIZE !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the vIOMMU: IOVA base ${iovaBase} is not 4 KiB aligned`,
      );
    }
    this.#sim = sim;
    this.#costs = options.costs;
    this.#ramBase = options.ramBase;
    this.#ramSize = options.ramSize;
    this.#nextIova = iovaBase;
    this.vmm = new ViommuReplay(sim, {
      costs: options.costs,
      container: options.container,
      hva: options.hva,
      ramBase: options.ramBase,
      counters: this.counters,
    });
  }

  /** The VMM's emulation lock: traps are handled one at a time. */
  get emulation(): Resource {
    return this.vmm.emulation;
  }

  /** The first MAP_DMA error, if any. */
  get lastMapError(): IopfLabError | undefined {
    return this.vmm.lastMapError;
  }

  /** Mappings live now, by IOVA. */
  mappings(): readonly ViommuMapping[] {
    return this.#maps;
  }

  /** The GPA behind `iova` while the guest has it mapped, or -1. */
  iovaToGpa(iova: number): number {
    const m = this.#find(iova);
    return m ? m.gpa + (iova - m.iova) : -1;
  }

  /**
   * The guest's dma_map of `size` bytes at `gpa` (page aligned, inside
   * guest RAM) with `prot`; `done` gets the IOVA once the VMM has mapped it.
   */
  dmaMap(
    buffer: {
      readonly gpa: number;
      readonly size: number;
      readonly prot: Prot;
    },
    done: (iova: number) => void,
  ): void {
    const { gpa, prot } = buffer;
    const size = Math.ceil(buffer.size / PAGE_SIZE) * PAGE_SIZE;
    const off = gpa - this.#ramBase;
    if (
      !Number.isInteger(gpa) || gpa % PAGE_SIZE !== 0 || !(size > 0) ||
      off < 0 || off + size > this.#ramSize
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot map DMA GPA ${hex(gpa)}+${
          hex(size)
        }: not a page-aligned range of guest RAM`,
      );
    }
    if ((prot & (PROT_READ | PROT_WRITE)) === 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot map DMA GPA ${hex(gpa)}: no permission`,
      );
    }
    const req: ViommuMapRequest = {
      iova: this.#allocIova(size),
      gpa,
      size,
      prot,
    };
    this.counters.add("viommu.maps");
    this.#sim.after(
      this.#costs["guest.dmaMap"],
      () => this.vmm.trapMap(req, this.#replayed, done),
    );
  }

  /**
   * The guest's dma_unmap of the buffer mapped at `iova`; `done` once the
   * VMM's UNMAP_DMA completed. EINVAL unless it is exactly one mapping.
   */
  dmaUnmap(
    range: { readonly iova: number; readonly size: number },
    done: () => void,
  ): void {
    const m = this.#find(range.iova);
    const size = Math.ceil(range.size / PAGE_SIZE) * PAGE_SIZE;
    if (
      !m || m.iova !== range.iova || m.size !== size || this.#unmapping.has(m)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot unmap DMA IOVA ${hex(range.iova)}+${
          hex(range.size)
        }: not a buffer the guest mapped`,
      );
    }
    this.#unmapping.add(m);
    this.counters.add("viommu.unmaps");
    this.#sim.after(
      this.#costs["guest.dmaMap"],
      () => this.vmm.trapUnmap(m, this.#unmapped, done),
    );
  }

  #allocIova(size: number): number {
    const list = this.#free.get(size);
    if (list && list.length > 0) return list.pop()!;
    const iova = this.#nextIova;
    this.#nextIova += size;
    return iova;
  }

  #lowerBound(iova: number): number {
    const a = this.#maps;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]!.iova < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #find(iova: number): ViommuMapping | undefined {
    const i = this.#lowerBound(iova + 1) - 1;
    const m = this.#maps[i];
    return m && iova < m.iova + m.size ? m : undefined;
  }

  #insert(m: ViommuMapping): void {
    this.#maps.splice(this.#lowerBound(m.iova), 0, m);
  }

  #remove(m: ViommuMapping): void {
    this.#unmapping.delete(m);
    const i = this.#lowerBound(m.iova);
    if (this.#maps[i] === m) this.#maps.splice(i, 1);
    let list = this.#free.get(m.size);
    if (!list) this.#free.set(m.size, list = []);
    list.push(m.iova);
  }
}
