/**
 * The designs: one module per `dma.mode`, plus the nested stage. The
 * scenario parser takes its list of modes from {@linkcode DMA_DESIGNS}; the
 * machine runs the chosen designs' setup at VM start; the runner reports
 * every design's extra metrics. Adding a design is one new module and one
 * line here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DMA_DESIGNS, DMA_MODES } from "./mod.ts";
 * assert.deepEqual(DMA_MODES, ["static-pin", "iopf", "viommu-pin", "coiommu"]);
 * assert.equal(DMA_DESIGNS.iopf.label, "IOPF");
 * ```
 *
 * @module
 */
import { coiommu } from "./coiommu.ts";
import type { Design } from "./design.ts";
import { iopf } from "./iopf.ts";
import { nested } from "./nested.ts";
import { staticPin } from "./static_pin.ts";
import { viommuPin } from "./viommu_pin.ts";

export type { Design, DesignSetup } from "./design.ts";
export { coiommu, iopf, nested, staticPin, viommuPin };
export { mapGuestRam } from "./static_pin.ts";

/** The designs by `dma.mode`, in the order the metrics list their extra columns. */
export const DMA_DESIGNS = {
  "static-pin": staticPin,
  iopf,
  "viommu-pin": viommuPin,
  coiommu,
} as const satisfies Readonly<Record<string, Design>>;

/** The values of `dma.mode`. */
export const DMA_MODES = Object.keys(DMA_DESIGNS) as readonly (
  keyof typeof DMA_DESIGNS
)[];

/** The stage designs by `smmu.stage` (the stages without one need none). */
export const STAGE_DESIGNS: Readonly<Partial<Record<string, Design>>> = {
  nested,
};
