/**
 * The calibration table: every published figure the cost profile was fitted
 * to, and every one kept aside to validate against, each run through the
 * model as a scenario, with the model's value beside the published one.
 * The table is data (`data/calibration.json`): one row per figure, so rows
 * are added by merge; `deno task calibration` prints it and writes
 * `docs/CALIBRATION.md`.
 *
 * A fitted row names the one cost parameter it fits; the table also says
 * which value of that parameter the figure implies (one secant step of the
 * model around the profile's value), so a profile value that drifts from its
 * fit shows.
 *
 * @module
 */
import table from "../../data/calibration.json" with { type: "json" };
import type { Metrics } from "../experiment/metrics.ts";
import { runScenario } from "../experiment/run.ts";
import { parseScenario } from "../experiment/scenario.ts";
import { type CostName, describeCosts, loadCostProfile } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { JsonValue } from "../sim/json.ts";

/** Whether a figure was used to set a parameter, or only compared with. */
export type CalibrationRole = "fitted" | "validated";

/** A set of cost overrides standing for one measured machine. */
export interface CalibrationMachine {
  /** What the machine is. */
  readonly description: string;
  /** Its cost overrides (each fitted by a row of the table). */
  readonly costs: Readonly<Record<string, number>>;
}

/** One published figure and the scenario that reproduces its measurement. */
export interface CalibrationRow {
  /** A stable id ("qemu-prealloc-256g-1t"). */
  readonly id: string;
  /** What was measured, in words. */
  readonly figure: string;
  /** Where: commit, mailing-list post, paper (with its section). */
  readonly source: string;
  /** The published value, in `unit`. */
  readonly published: number;
  /**
   * "s", "ms", "us" or "ns" (the metric is a time in ns); "KiB/s" (a speed:
   * `bytes` over the metric's time in ns, in KiB per second, as UADK's
   * hisi_sec_test reports it); or "count" (the metric as it is).
   */
  readonly unit: string;
  /** For a "KiB/s" row: the bytes the measurement moved in the metric's time. */
  readonly bytes?: number;
  /** fitted or validated. */
  readonly role: CalibrationRole;
  /** For a fitted row: the cost parameter it sets. */
  readonly fits?: string;
  /** The machine (a key of the table's machines; absent: the default profile). */
  readonly machine?: string;
  /** The metric of {@linkcode Metrics} compared, a dotted path ("setupNs"). */
  readonly metric: string;
  /** The scenario (as in a scenario file; `name` and `seed` may be left out). */
  readonly scenario: Readonly<Record<string, JsonValue>>;
  /**
   * A patch of the scenario whose metric is subtracted (what the published
   * figure does not include), merged field by field.
   */
  readonly baseline?: Readonly<Record<string, JsonValue>>;
  /** Why the scenario stands for the measurement, where it is not obvious. */
  readonly note?: string;
}

/** The table as stored in data/calibration.json. */
export interface CalibrationTable {
  /** What the table is. */
  readonly description: string;
  /** The machines rows may name. */
  readonly machines: Readonly<Record<string, CalibrationMachine>>;
  /** The rows. */
  readonly rows: readonly CalibrationRow[];
  /** Published figures deliberately left out, and why. */
  readonly keptAside: readonly {
    figure: string;
    source: string;
    why: string;
  }[];
}

/** One row with the model's value. */
export interface CalibrationResult {
  /** The row. */
  readonly row: CalibrationRow;
  /** The model's value, in the row's unit. */
  readonly model: number;
  /** (model - published) / published. */
  readonly error: number;
  /**
   * For a fitted row: the value of its parameter the published figure
   * implies, and the value the row ran with.
   */
  readonly fit?: { readonly implied: number; readonly used: number };
}

const UNIT_NS: Readonly<Record<string, number>> = {
  s: 1e9,
  ms: 1e6,
  us: 1e3,
  ns: 1,
};

/** Units that are not a time: a speed over the metric's time, a count. */
const OTHER_UNITS = ["KiB/s", "count"] as const;

/** The row's value in its unit from the metric (ns for time and speed rows). */
function inUnit(row: CalibrationRow, v: number): number {
  if (row.unit === "count") return v;
  if (row.unit === "KiB/s") return row.bytes! / 1024 / (v / 1e9);
  return v / UNIT_NS[row.unit]!;
}

/** The table in data/calibration.json, checked. */
export function loadCalibration(): CalibrationTable {
  const t = table as unknown as CalibrationTable;
  checkTable(t);
  return t;
}

