/**
 * The guest's DMA API as one interface, {@linkcode GuestDmaOps}, chosen once
 * at VM start by the VM's design (lib/experiment/designs): the kernel's
 * `struct dma_map_ops` as the guest sees it. Four implementations:
 *
 * | ops | design | dma_map | IOVA |
 * |---|---|---|---|
 * | {@linkcode IdentityDmaOps} | static-pin, iopf | free | GPA |
 * | {@linkcode GuestIommuDmaOps} | nested | guest stage-1 table write | guest IOVA |
 * | {@linkcode ViommuDmaOps} | viommu-pin | trap; VMM MAP_DMA | guest IOVA |
 * | {@linkcode CoiommuDmaOps} | coiommu | DTT mark; doorbell when unpinned | GPA |
 *
 * @module
 */
import type {
  CoiommuBackend,
  CoiommuFrontend,
  DmaTrackingTable,
} from "../coiommu/mod.ts";
import type { CachingModeViommu, GuestIommu } from "../guest/mod.ts";
import type { Simulator } from "../sim/simulator.ts";
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { GUEST_IOVA_BASE } from "./layout.ts";

/**
 * How a device address relates to guest memory under a guest DMA API:
 * `identity` (the IOVA is the GPA), `stage1` (the guest's own stage-1 table
 * maps the IOVA to a GPA the host's stage 2 translates) or `shadow` (the VMM
 * maps each guest IOVA straight into the host domain).
 */
export type DmaTranslation = "identity" | "stage1" | "shadow";

/** The guest's DMA API of one VM (its `dma_map_ops`), set up at VM start. */
export interface GuestDmaOps {
  /** How device addresses relate to guest memory. */
  readonly translation: DmaTranslation;
  /** The guest's dma_map of a buffer for the device; `done` gets the IOVA. */
  dmaMap(
    gpa: number,
    size: number,
    write: boolean,
    done: (iova: number) => void,
  ): void;
  /** The guest's dma_unmap. */
  dmaUnmap(iova: number, size: number, done: () => void): void;
  /** The GPA the guest mapped at `iova` (-1 when it mapped nothing there). */
  iovaToGpa(iova: number): number;
  /** Stops the API's background threads (the coIOMMU unpin timer). */
  stop(): void;
}

