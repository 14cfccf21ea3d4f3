/**
 * The `boot` workload: start the VM and stop (VFIO maps guest RAM, no DMA).
 *
 * @module
 */
import type { WorkloadKindSpec } from "./kind.ts";
import type { DmaContext, Workload } from "./types.ts";

/** `boot`: start the VM and stop (VFIO maps guest RAM, no DMA). */
export interface BootConfig {
  /** The workload kind. */
  readonly kind: "boot";
}

/** The VM only starts: guest RAM is set up for DMA, no device traffic. */
export class BootWorkload implements Workload {
  /** Always "boot". */
  readonly kind = "boot";
  /** Completes at once. */
  start(_ctx: DmaContext, done: () => void): void {
    done();
  }
}

/** The `boot` kind. */
export const bootWorkload: WorkloadKindSpec<BootConfig> = {
  kind: "boot",
  doc: "start the VM and stop (VFIO maps guest RAM, no DMA)",
  fields: {},
  resolve: () => ({ kind: "boot" }),
  make: () => new BootWorkload(),
};
