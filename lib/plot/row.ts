/**
 * Rows, as every layer that draws or tabulates them sees them: any object,
 * its fields read by key or by dotted path into nested records.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getPath } from "./row.ts";
 * assert.equal(getPath({ faults: { total: 3 } }, "faults.total"), 3);
 * assert.equal(getPath({ "faults.total": 4 }, "faults.total"), 4);
 * assert.equal(getPath({ faults: 5 }, "faults.total"), undefined);
 * ```
 *
 * @module
 */

/**
 * A row of data: any object (a plain record, or an interface type such as
 * `SeriesRow` or `Metrics`); fields are read by name or dotted path
 * ({@linkcode getPath}).
 */
export type Row = object;

/**
 * A field of a row: its own key when the row has it (`"faults.total"` in a
 * flattened row), else the dotted path into nested records (`faults.total`
 * in a `Metrics`); undefined when the path leads nowhere.
 */
export function getPath(row: Row, field: string): unknown {
  if (field in row) return (row as Record<string, unknown>)[field];
  let v: unknown = row;
  for (const part of field.split(".")) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}