/** Bytes rounded up to whole 4 KiB pages. */
function pages(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** No IOMMU in the guest: dma_map is free and the IOVA is the GPA. */
export class IdentityDmaOps implements GuestDmaOps {
  /** The IOVA is the GPA. */
  readonly translation = "identity";
  readonly #sim: Simulator;

  /** The identity API on `sim`. */
  constructor(sim: Simulator) {
    this.#sim = sim;
  }

  /** Hands back the GPA. */
  dmaMap(
    gpa: number,
    _size: number,
    _write: boolean,
    done: (iova: number) => void,
  ): void {
    this.#sim.after(0, () => done(gpa));
  }

  /** Nothing to undo. */
  dmaUnmap(_iova: number, _size: number, done: () => void): void {
    this.#sim.after(0, done);
  }

  /** The IOVA itself. */
  iovaToGpa(iova: number): number {
    return iova;
  }

  /** No background threads. */
  stop(): void {}
}

/**
 * Nested translation: the guest's SMMU driver maps each buffer in its own
 * stage-1 table at an IOVA it allocates (from {@linkcode GUEST_IOVA_BASE},
 * a guard page between buffers).
 */
export class GuestIommuDmaOps implements GuestDmaOps {
  /** The guest's stage 1 maps the IOVA to a GPA. */
  readonly translation = "stage1";
  /** The guest's SMMU driver. */
  readonly guest: GuestIommu;
  readonly #sim: Simulator;
  #nextIova = GUEST_IOVA_BASE;

  /** The DMA API of `guest` on `sim`. */
  constructor(sim: Simulator, guest: GuestIommu) {
    this.#sim = sim;
    this.guest = guest;
  }

  /** Writes the guest's stage-1 table. */
  dmaMap(
    gpa: number,
    size: number,
    write: boolean,
    done: (iova: number) => void,
  ): void {
    const iova = this.#nextIova;
    this.#nextIova += pages(size) + PAGE_SIZE; // a guard page between buffers
    const ns = this.guest.dmaMap({
      iova,
      gpa,
      size: pages(size),
      prot: write ? PROT_READ | PROT_WRITE : PROT_READ,
    });
    this.#sim.after(ns, () => done(iova));
  }

  /** Clears the stage-1 entries and invalidates (TLBI through the vSMMU). */
  dmaUnmap(iova: number, size: number, done: () => void): void {
    this.guest.dmaUnmap({ iova, size: pages(size) }, done);
  }

  /** The guest's stage-1 translation. */
  iovaToGpa(iova: number): number {
    return this.guest.s1.iovaToPhys(iova);
  }

  /** No background threads. */
  stop(): void {}
}

/** A caching-mode vIOMMU: every map and unmap traps to the VMM, which pins and maps. */
export class ViommuDmaOps implements GuestDmaOps {
  /** The VMM maps guest IOVAs into the host domain. */
  readonly translation = "shadow";
  /** The guest DMA API and the VMM's emulation. */
  readonly viommu: CachingModeViommu;

  /** The DMA API of `viommu`. */
  constructor(viommu: CachingModeViommu) {
    this.viommu = viommu;
  }

  /** Maps through the trap. */
  dmaMap(
    gpa: number,
    size: number,
    write: boolean,
    done: (iova: number) => void,
  ): void {
    this.viommu.dmaMap({
      gpa,
      size: pages(size),
      prot: write ? PROT_READ | PROT_WRITE : PROT_READ,
    }, done);
  }

  /** Unmaps through the trap. */
  dmaUnmap(iova: number, size: number, done: () => void): void {
    this.viommu.dmaUnmap({ iova, size: pages(size) }, done);
  }

  /** The guest's mapping at `iova`. */
  iovaToGpa(iova: number): number {
    return this.viommu.iovaToGpa(iova);
  }

  /** No background threads. */
  stop(): void {}
}

/** One VM's coIOMMU: the shared table, the guest's driver, the VMM's backend. */
export interface CoiommuVm {
  /** The DMA tracking table in guest memory. */
  readonly dtt: DmaTrackingTable;
  /** The guest's coIOMMU driver (its DMA API). */
  readonly frontend: CoiommuFrontend;
  /** The VMM's pin and unpin threads. */
  readonly backend: CoiommuBackend;
}

/** coIOMMU: the guest marks its buffers in the DMA tracking table; the IOVA is the GPA. */
export class CoiommuDmaOps implements GuestDmaOps, CoiommuVm {
  /** The IOVA is the GPA. */
  readonly translation = "identity";
  /** The DMA tracking table in guest memory. */
  readonly dtt: DmaTrackingTable;
  /** The guest's coIOMMU driver (its DMA API). */
  readonly frontend: CoiommuFrontend;
  /** The VMM's pin and unpin threads. */
  readonly backend: CoiommuBackend;

  /** The DMA API of one VM's coIOMMU. */
  constructor(co: CoiommuVm) {
    this.dtt = co.dtt;
    this.frontend = co.frontend;
    this.backend = co.backend;
  }

  /** Marks the pages; rings the doorbell for those not pinned yet. */
  dmaMap(
    gpa: number,
    size: number,
    _write: boolean,
    done: (iova: number) => void,
  ): void {
    this.frontend.dmaMap(gpa, pages(size), done);
  }

  /** Clears the marks (the backend unpins lazily). */
  dmaUnmap(iova: number, size: number, done: () => void): void {
    this.frontend.dmaUnmap(iova, pages(size), done);
  }

  /** The IOVA itself. */
  iovaToGpa(iova: number): number {
    return iova;
  }

  /** Stops the backend's unpin thread. */
  stop(): void {
    this.backend.stop();
  }
}
