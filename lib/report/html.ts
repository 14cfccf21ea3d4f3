/**
 * The report's HTML: one self-contained page with a short introduction, one
 * section per experiment (question, figures inline as SVG with links to
 * their .svg and .png files, what the figures show, findings, a preview of
 * each table with a link to its CSV, the scenarios that ran), and the cost
 * profile with its sources. Pure: text in, text out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeHtml, renderHtml } from "./html.ts";
 * const html = renderHtml({
 *   title: "iopf-lab report",
 *   intro: ["Hello <world>"],
 *   experiments: [],
 *   costs: [],
 * });
 * assert(html.startsWith("<!doctype html>") && html.includes(escapeHtml("<world>")));
 * ```
 *
 * @module
 */
import { formatValue } from "../experiment/metrics.ts";
import { getPath, type Row } from "../plot/row.ts";

/** A figure as the page shows it. */
export interface HtmlFigure {
  /** Anchor id. */
  readonly id: string;
  /** The SVG text, inlined as is. */
  readonly svg: string;
  /** Text alternative. */
  readonly alt: string;
  /** Relative path of the .svg file. */
  readonly svgFile: string;
  /** Relative path of the .png file. */
  readonly pngFile: string;
}

/** A table as the page shows it: a preview and the CSV link. */
export interface HtmlTable {
  /** Anchor id. */
  readonly id: string;
  /** What it holds. */
  readonly title: string;
  /** Relative path of the .csv file. */
  readonly csvFile: string;
  /** The rows (the preview shows the first few). */
  readonly rows: readonly Row[];
  /** Rows shown in the preview. [12] */
  readonly previewRows?: number;
}

/** One experiment's section. */
export interface HtmlExperiment {
  /** Anchor id. */
  readonly id: string;
  /** Section title. */
  readonly title: string;
  /** The question. */
  readonly question: string;
  /** What the figures show. */
  readonly shows: string;
  /** Findings, one sentence or short paragraph each. */
  readonly findings: readonly string[];
  /** Figures. */
  readonly figures: readonly HtmlFigure[];
  /** Tables. */
  readonly tables: readonly HtmlTable[];
  /** The scenario files that ran (JSON text), with notes on adjustments. */
  readonly parameters: readonly {
    readonly json: string;
    readonly note?: string;
  }[];
  /** Number of simulated runs. */
  readonly runs: number;
  /** Wall-clock seconds the runs took. */
  readonly wallSeconds: number;
}

/** One cost parameter. */
export interface HtmlCost {
  /** Parameter name. */
  readonly name: string;
  /** Value. */
  readonly value: number;
  /** Unit. */
  readonly unit: string;
  /** Source. */
  readonly source: string;
}

/** The whole page. */
export interface HtmlReport {
  /** Page title. */
  readonly title: string;
  /** Introductory paragraphs (plain text). */
  readonly intro: readonly string[];
  /** The experiments. */
  readonly experiments: readonly HtmlExperiment[];
  /** The cost profile. */
  readonly costs: readonly HtmlCost[];
  /** Relative path of the cost profile CSV, if written. */
  readonly costsCsv?: string;
  /** A line about how the report was made (suite, wall time). */
  readonly footer?: string;
  /** What made the report (version and commit), shown under the title and at the end. */
  readonly stamp?: string;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/**
 * Prose for element content: escaped, with `code` spans (Markdown's
 * backticks, as the experiments write commands and file names) set as
 * `<code>`, so no backtick reaches the page. An unpaired backtick is kept
 * as an escaped `&#96;`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proseHtml } from "./html.ts";
 * assert.equal(proseHtml("run `deno task sim` <here>"), "run <code>deno task sim</code> &lt;here&gt;");
 * ```
 */
export function proseHtml(text: string): string {
  const parts = text.split("`");
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const part = escapeHtml(parts[i]!);
    const inCode = i % 2 === 1;
    if (inCode && i === parts.length - 1) out += "&#96;" + part; // unpaired
    else out += inCode ? `<code>${part}</code>` : part;
  }
  return out;
}

