/**
 * Experiments: scenario files (shared/INTERFACE.md) parsed and validated
 * into resolved {@linkcode Scenario}s, sweeps expanded and run on workers,
 * metrics flattened, summarised and written as CSV, and DMA traces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandSweep, formatSummary, emptyMetrics, parseScenario } from "./mod.ts";
 * const scenario = parseScenario({
 *   name: "boot",
 *   vm: { memory: "4GiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * });
 * const points = expandSweep(scenario);
 * assert(points.length === 2 && points[1]!.dma.mode === "iopf");
 * assert(formatSummary(emptyMetrics(points[0]!.name, 1)).includes("faults.total"));
 * ```
 *
 * @module
 */
export {
  type AcceleratorConfig,
  type Backing,
  bareMessage,
  type BootConfig,
  type CoiommuUnpinPolicy,
  type DeviceConfig,
  type DeviceFault,
  type Distribution,
  type DmaBackend,
  type DmaConfig,
  type DmaMode,
  expandSweep,
  type FaultPath,
  type GuestConfig,
  type GuestStage1,
  type HostConfig,
  type Invalidation,
  type IommuConfig,
  type JsonValue,
  loadScenario,
  MAX_COUNT,
  MAX_HOST_MEMORY,
  MAX_SWEEP_POINTS,
  type NicRxConfig,
  parseScenario,
  type ParseScenarioOptions,
  type RandomConfig,
  type Scenario,
  type ScenarioField,
  scenarioFields,
  scenarioToJson,
  type ScenarioToJsonOptions,
  type SmmuConfig,
  type SmmuStage,
  type StorageConfig,
  type SweepAxis,
  touchedBytes,
  type TraceConfig,
  type VmConfig,
  type WorkloadConfig,
  type WorkloadKind,
} from "./scenario.ts";
export {
  loadTrace,
  MAX_STREAM,
  type MutableTraceRecord,
  parseTrace,
  type ParseTraceOptions,
  scanTrace,
  summarizeRows,
  summarizeTrace,
  TRACE_COLUMNS,
  TraceReader,
  type TraceRecord,
  type TraceSummary,
} from "../workload/trace_file.ts";
export {
  emptyMetrics,
  type FaultCounts,
  type FlatMetrics,
  flattenMetrics,
  formatRate,
  formatSummary,
  type FormatSummaryOptions,
  formatValue,
  type InvariantResults,
  type IotlbCounts,
  type LatencyStats,
  type Metrics,
  METRICS_ORDER,
  type MetricsDesign,
  type PriResponseCounts,
  type SeriesRow,
  unflattenMetrics,
} from "./metrics.ts";
export {
  type CsvRow,
  metricsFromCsv,
  metricsToCsv,
  readCsv,
  type ReadCsvOptions,
  seriesFromCsv,
  seriesToCsv,
} from "./csv.ts";
export {
  DEFAULT_WORKER,
  formatWallTime,
  progressReporter,
  type ProgressReporterOptions,
  type RunnerModule,
  type RunResult,
  runSweep,
  runSweepMixed,
  type RunSweepOptions,
  runSweepWithSeries,
  serveRunner,
  SweepPool,
  type SweepProgress,
  type WorkerRequest,
} from "./sweep.ts";
export {
  LIVELOCK_NS,
  makeWorkload,
  type RunProgress,
  runScenario,
  type RunScenarioOptions,
  runScenarioWithSeries,
  teardown,
  type VmOutcome,
  vmOutcomes,
} from "./run.ts";
export {
  buildMachine,
  checkGuestRange,
  type CoiommuVm,
  dmaContext,
  GUEST_IOVA_BASE,
  GUEST_RAM_BASE,
  type IommufdVm,
  type Machine,
  type MachineDevice,
  releaseBackend,
  startVms,
  stopBackground,
  touchGuests,
  vmDesigns,
  vmDomain,
  type VmInstance,
  vmLockedPages,
  vmPinnedPages,
} from "./machine.ts";
export {
  IsolationSanitizer,
  type IsolationSanitizerOptions,
} from "./sanitizer.ts";
export {
  CoiommuDmaOps,
  type DmaTranslation,
  type GuestDmaOps,
  GuestIommuDmaOps,
  IdentityDmaOps,
  ViommuDmaOps,
} from "./dma_ops.ts";
export {
  combineStatus,
  type Design,
  type DesignMaturity,
  type DesignSetup,
  type DesignStatus,
  DMA_BACKENDS,
  DMA_DESIGNS,
  DMA_MODES,
  IOMMUFD_DESIGN_LIST,
  IOMMUFD_DESIGNS,
  IOMMUFD_STAGE_DESIGNS,
  STAGE_DESIGNS,
} from "./designs/mod.ts";
export { tablePoolSize } from "./layout.ts";
export type { FieldSpec, FieldTable, FieldType } from "../sim/fields.ts";
export {
  checkInvariants,
  type InvariantReport,
  INVARIANTS,
} from "./invariants.ts";
