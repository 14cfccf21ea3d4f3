/**
 * The designs: one module per `dma.mode`, plus the nested stage. The
 * scenario parser takes its list of modes from {@linkcode DMA_DESIGNS}; the
 * machine runs the chosen designs' setup at VM start; the runner reports
 * every design's extra metrics. Adding a design is one new module and one
 * line here. The iommufd backend (`dma.backend: "iommufd"`) has its own
 * designs for the modes it models ({@linkcode IOMMUFD_DESIGNS}).
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
import type { Design, DesignMaturity, DesignStatus } from "./design.ts";
import { iommufdIopf, iommufdNested, iommufdPinned } from "./iommufd.ts";
import { iopf } from "./iopf.ts";
import { nested } from "./nested.ts";
import { staticPin } from "./static_pin.ts";
import { viommuPin } from "./viommu_pin.ts";

export type {
  Design,
  DesignMaturity,
  DesignSetup,
  DesignStatus,
} from "./design.ts";
export {
  coiommu,
  iommufdIopf,
  iommufdNested,
  iommufdPinned,
  iopf,
  nested,
  staticPin,
  viommuPin,
};
export { checkIommufd, IOMMUFD_MODES, mapGuestRamIoas } from "./iommufd.ts";
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

/** The values of `dma.backend`: VFIO type1 (with the RFC's IOPF) or iommufd. */
export const DMA_BACKENDS = ["type1", "iommufd"] as const;

/** The designs of the iommufd backend by `dma.mode` (the modes it models). */
export const IOMMUFD_DESIGNS: Readonly<Partial<Record<string, Design>>> = {
  "static-pin": iommufdPinned,
  iopf: iommufdIopf,
};

/** The stage designs of the iommufd backend by `smmu.stage`. */
export const IOMMUFD_STAGE_DESIGNS: Readonly<Partial<Record<string, Design>>> =
  {
    nested: iommufdNested,
  };

/** Every design of the iommufd backend, in the order the metrics list their extra columns. */
export const IOMMUFD_DESIGN_LIST: readonly Design[] = [
  iommufdPinned,
  iommufdIopf,
  iommufdNested,
];

const MATURITY_ORDER: readonly DesignMaturity[] = [
  "mainline",
  "posted",
  "rfc",
  "what-if",
];

/**
 * The status of designs stacked on one VM: the least mature of them
 * (mainline < posted < rfc < what-if), with every basis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineStatus } from "./mod.ts";
 * const s = combineStatus([
 *   { status: "mainline", basis: "a" },
 *   { status: "what-if", basis: "b" },
 * ]);
 * assert.deepEqual(s, { status: "what-if", basis: "a; b" });
 * ```
 */
export function combineStatus(parts: readonly DesignStatus[]): DesignStatus {
  let rank = 0;
  for (const p of parts) {
    rank = Math.max(rank, MATURITY_ORDER.indexOf(p.status));
  }
  return {
    status: MATURITY_ORDER[rank]!,
    basis: parts.map((p) => p.basis).join("; "),
  };
}
