/**
 * Notebook support: tables that Jupyter shows as HTML, `show` for the Deno
 * kernel, and, re-exported from lib/analysis, the small analyses the
 * notebooks share (sweep rows, VM density, a fault-latency breakdown by
 * layer). Running the notebooks
 * headlessly through Jupyter is tooling, not library: `deno task nb`
 * (cli/nb.ts and cli/_jupyter.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { table } from "./mod.ts";
 * const t = table([{ mode: "iopf", setupNs: 4e6 }, { mode: "static-pin", setupNs: 2.9e9 }]);
 * assert(t.html.startsWith("<table") && t.html.includes("4.00 ms"));
 * ```
 *
 * @module
 */
export { show } from "./display.ts";
export type { Row } from "../plot/row.ts";
export { formatCell } from "../analysis/format.ts";
export {
  metricsTable,
  type MetricsTableOptions,
  Table,
  table,
  type TableOptions,
} from "./table.ts";
export {
  ablationBreakdown,
  LATENCY_PARTS,
  type LatencyBreakdownOptions,
  type LatencyPart,
  meltRows,
  type MeltRowsOptions,
  pointLabel,
  seriesRows,
  sweepRows,
  vmDensity,
  vmFootprintBytes,
} from "../analysis/tidy.ts";
