/**
 * CSV for results, written and read with d3-dsv: one row per scenario with
 * flattened metric keys (`faults.total`), or one row per time-series
 * sample. Reading back gives the same records.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { metricsFromCsv, metricsToCsv } from "./csv.ts";
 * import { emptyMetrics } from "./metrics.ts";
 * const csv = metricsToCsv([{ ...emptyMetrics("a", 1), runNs: 5 }]);
 * assert(csv.startsWith("name,seed,setupNs,runNs"));
 * assert(metricsFromCsv(csv)[0]!.runNs === 5);
 * ```
 *
 * @module
 */
// @ts-types="@types/d3-dsv"
import { csvFormat, csvParse } from "d3-dsv";
import {
  flattenMetrics,
  type Metrics,
  type SeriesRow,
  unflattenMetrics,
} from "./metrics.ts";

/**
 * Metrics as CSV: one row per run, nested keys flattened with dots. The
 * columns are the union of every row's keys in first-seen order, so rows
 * with different optional sections still line up (missing cells empty).
 */
export function metricsToCsv(rows: readonly Metrics[]): string {
  const flat = rows.map(flattenMetrics);
  return csvFormat(flat, columnsOf(flat));
}

/** Time-series rows as CSV, one line per sample. */
export function seriesToCsv(rows: readonly SeriesRow[]): string {
  const columns = columnsOf(rows as readonly object[]);
  return csvFormat(rows as unknown as Record<string, unknown>[], columns);
}

/** Options of {@linkcode readCsv}. */
export interface ReadCsvOptions {
  /**
   * Turn cells that are numbers ("12", "-1.5e3", "Infinity", "NaN") into
   * numbers; others stay strings. [true]
   */
  readonly numbers?: boolean;
  /** Columns always kept as text, even when a cell looks like a number. [["name"]] */
  readonly text?: readonly string[];
}

/** A row read by {@linkcode readCsv}. */
export type CsvRow = Record<string, string | number>;

/** Reads CSV text with a header line into one record per row. */
export function readCsv(text: string, options: ReadCsvOptions = {}): CsvRow[] {
  const numbers = options.numbers ?? true;
  const keep = new Set(options.text ?? ["name"]);
  const rows = csvParse(text, (row) => {
    const out: CsvRow = {};
    for (const [k, v] of Object.entries(row)) {
      const cell = v ?? "";
      out[k] = numbers && !keep.has(k) && NUMBER.test(cell)
        ? Number(cell)
        : cell;
    }
    return out;
  });
  return [...rows]; // a plain array, without d3's `columns` property
}

/**
 * Reads metrics written by {@linkcode metricsToCsv} back into nested
 * records (empty cells dropped; swept values that look like numbers come
 * back as numbers).
 */
export function metricsFromCsv(text: string): Metrics[] {
  return readCsv(text).map(unflattenMetrics);
}

/** Reads time-series rows written by {@linkcode seriesToCsv}. */
export function seriesFromCsv(text: string): SeriesRow[] {
  return readCsv(text) as unknown as SeriesRow[];
}

const NUMBER =
  /^(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Infinity|NaN)$/;

function columnsOf(rows: readonly object[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}