/** EINVAL naming the row and field when the table is not well formed. */
export function checkTable(t: CalibrationTable): void {
  const ids = new Set<string>();
  const names = describeCosts();
  for (const [key, m] of Object.entries(t.machines)) {
    loadCostProfile(m.costs, `machines.${key}.costs`);
  }
  for (const row of t.rows) {
    const where = `calibration row ${row.id}`;
    if (ids.has(row.id)) bad(where, "id", "appears twice");
    ids.add(row.id);
    const units = [...Object.keys(UNIT_NS), ...OTHER_UNITS];
    if (!units.includes(row.unit)) {
      bad(where, "unit", `must be one of ${units.join(", ")}`);
    }
    if ((row.unit === "KiB/s") !== (row.bytes !== undefined)) {
      bad(where, "bytes", "a KiB/s row, and only one, names the bytes moved");
    }
    if (row.bytes !== undefined && !(row.bytes > 0)) {
      bad(where, "bytes", "must be positive");
    }
    if (!(row.published > 0)) bad(where, "published", "must be positive");
    if (row.role !== "fitted" && row.role !== "validated") {
      bad(where, "role", "must be fitted or validated");
    }
    if (row.role === "fitted") {
      if (row.fits === undefined || !Object.hasOwn(names, row.fits)) {
        bad(where, "fits", "a fitted row names the cost parameter it fits");
      }
    } else if (row.fits !== undefined) {
      bad(where, "fits", "only a fitted row fits a parameter");
    }
    if (row.machine !== undefined && !Object.hasOwn(t.machines, row.machine)) {
      bad(where, "machine", `unknown machine ${row.machine}`);
    }
    scenarioOf(t, row, undefined); // parses
  }
}

function bad(where: string, field: string, why: string): never {
  throw new IopfLabError(
    "EINVAL",
    `Cannot use ${where}: ${field} ${why}`,
    field,
  );
}

