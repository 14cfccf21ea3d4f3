/**
 * Notebook support: running the project's notebooks headlessly through real
 * Jupyter, checking what they show, keeping them free of saved outputs;
 * tables that Jupyter shows as HTML; and the small analyses the notebooks
 * share (sweep rows, VM density, a fault-latency breakdown by layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectNotebook } from "./mod.ts";
 * const r = inspectNotebook("x.ipynb", {
 *   cells: [{ cell_type: "code", source: "", outputs: [{ output_type: "display_data", data: { "image/svg+xml": "<svg/>" } }] }],
 *   metadata: { iopf_lab: { expects_figures: 1 } },
 *   nbformat: 4,
 *   nbformat_minor: 5,
 * });
 * assert(r.figures === 1 && r.expectedFigures === 1);
 * ```
 *
 * @module
 */
export {
  executeNotebook,
  type ExecuteNotebookOptions,
  formatNotebook,
  hasJupyter,
  inspectNotebook,
  installKernelspec,
  type Notebook,
  type NotebookCell,
  type NotebookOutput,
  type NotebookReport,
  stripNotebook,
} from "./jupyter.ts";
export { show } from "./display.ts";
export {
  formatCell,
  metricsTable,
  type MetricsTableOptions,
  Table,
  table,
  type TableOptions,
  type TableRow,
} from "./table.ts";
export {
  LATENCY_PARTS,
  latencyBreakdown,
  type LatencyBreakdownOptions,
  type LatencyPart,
  meltRows,
  type MeltRowsOptions,
  pointLabel,
  seriesRows,
  sweepRows,
  vmDensity,
  vmFootprintBytes,
} from "./studies.ts";