/** Text for attributes and plain contexts: the backticks of `code` spans dropped. */
export function plainText(text: string): string {
  return text.replaceAll("`", "");
}

/** Longest text a table preview cell shows; longer text is cut, the whole in its tooltip and the CSV. */
export const CELL_TEXT_MAX = 120;

const STYLE = `
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
figure { margin: 1.2em 0; }
figure > div { overflow-x: auto; }
figcaption { font-size: 0.9em; color: #555; }
.question { font-size: 1.08em; font-style: italic; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
td.text { text-align: left; white-space: normal; min-width: 14em; }
td.clip { cursor: help; }
td.na { color: #999; text-align: center; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
details { margin: 0.6em 0; }
.meta { color: #666; font-size: 0.85em; }
`;

/** Renders the page. */
export function renderHtml(report: HtmlReport): string {
  const out: string[] = [];
  out.push(
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(plainText(report.title))}</title>`,
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    `<h1>${proseHtml(report.title)}</h1>`,
  );
  if (report.stamp) {
    out.push(`<p class="meta" id="stamp">${escapeHtml(report.stamp)}</p>`);
  }
  for (const p of report.intro) out.push(`<p>${proseHtml(p)}</p>`);
  if (report.experiments.length > 0) {
    out.push("<h3>Experiments</h3>", "<ol>");
    for (const e of report.experiments) {
      out.push(
        `<li><a href="#${escapeHtml(e.id)}">${proseHtml(e.title)}</a></li>`,
      );
    }
    out.push(
      '<li><a href="#cost-profile">The cost profile and its sources</a></li>',
      "</ol>",
    );
  }
  report.experiments.forEach((e, i) => out.push(experimentHtml(e, i + 1)));
  out.push(costsHtml(report));
  if (report.footer || report.stamp) {
    const line = [report.footer, report.stamp].filter((t) => t).join(" ");
    out.push(`<p class="meta">${proseHtml(line)}</p>`);
  }
  out.push("</body>", "</html>", "");
  return out.join("\n");
}

function experimentHtml(e: HtmlExperiment, n: number): string {
  const out: string[] = [];
  out.push(
    `<section id="${escapeHtml(e.id)}">`,
    `<h2>${n}. ${proseHtml(e.title)}</h2>`,
    `<p class="question">${proseHtml(e.question)}</p>`,
  );
  for (const f of e.figures) {
    out.push(
      `<figure id="fig-${escapeHtml(f.id)}">`,
      `<div role="img" aria-label="${
        escapeHtml(plainText(f.alt))
      }">${f.svg}</div>`,
      `<figcaption>${proseHtml(f.alt)} — <a href="${
        escapeHtml(f.svgFile)
      }">SVG</a> · <a href="${escapeHtml(f.pngFile)}">PNG</a></figcaption>`,
      "</figure>",
    );
  }
  out.push(
    "<h3>What the figures show</h3>",
    `<p>${proseHtml(e.shows)}</p>`,
  );
  if (e.findings.length > 0) {
    out.push("<h3>What the runs showed</h3>", "<ul>");
    for (const f of e.findings) out.push(`<li>${proseHtml(f)}</li>`);
    out.push("</ul>");
  }
  out.push("<h3>Data</h3>");
  for (const t of e.tables) out.push(tableHtml(t));
  out.push(
    "<details>",
    `<summary>Parameters: the scenario files that ran (${e.runs} runs, ${
      e.wallSeconds.toFixed(1)
    } s wall clock)</summary>`,
  );
  for (const p of e.parameters) {
    if (p.note) out.push(`<p class="meta">${proseHtml(p.note)}</p>`);
    out.push(`<pre>${escapeHtml(p.json)}</pre>`);
  }
  out.push("</details>", "</section>");
  return out.join("\n");
}

