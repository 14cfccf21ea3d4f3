/**
 * Notebook support: tables that Jupyter shows as HTML and `show` for the
 * Deno kernel. The analyses the notebooks use (sweep rows, VM density, the
 * fault-latency breakdowns) are lib/analysis's. Running the notebooks
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
export {
  metricsTable,
  type MetricsTableOptions,
  Table,
  table,
  type TableOptions,
} from "./table.ts";
