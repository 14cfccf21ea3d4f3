/**
 * The report: the built-in experiment suite of `deno task report` (VM start
 * time and locked memory, the fault latency breakdown, accelerator
 * slowdown, throughput ramp-up, PRI queue sizing, the MMU notifier under
 * memory pressure, lazy versus strict invalidation, the five DMA designs
 * side by side), run through the real
 * model on Web Workers and written as one HTML page with inline SVG figures,
 * .svg/.png files and tidy .csv tables.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportSuite, rowsToCsv } from "./mod.ts";
 * import { pricedBreakdown } from "../analysis/mod.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 *
 * // The suite: eight questions, each a set of scenarios and an analysis.
 * const suite = reportSuite({ quick: true });
 * assert(suite.map((e) => e.id).includes("ramp-up"));
 *
 * // The fault latency breakdown always adds up to the measured mean.
 * const parts = pricedBreakdown({
 *   costs: loadCostProfile(),
 *   fault: "pri",
 *   measuredMeanNs: 12_907,
 *   stage1FaultsPerAccess: 0,
 *   stage2FaultsPerAccess: 1,
 *   walkReadsPerTranslation: 4,
 *   dmaBandwidth: 8e9,
 * });
 * const total = parts.reduce((a, p) => a + p.ns, 0);
 * assert(Math.abs(total - 12_907) < 1e-6);
 *
 * // Tables are tidy rows, written as CSV through d3-dsv.
 * assert(rowsToCsv([{ mode: "iopf", setupNs: 5 }]) === "mode,setupNs\niopf,5");
 * ```
 *
 * Writing the whole report (minutes for the full suite; `quick` is under a
 * minute):
 *
 * ```ts ignore
 * import { runReport } from "./mod.ts";
 * const summary = await runReport({ out: "out/report", quick: true });
 * console.log(summary.index);
 * ```
 *
 * @module
 */
export {
  type Experiment,
  type ExperimentResult,
  experimentScenarios,
  type ReportFigure,
  type ReportTable,
  type RunOutput,
  type ScenarioSet,
  type SuiteOptions,
  supportingScenarios,
} from "./experiment.ts";
export { reportSuite } from "./suite.ts";
export {
  CELL_TEXT_MAX,
  escapeHtml,
  type HtmlCost,
  type HtmlExperiment,
  type HtmlFigure,
  type HtmlReport,
  type HtmlTable,
  plainText,
  proseHtml,
  renderHtml,
} from "./html.ts";
export {
  gitCommit,
  type ReportStamp,
  reportStamp,
  stampText,
  VERSION,
} from "./stamp.ts";
export type { Row } from "../plot/row.ts";
export {
  DEFAULT_OUT_DIR,
  PNG_SCALE,
  pngSize,
  type ReportSummary,
  rowsToCsv,
  runReport,
  type RunReportOptions,
  type WrittenFigure,
} from "./report.ts";
// Types of other layers that this API mentions.
export type {
  AcceleratorConfig,
  Backing,
  BootConfig,
  CoiommuUnpinPolicy,
  DeviceConfig,
  DeviceFault,
  Distribution,
  DmaConfig,
  DmaMode,
  FaultCounts,
  FaultPath,
  GuestConfig,
  GuestStage1,
  HostConfig,
  Invalidation,
  InvariantResults,
  IommuConfig,
  IotlbCounts,
  JsonValue,
  LatencyStats,
  Metrics,
  NicRxConfig,
  PriResponseCounts,
  RandomConfig,
  Scenario,
  SeriesRow,
  SmmuConfig,
  SmmuStage,
  StorageConfig,
  SweepAxis,
  SweepProgress,
  TraceConfig,
  TraceRecord,
  VmConfig,
  WorkloadConfig,
} from "../experiment/mod.ts";
export type { Figure, PngOptions } from "../plot/mod.ts";
export type { CostName, Costs } from "../sim/costs.ts";
