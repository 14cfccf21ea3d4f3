/**
 * Values formatted for people by their field's name, the way the CLI
 * summary, notebook tables, the report's HTML tables and the charts' axes
 * show them. The unit of a field comes from one table,
 * {@linkcode FIELD_UNITS} (lib/sim/field_units.ts): `formatValue` (CLI),
 * `formatCell` (tables) and lib/plot's `unitOf` (axes) all read it, so they
 * agree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fieldUnit, formatCell } from "./format.ts";
 * assert.equal(fieldUnit("workload.blockSize"), "bytes");
 * assert.equal(formatCell("workload.blockSize", 128 * 2 ** 20), "128 MiB");
 * assert.equal(formatCell("iova", 0x8000000), "0x8000000");
 * assert.equal(formatCell("faults.total", undefined), "-");
 * ```
 *
 * @module
 */
import { formatValue } from "../experiment/metrics.ts";

export {
  FIELD_UNITS,
  type FieldUnit,
  fieldUnit,
  type FieldUnitRule,
} from "../sim/field_units.ts";
export { formatValue };

/**
 * Formats a cell by its field's name: the default of a notebook table's
 * `format`. Numbers as {@linkcode formatValue} does (the unit their field
 * implies: `...Ns` a time, `...Bytes` and scenario sizes such as
 * `vm.memory` or `workload.blockSize` a size, `...BytesPerSec` a rate,
 * addresses such as `iova` in hex); strings as they are; booleans as
 * "true"/"false"; missing values as "-"; anything else as JSON.
 */
export function formatCell(fieldName: string, value: unknown): string {
  if (value === undefined || value === null || value === "") return "-";
  if (typeof value === "number") return formatValue(fieldName, value);
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}
