/**
 * The guest side of coIOMMU: the DMA API of a guest whose IOMMU driver is
 * the coIOMMU frontend. IOVAs are guest-physical addresses (coIOMMU tracks
 * DMA buffers; it does not remap them). dma_map marks every frame of the
 * buffer in the DMA tracking table and, when some of them are not pinned
 * yet, rings the host's doorbell once for the whole buffer and waits until
 * the host has pinned them; dma_unmap only unmarks.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import {
  type DmaTrackingTable,
  DTTE_MAP_COUNT_MASK,
  DTTE_PINNED,
} from "./dtt.ts";

/** Where the frontend sends pin requests (the VMM's backend). */
export interface PinRequestSink {
  /** Pins every frame of `gfns` not pinned yet, then calls `done`. */
  requestPin(gfns: readonly number[], done: () => void): void;
}

/** Options of {@linkcode CoiommuFrontend}. */
export interface CoiommuFrontendOptions {
  /** The cost profile (coiommu.dttMark, coiommu.doorbell). */
  readonly costs: Costs;
  /** The tracking table shared with the host. */
  readonly dtt: DmaTrackingTable;
  /** The host's backend. */
  readonly backend: PinRequestSink;
}

/**
 * The guest's coIOMMU driver. Counters: `coiommu.dmaMaps`,
 * `coiommu.dmaUnmaps`, `coiommu.markedPages`, `coiommu.doorbells`,
 * `coiommu.doorbellPages` (frames named in doorbells), `coiommu.batched`
 * (doorbells naming more than one frame: a batch list in guest memory).
 */
export class CoiommuFrontend {
  /** Counters (`coiommu.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #dtt: DmaTrackingTable;
  readonly #backend: PinRequestSink;

  /** A frontend over `options.dtt`, notifying `options.backend`. */
  constructor(sim: Simulator, options: CoiommuFrontendOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#dtt = options.dtt;
    this.#backend = options.backend;
  }

  /**
   * dma_map of `[gpa, gpa + size)`: marks each frame (`coiommu.dttMark`
   * per page); if any is not PINNED, one doorbell (`coiommu.doorbell`)
   * names them all and the guest waits for the host. `done` gets the IOVA,
   * which is `gpa`.
   */
  dmaMap(gpa: number, size: number, done: (iova: number) => void): void {
    const [first, n] = this.#frames(gpa, size, "map");
    const need: number[] = [];
    for (let k = 0; k < n; k++) {
      const e = this.#dtt.mark(first + k);
      if ((e & DTTE_PINNED) === 0) need.push(first + k);
    }
    const c = this.counters;
    c.add("coiommu.dmaMaps");
    c.add("coiommu.markedPages", n);
    const ns = n * this.#costs["coiommu.dttMark"];
    if (need.length === 0) {
      this.#sim.after(ns, () => done(gpa));
      return;
    }
    c.add("coiommu.doorbells");
    c.add("coiommu.doorbellPages", need.length);
    if (need.length > 1) c.add("coiommu.batched");
    this.#sim.after(
      ns + this.#costs["coiommu.doorbell"],
      () => this.#backend.requestPin(need, () => done(gpa)),
    );
  }

  /** dma_unmap: unmarks each frame (`coiommu.dttMark` per page); no notification. */
  dmaUnmap(iova: number, size: number, done: () => void): void {
    const [first, n] = this.#frames(iova, size, "unmap");
    for (let k = 0; k < n; k++) {
      if ((this.#dtt.entry(first + k) & DTTE_MAP_COUNT_MASK) === 0) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot unmap DMA ${hex(iova)}+${hex(size)}: frame ${
            hex(first + k)
          } is not mapped`,
        );
      }
    }
    for (let k = 0; k < n; k++) this.#dtt.unmark(first + k);
    this.counters.add("coiommu.dmaUnmaps");
    this.counters.add("coiommu.markedPages", n);
    this.#sim.after(n * this.#costs["coiommu.dttMark"], done);
  }

  #frames(gpa: number, size: number, what: string): [number, number] {
    if (
      !Number.isInteger(gpa) || !Number.isInteger(size) || gpa < 0 ||
      size <= 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} DMA ${String(gpa)}+${
          String(size)
        }: expected a whole address and a positive size`,
      );
    }
    const first = Math.floor(gpa / PAGE_SIZE);
    return [first, Math.ceil((gpa + size) / PAGE_SIZE) - first];
  }
}