function tableHtml(t: HtmlTable): string {
  const out: string[] = [];
  const all: string[] = [];
  const seen = new Set<string>();
  for (const r of t.rows) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        all.push(k);
      }
    }
  }
  const shown = t.rows.slice(0, t.previewRows ?? 12);
  // A column no row has a value in (NaN, empty) says nothing: left out, named.
  const empty = all.filter((c) => t.rows.every((r) => isBlank(getPath(r, c))));
  const columns = all.filter((c) => !empty.includes(c));
  out.push(
    `<p id="table-${escapeHtml(t.id)}"><b>${
      proseHtml(t.title)
    }</b> — <a href="${escapeHtml(t.csvFile)}">${
      escapeHtml(t.csvFile)
    }</a> (${t.rows.length} rows${
      shown.length > 0 && shown.length < t.rows.length
        ? `, the first ${shown.length} shown`
        : ""
    }${
      empty.length > 0
        ? `; without a value in any row: ${
          empty.map((c) => `<code>${escapeHtml(c)}</code>`).join(", ")
        }`
        : ""
    })</p>`,
  );
  if (shown.length === 0 || columns.length === 0) return out.join("\n");
  out.push("<table>", "<thead><tr>");
  for (const c of columns) out.push(`<th>${escapeHtml(c)}</th>`);
  out.push("</tr></thead>", "<tbody>");
  for (const r of shown) {
    out.push("<tr>");
    for (const c of columns) out.push(cellHtml(c, getPath(r, c)));
    out.push("</tr>");
  }
  out.push("</tbody>", "</table>");
  return out.join("\n");
}

/** No value: undefined, null, NaN, an empty string or an empty list. */
function isBlank(v: unknown): boolean {
  return v === undefined || v === null || v === "" ||
    (typeof v === "number" && Number.isNaN(v)) ||
    (Array.isArray(v) && v.length === 0);
}

/**
 * One preview cell: a number in its unit; NaN as a grey "n/a"; text (a list
 * joined with "; ", prefixed with its length) cut to
 * {@linkcode CELL_TEXT_MAX} characters, the whole in a tooltip; with text
 * cells at least 14em wide, a row stays a few lines tall instead of a list
 * of error messages wrapping into a column hundreds of pixels tall.
 */
function cellHtml(column: string, v: unknown): string {
  if (typeof v === "number") {
    return Number.isNaN(v)
      ? '<td class="na" title="not a number">n/a</td>'
      : `<td>${escapeHtml(formatValue(column, v))}</td>`;
  }
  const text = Array.isArray(v)
    ? v.length === 0 ? "" : `(${v.length}) ${v.map(String).join("; ")}`
    : v === undefined || v === null
    ? ""
    : String(v);
  if (text.length <= CELL_TEXT_MAX) {
    return `<td class="text">${escapeHtml(text)}</td>`;
  }
  return `<td class="text clip" title="${escapeHtml(text)}">${
    escapeHtml(text.slice(0, CELL_TEXT_MAX - 1).trimEnd())
  }…</td>`;
}

function costsHtml(report: HtmlReport): string {
  const out: string[] = [
    '<section id="cost-profile">',
    "<h2>The cost profile and its sources</h2>",
    "<p>Every simulated time above is built from these per-operation costs (data/costs/default.json), applied by the modelled mechanism; end-to-end numbers are never parameters. Each parameter names its source: a published measurement, a value derived from one, or an estimate with its reasoning.",
  ];
  if (report.costsCsv) {
    out.push(
      ` Also as <a href="${escapeHtml(report.costsCsv)}">${
        escapeHtml(report.costsCsv)
      }</a>.`,
    );
  }
  out.push(
    "</p>",
    "<table>",
    "<thead><tr><th>parameter</th><th>value</th><th>unit</th><th>source</th></tr></thead>",
    "<tbody>",
  );
  for (const c of report.costs) {
    out.push(
      `<tr><td class="text"><code>${escapeHtml(c.name)}</code></td><td>${
        escapeHtml(String(c.value))
      }</td><td class="text">${escapeHtml(c.unit)}</td><td class="text">${
        proseHtml(c.source)
      }</td></tr>`,
    );
  }
  out.push("</tbody>", "</table>", "</section>");
  return out.join("\n");
}
