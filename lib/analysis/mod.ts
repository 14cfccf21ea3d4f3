/**
 * Analysis: what the runs mean. Tidy rows out of sweeps and time series
 * (`sweepRows`, `meltRows`, `seriesRows`, `pointLabel`), VM density on a
 * host, the two fault-latency breakdowns (`pricedBreakdown` prices each hop
 * of the fault path from the cost profile and closes with the measured
 * remainder; `ablationBreakdown` makes each layer's costs free in turn and
 * reruns), the comparison of the five DMA designs with its density
 * experiment, values formatted by their field's unit (`formatCell`), and the
 * calibration table (`runCalibration`: each published figure of
 * data/calibration.json run through the model).
 * Everything takes and gives plain records, ready for lib/plot, CSV and
 * notebook tables.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emptyMetrics } from "../experiment/metrics.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { formatCell, pricedBreakdown, sweepRows, vmDensity } from "./mod.ts";
 *
 * // The priced breakdown always adds up to the measured mean.
 * const parts = pricedBreakdown({
 *   costs: loadCostProfile(),
 *   fault: "pri",
 *   measuredMeanNs: 12_907,
 *   stage1FaultsPerAccess: 0,
 *   stage2FaultsPerAccess: 1,
 *   walkReadsPerTranslation: 4,
 *   dmaBandwidth: 8e9,
 * });
 * assert(Math.abs(parts.reduce((a, p) => a + p.ns, 0) - 12_907) < 1e-6);
 *
 * // Tidy rows of runs, and how many such VMs fit on a host.
 * const run = { ...emptyMetrics("boot", 1), hostMemoryPeakBytes: 2 ** 30 };
 * assert.equal(sweepRows([run])[0]!.scenario, "boot");
 * assert.equal(vmDensity(run, 16 * 2 ** 30), 16);
 *
 * // Values read by their field's unit.
 * assert.equal(formatCell("vm.memory", 2 ** 30), "1 GiB");
 * ```
 *
 * @module
 */
export {
  type CalibrationMachine,
  calibrationMarkdown,
  type CalibrationResult,
  type CalibrationRole,
  type CalibrationRow,
  calibrationRowLine,
  type CalibrationTable,
  calibrationText,
  checkTable,
  fingerprintLine,
  loadCalibration,
  runCalibration,
  type RunCalibrationOptions,
} from "./calibration.ts";
export {
  BREAKDOWN_SEGMENTS,
  type BreakdownInput,
  breakdownInput,
  type BreakdownPart,
  type BreakdownSegment,
  pricedBreakdown,
  REMAINDER,
  segmentTotals,
} from "./breakdown.ts";
export {
  ablationBreakdown,
  type AblationBreakdownOptions,
  LATENCY_PARTS,
  type LatencyPart,
  meltRows,
  type MeltRowsOptions,
  pointLabel,
  seriesRows,
  sweepRows,
  vmDensity,
  vmFootprintBytes,
} from "./tidy.ts";
export {
  compareModes,
  type CompareOptions,
  type CompareResult,
  compareScenarioJson,
  DEFAULT_COMPARE_WORKLOADS,
  type ModeRow,
  modeRow,
  modeSeries,
  type ModeSeriesRow,
  type Recommendation,
  recommendDesigns,
  type RecommendOptions,
} from "./compare.ts";
export {
  type CoiommuDesignOptions,
  DEFAULT_DENSITY_WORKLOAD,
  densityExperiment,
  type DensityOptions,
  type DensityRow,
  DESIGN_MODES,
  designDma,
  type DesignMode,
  mergeScenarioJson,
} from "./density.ts";
export {
  FIELD_UNITS,
  type FieldUnit,
  fieldUnit,
  type FieldUnitRule,
  formatCell,
  formatValue,
} from "./format.ts";
export {
  RFC_VS_MAINLINE_MODES,
  rfcVsMainlineDensity,
  rfcVsMainlineDensityJson,
  type RfcVsMainlineDensityOptions,
  type RfcVsMainlineDensityRow,
  rfcVsMainlineDensityRow,
  type RfcVsMainlineHopRow,
  rfcVsMainlineHops,
  rfcVsMainlineJson,
  type RfcVsMainlineMode,
  rfcVsMainlinePatch,
  type RfcVsMainlineRow,
  rfcVsMainlineRow,
} from "./rfc_vs_mainline.ts";