/** Deep merge of plain objects (the patch wins). */
function merge(
  base: Readonly<Record<string, JsonValue>>,
  patch: Readonly<Record<string, JsonValue>>,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? merge(b, v) : v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, JsonValue> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The scenario of a row (its machine's costs, then `patch`, then `costs`). */
function scenarioOf(
  t: CalibrationTable,
  row: CalibrationRow,
  patch: Readonly<Record<string, JsonValue>> | undefined,
  costs: Readonly<Record<string, number>> = {},
) {
  const machine = row.machine ? t.machines[row.machine]!.costs : {};
  let s = merge({ name: row.id, seed: 1 }, row.scenario);
  s = merge(s, { costs: { ...machine } });
  if (patch) s = merge(s, patch);
  s = merge(s, { costs: { ...costs } });
  return parseScenario(s);
}

function metricOf(m: Metrics, path: string, id: string): number {
  let v: unknown = m;
  for (const part of path.split(".")) {
    v = isObject(v) ? (v as Record<string, unknown>)[part] : undefined;
  }
  if (typeof v !== "number") {
    bad(`calibration row ${id}`, "metric", `${path} is not a number metric`);
  }
  return v;
}

/**
 * The row's metric (ns for a time or speed row), with cost overrides on top
 * of the row's, less its baseline's.
 */
function modelNs(
  t: CalibrationTable,
  row: CalibrationRow,
  costs?: Readonly<Record<string, number>>,
): number {
  const v = metricOf(
    runScenario(scenarioOf(t, row, undefined, costs)),
    row.metric,
    row.id,
  );
  if (!row.baseline) return v;
  return v -
    metricOf(
      runScenario(scenarioOf(t, row, row.baseline, costs)),
      row.metric,
      row.id,
    );
}

/** The value a fitted row's parameter has in the row's scenario. */
function usedValue(t: CalibrationTable, row: CalibrationRow): number {
  const name = row.fits as CostName;
  const machine = row.machine ? t.machines[row.machine]!.costs : {};
  return machine[name] ?? describeCosts()[name].value;
}

/** Options of {@linkcode runCalibration}. */
export interface RunCalibrationOptions {
  /** Only the rows with these ids (default: all). */
  ids?: readonly string[];
  /** Called after each row. */
  onRow?: (r: CalibrationResult) => void;
}

/**
 * Runs every row's scenario and compares with the published figure. A
 * fitted row is also run with its parameter 1 % higher, and the value the
 * figure implies is one secant step from the profile's value (exact when
 * the model is linear in the parameter around it, as the costs of the
 * model are).
 */
export function runCalibration(
  t: CalibrationTable = loadCalibration(),
  options: RunCalibrationOptions = {},
): CalibrationResult[] {
  checkTable(t);
  const out: CalibrationResult[] = [];
  for (const row of t.rows) {
    if (options.ids && !options.ids.includes(row.id)) continue;
    const model = inUnit(row, modelNs(t, row));
    const r: CalibrationResult = {
      row,
      model,
      error: (model - row.published) / row.published,
      ...(row.role === "fitted" ? { fit: fitOf(t, row, model) } : {}),
    };
    out.push(r);
    options.onRow?.(r);
  }
  return out;
}

function fitOf(t: CalibrationTable, row: CalibrationRow, model: number) {
  const used = usedValue(t, row);
  const step = used > 0 ? used * 0.01 : 1;
  const model2 = inUnit(row, modelNs(t, row, { [row.fits!]: used + step }));
  const slope = (model2 - model) / step;
  const implied = slope === 0 ? NaN : used + (row.published - model) / slope;
  return { implied, used };
}

/** A number with 4 significant digits (no exponent for everyday sizes). */
function sig(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e4 || a === 0) return String(Math.round(v));
  return String(Number(v.toPrecision(4)));
}

/** A value with its unit (a count bare). */
function withUnit(v: number, row: CalibrationRow): string {
  return row.unit === "count" ? sig(v) : `${sig(v)} ${row.unit}`;
}

function pct(e: number): string {
  const p = e * 100;
  return `${p >= 0 ? "+" : ""}${p.toFixed(1)} %`;
}

/** One row of the figures table of docs/CALIBRATION.md. */
export function calibrationRowLine(r: CalibrationResult): string {
  const { row } = r;
  const role = row.role === "fitted" ? `fitted: \`${row.fits}\`` : "validated";
  const machine = row.machine ? ` (machine: ${row.machine})` : "";
  return `| ${row.id} | ${row.figure}${machine} | ${row.source} | ${role} | ${
    withUnit(row.published, row)
  } | ${withUnit(r.model, row)} | ${pct(r.error)} |`;
}

/** The line of docs/CALIBRATION.md that carries the inputs' fingerprint. */
export function fingerprintLine(fingerprint: string): string {
  return `<!-- calibration inputs: ${fingerprint} -->`;
}

/**
 * The table as Markdown (docs/CALIBRATION.md). `fingerprint` identifies the
 * inputs it was computed from (the CLI hashes the table, the profile and the
 * model's sources), so a check can tell a current doc without rerunning.
 */
export function calibrationMarkdown(
  results: readonly CalibrationResult[],
  t: CalibrationTable = loadCalibration(),
  fingerprint = "",
): string {
  const lines: string[] = [];
  lines.push(
    "# Calibration",
    "",
    fingerprintLine(fingerprint),
    "",
    "Generated by `deno task calibration --write` from `data/calibration.json`",
    "and the default cost profile (`data/costs/default.json`); do not edit by",
    "hand (`tests/cli/calibration_test.ts` checks it is current).",
    "",
    t.description,
    "",
    "## Published figures and the model",
    "",
    "Error is (model - published) / published. A fitted figure set the",
    "parameter named beside it; a validated one was kept aside and only",
    "compared with.",
    "",
    "| id | figure | source | role | published | model | error |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of results) lines.push(calibrationRowLine(r));
  const fits = results.filter((r) => r.fit);
  lines.push(
    "",
    "## Fitted parameters",
    "",
    "The value each fitted figure implies (one secant step of the model) and",
    "the value the run used, held by the default profile or by the row's",
    "machine (when that machine overrides the parameter).",
    "",
    "| parameter | held by | implied by | implied value | value used | unit |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const r of fits) {
    const name = r.row.fits as CostName;
    const m = r.row.machine;
    const held = m && Object.hasOwn(t.machines[m]!.costs, name)
      ? `machine ${m}`
      : "default profile";
    lines.push(
      `| \`${name}\` | ${held} | ${r.row.id} | ${sig(r.fit!.implied)} | ${
        sig(r.fit!.used)
      } | ${describeCosts()[name].unit} |`,
    );
  }
  lines.push("", "## Machines", "");
  lines.push(
    "Rows measured on another machine than the default profile's run with",
    "that machine's overrides (each fitted by a row above).",
    "",
    "| machine | what | overrides |",
    "| --- | --- | --- |",
  );
  for (const [key, m] of Object.entries(t.machines)) {
    const o = Object.entries(m.costs).map(([k, v]) => `\`${k}\` = ${v}`)
      .join(", ");
    lines.push(`| ${key} | ${m.description} | ${o} |`);
  }
  lines.push("", "## Kept aside", "");
  lines.push("| figure | source | why not used |", "| --- | --- | --- |");
  for (const k of t.keptAside) {
    lines.push(`| ${k.figure} | ${k.source} | ${k.why} |`);
  }
  lines.push("", "## Notes on the rows", "");
  for (const r of results) {
    if (r.row.note) lines.push(`- **${r.row.id}**: ${r.row.note}`);
  }
  return lines.join("\n") + "\n";
}

/** The table as fixed-width text for a terminal. */
export function calibrationText(results: readonly CalibrationResult[]): string {
  const head = ["id", "source", "role", "published", "model", "error"];
  const rows = results.map((r) => [
    r.row.id,
    r.row.source.length > 48 ? r.row.source.slice(0, 47) + "…" : r.row.source,
    r.row.role === "fitted" ? `fitted ${r.row.fits}` : "validated",
    withUnit(r.row.published, r.row),
    withUnit(r.model, r.row),
    pct(r.error),
  ]);
  const w = head.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const fmt = (cells: string[]) =>
    cells.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [fmt(head), ...rows.map(fmt)].join("\n") + "\n";
}
