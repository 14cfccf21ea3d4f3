/**
 * Tables for notebooks: tidy rows (or metrics) shown as an HTML table in
 * Jupyter, with values formatted for people the way the CLI summary does
 * (times in us/ms/s, sizes in MiB/GiB, rates in GB/s).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { table } from "./table.ts";
 * const t = table([{ mode: "iopf", setupNs: 4e6 }, { mode: "static-pin", setupNs: 2.9e9 }]);
 * assert(t.html.startsWith("<table") && t.html.includes("4.00 ms"));
 * ```
 *
 * @module
 */
import { flattenMetrics, type Metrics } from "../experiment/metrics.ts";
import { formatCell } from "../analysis/format.ts";
import { getPath, type Row } from "../plot/row.ts";

/** The method the Deno Jupyter kernel calls to show a value (as lib/plot's figures use). */
const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** Options of {@linkcode table}. */
export interface TableOptions {
  /**
   * Fields shown, in order: a key of the rows or a dotted path into nested
   * records (`faults.total`). [every key of the rows, in first-seen order]
   */
  readonly columns?: readonly string[];
  /** Header text by field. [the field name] */
  readonly labels?: Readonly<Record<string, string>>;
  /** Caption drawn above the table. [none] */
  readonly caption?: string;
  /**
   * Formats one cell. [numbers by the unit their field name implies
   * (`...Ns` a time, `...Bytes` a size, see lib/experiment formatValue);
   * strings as they are; missing values as "-"]
   */
  readonly format?: (field: string, value: unknown) => string;
}

/** A table that Jupyter shows as HTML (and a terminal as aligned text). */
export class Table {
  /** Column fields, in order. */
  readonly columns: readonly string[];
  /** Header text of each column. */
  readonly headers: readonly string[];
  /** Formatted cells, one array per row. */
  readonly cells: readonly (readonly string[])[];
  /** The caption, if any. */
  readonly caption: string | undefined;

  /** A table of already formatted cells. */
  constructor(
    columns: readonly string[],
    content: {
      readonly headers: readonly string[];
      readonly cells: readonly (readonly string[])[];
      readonly caption?: string;
    },
  ) {
    this.columns = columns;
    this.headers = content.headers;
    this.cells = content.cells;
    this.caption = content.caption;
  }

  /** The HTML `<table>` element. */
  get html(): string {
    const right = this.#numericColumns();
    const head = this.headers.map((h, i) =>
      `<th style="text-align:${right[i] ? "right" : "left"}">${
        escapeHtml(h)
      }</th>`
    ).join("");
    const body = this.cells.map((row) =>
      `<tr>${
        row.map((c, i) =>
          `<td style="text-align:${right[i] ? "right" : "left"}">${
            escapeHtml(c)
          }</td>`
        ).join("")
      }</tr>`
    ).join("\n");
    const caption = this.caption === undefined
      ? ""
      : `<caption>${escapeHtml(this.caption)}</caption>`;
    return `<table>${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
  }

  /** The table as aligned plain text. */
  toString(): string {
    const widths = this.headers.map((h, i) =>
      Math.max(h.length, ...this.cells.map((r) => (r[i] ?? "").length))
    );
    const right = this.#numericColumns();
    const line = (cells: readonly string[]): string =>
      cells.map((c, i) =>
        right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)
      ).join("  ").trimEnd();
    const lines = [
      line(this.headers),
      widths.map((w) => "-".repeat(w)).join("  "),
      ...this.cells.map(line),
    ];
    if (this.caption !== undefined) lines.unshift(this.caption);
    return lines.join("\n") + "\n";
  }

  /** Columns whose cells all read as numbers (right-aligned). */
  #numericColumns(): boolean[] {
    return this.headers.map((_, i) =>
      this.cells.length > 0 &&
      this.cells.every((r) => /^(-|[-+]?[0-9.,]+\b)/.test(r[i] ?? ""))
    );
  }

  /** The MIME bundle the Deno Jupyter kernel shows: HTML, with text as a fallback. */
  [JUPYTER_DISPLAY](): { "text/html": string; "text/plain": string } {
    return { "text/html": this.html, "text/plain": this.toString() };
  }
}

/**
 * A table of tidy rows: one table row per row, one column per field.
 * Numbers are formatted by their field's unit (see {@linkcode TableOptions}).
 */
export function table(
  rows: readonly Row[],
  options: TableOptions = {},
): Table {
  const columns = options.columns ?? keysOf(rows);
  const format = options.format ?? formatCell;
  return new Table(columns, {
    headers: columns.map((c) => options.labels?.[c] ?? c),
    cells: rows.map((row) => columns.map((c) => format(c, getPath(row, c)))),
    ...(options.caption === undefined ? {} : { caption: options.caption }),
  });
}

/** Options of {@linkcode metricsTable}. */
export interface MetricsTableOptions {
  /**
   * Metrics shown, as flattened keys (`setupNs`, `faults.total`,
   * `extra.containerLockWaits`). [every key of the runs except name, seed
   * and the swept values]
   */
  readonly fields?: readonly string[];
  /** Caption drawn above the table. [none] */
  readonly caption?: string;
}

/**
 * Metrics of one or several runs side by side, like the CLI summary: one
 * row per metric, one column per run, headed by the run's swept values (or
 * its name when it is not a sweep point).
 */
export function metricsTable(
  runs: Metrics | readonly Metrics[],
  options: MetricsTableOptions = {},
): Table {
  const list: readonly Metrics[] = Array.isArray(runs)
    ? runs
    : [runs as Metrics];
  const flats = list.map(flattenMetrics);
  const fields = options.fields ??
    keysOf(flats).filter((k) =>
      k !== "name" && k !== "seed" && !k.startsWith("sweepPoint.")
    );
  const heads = list.map((m) =>
    m.sweepPoint === undefined
      ? m.name
      : Object.entries(m.sweepPoint).map(([k, v]) => `${k}=${formatCell(k, v)}`)
        .join(", ")
  );
  return new Table(["metric", ...heads], {
    headers: ["metric", ...heads],
    cells: fields.map((f) => [f, ...flats.map((m) => formatCell(f, m[f]))]),
    ...(options.caption === undefined ? {} : { caption: options.caption }),
  });
}

function keysOf(rows: readonly Row[]): string[] {
  const keys: string[] = [];
  for (const r of rows) {
    for (const k of Object.keys(r)) {
      if (!keys.includes(k)) keys.push(k);
    }
  }
  return keys;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
