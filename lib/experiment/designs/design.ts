/**
 * What a design is: one way of making guest RAM available for DMA (a
 * `dma.mode`), or the nested stage on top of one. A design owns its part of
 * the VM start, the guest DMA API it gives the VM and its extra metrics.
 *
 * @module
 */
import type { IopfLabError } from "../../sim/errors.ts";
import type { GuestDmaOps } from "../dma_ops.ts";
import type { Machine, VmInstance } from "../machine.ts";
import type { Scenario } from "../scenario.ts";

/** What a design's part of the VM start did. */
export interface DesignSetup {
  /** Simulated ns the setup took (VFIO_IOMMU_MAP_DMA of guest RAM). */
  readonly ns: number;
  /** The guest DMA API the design gives the VM (the identity API when absent). */
  readonly dmaOps?: GuestDmaOps;
  /**
   * The part of the setup that runs in simulated time, after `ns` (a static
   * pin of all guest RAM, whose pages are pinned step by step): it calls
   * `done` when finished, with the error that stops the VM start, if any.
   */
  readonly timed?: (done: (error?: IopfLabError) => void) => void;
}

/**
 * Where a design stands upstream: in a mainline kernel (or VMM), a posted
 * series not merged, the 2021 RFC ("Add IOPF support for VFIO
 * passthrough"), or a what-if of this model that nobody posted.
 */
export type DesignMaturity = "mainline" | "posted" | "rfc" | "what-if";

/** A design's label in the metrics and the report. */
export interface DesignStatus {
  /** Mainline, posted, the RFC, or a what-if. */
  readonly status: DesignMaturity;
  /** What it rests on (kernel version, series, or what the what-if assumes). */
  readonly basis: string;
}

/** One design: a `dma.mode`, or the nested stage (`smmu.stage: "nested"`). */
export interface Design {
  /** The scenario's name of it (the `dma.mode` value, or "nested"). */
  readonly name: string;
  /** Name for figures and tables. */
  readonly label: string;
  /** Mainline, posted, the RFC or a what-if, for scenario `s`. */
  status(s: Scenario): DesignStatus;
  /**
   * Refuses, at VM start, a scenario the design cannot run together with
   * the VM's other design (EINVAL naming the field), before anything is set up.
   */
  check?(scenario: Scenario): void;
  /**
   * The design's part of the VM start, once the container has the device
   * attached: enable IOPF, map guest RAM, bring up the guest's IOMMU or the
   * VMM's backend. Throws an `IopfLabError` when the VM cannot start.
   */
  setup(m: Machine, vm: VmInstance): DesignSetup;
  /**
   * The design's metric columns for one VM (`metrics.extra`), summed over
   * the VMs by the runner: every run reports every design's columns, zero
   * for VMs of other designs.
   */
  extras(vm: VmInstance): Readonly<Record<string, number>>;
}

/** No extra columns. */
export const NO_EXTRAS: Readonly<Record<string, number>> = Object.freeze({});
