/**
 * Faceted charts beyond the common ones (the report's figures): lines in
 * `fx`/`fy` facets (log, symlog or linear scale types, one color per
 * `series`, optional reference rules) and stacked bars with a marked total.
 * Values are scaled to a readable unit with {@linkcode displayUnit}, as
 * lineChart and barChart do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { facetLines } from "./facets.ts";
 * const fig = facetLines([
 *   { vm: 1, ns: 1e6, mode: "iopf" },
 *   { vm: 2, ns: 2e6, mode: "iopf" },
 * ], { x: "vm", y: "ns", series: "mode", xLabel: "VMs", yLabel: "setup", yUnit: "ns", title: "t" });
 * assert(fig.svg.includes("setup (ms)"));
 * ```
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { IopfLabError } from "../sim/errors.ts";
import { formatSize } from "../sim/units.ts";
import { axisLabel, maxAbs, unique } from "./_scale.ts";
import { displayUnit, type Unit, unitOf } from "./charts.ts";
import { type Figure, figure, type FigureOptions } from "./figure.ts";
import { getPath, type Row } from "./row.ts";

/** An axis scale: linear, logarithmic, or symmetric log (draws zeros). */
export type ScaleType = "linear" | "log" | "symlog";

/**
 * How an axis labels its ticks: "unit" scales the values into a readable
 * unit named in the axis label (ns -> ms, bytes -> GiB); "size" keeps bytes
 * and labels each tick as a size ("4 GiB", "1 TiB"); "count" labels plain
 * numbers with digit grouping.
 */
export type AxisFormat = "unit" | "size" | "count";

/** Options of {@linkcode facetLines}. */
export interface FacetLinesOptions {
  /** Field of the x values. */
  readonly x: string;
  /** Field of the y values. */
  readonly y: string;
  /** Field naming the series (one line and color each). */
  readonly series: string;
  /** Order of the series in the legend. [first seen] */
  readonly seriesDomain?: readonly string[];
  /** Series drawn dashed, over the solid ones (so that coinciding lines stay visible). [none] */
  readonly dashed?: readonly string[];
  /** Field of the horizontal facet (panels side by side). */
  readonly fx?: string;
  /** Field of the vertical facet (panels stacked). */
  readonly fy?: string;
  /** Order of the fx panels. [first seen] */
  readonly fxDomain?: readonly string[];
  /** Order of the fy panels. [first seen] */
  readonly fyDomain?: readonly string[];
  /** Type of the x scale (Plot's `x.type`). ["linear"] */
  readonly xType?: ScaleType;
  /** Type of the y scale (Plot's `y.type`). ["linear"] */
  readonly yType?: ScaleType;
  /** x tick labels. ["unit"] */
  readonly xFormat?: AxisFormat;
  /** y tick labels. ["unit"] */
  readonly yFormat?: AxisFormat;
  /** Unit of the x values (with "unit" format). [from the field name] */
  readonly xUnit?: Unit;
  /** Unit of the y values (with "unit" format). [from the field name] */
  readonly yUnit?: Unit;
  /** x axis label (the unit is appended with "unit" format). */
  readonly xLabel: string;
  /** y axis label (the unit is appended with "unit" format). */
  readonly yLabel: string;
  /** Tick values of the x axis, in the field's unit. [Plot's choice; powers of ten on symlog] */
  readonly xTicks?: readonly number[];
  /** Tick values of the y axis, in the field's unit. [Plot's choice; powers of ten on symlog] */
  readonly yTicks?: readonly number[];
  /** Where a symlog axis turns linear, in the field's unit. [1] */
  readonly symlogConstant?: number;
  /** Draw a dot at every point. [false] */
  readonly dots?: boolean;
  /** Step lines (a value holds back to the previous sample). [false] */
  readonly step?: boolean;
  /** Horizontal reference lines in the y field's unit, each with a label. */
  readonly rules?: readonly { readonly y: number; readonly label: string }[];
  /** Title. */
  readonly title: string;
  /** Subtitle. */
  readonly subtitle?: string;
  /** Caption under the chart. */
  readonly caption?: string;
  /** Width in pixels. [720] */
  readonly width?: number;
  /** Height in pixels. [380] */
  readonly height?: number;
}

interface Point {
  x: number;
  y: number;
  color: string;
  fx: string;
  fy: string;
}

/** Lines over x, one color per series, optionally in facets. */
export function facetLines(
  rows: readonly Row[],
  o: FacetLinesOptions,
): Figure {
  const xScale = o.xType ?? "linear";
  const yScale = o.yType ?? "linear";
  let data: Point[] = rows.map((r, i) => ({
    x: num(r, o.x, i),
    y: num(r, o.y, i),
    color: String(getPath(r, o.series)),
    fx: o.fx === undefined ? "" : String(getPath(r, o.fx)),
    fy: o.fy === undefined ? "" : String(getPath(r, o.fy)),
  }));
  if (xScale === "log") data = data.filter((d) => d.x > 0);
  if (yScale === "log") data = data.filter((d) => d.y > 0);
  const xAxis = axis(o.xFormat ?? "unit", o.xUnit ?? unitOf(o.x), data, "x");
  const yAxis = axis(o.yFormat ?? "unit", o.yUnit ?? unitOf(o.y), data, "y");
  const scaled = data.map((d) => ({
    ...d,
    x: d.x / xAxis.factor,
    y: d.y / yAxis.factor,
  }));
  const colors = o.seriesDomain
    ? o.seriesDomain.filter((c) => scaled.some((d) => d.color === c))
    : unique(scaled.map((d) => d.color));
  const facet = {
    ...(o.fx === undefined ? {} : { fx: "fx" }),
    ...(o.fy === undefined ? {} : { fy: "fy" }),
  };
  const marks: unknown[] = [];
  if (yScale === "linear") marks.push(Plot.ruleY([0]));
  for (const rule of o.rules ?? []) {
    const y = rule.y / yAxis.factor;
    marks.push(
      Plot.ruleY([y], { stroke: "gray", strokeDasharray: "4,3" }),
      Plot.text([rule.label], {
        frameAnchor: "left",
        y: () => y,
        dx: 4,
        dy: 8,
        fill: "gray",
        textAnchor: "start",
      }),
    );
  }
  const dashed = new Set(o.dashed ?? []);
  const line = (points: typeof scaled, dash: boolean) =>
    Plot.line(points, {
      x: "x",
      y: "y",
      z: "color",
      stroke: "color",
      sort: "x",
      strokeWidth: dash ? 2 : 1.6,
      ...(dash ? { strokeDasharray: "6,4" } : {}),
      ...(o.step ? { curve: "step-before" } : {}),
      ...facet,
    });
  marks.push(line(scaled.filter((d) => !dashed.has(d.color)), false));
  if (dashed.size > 0) {
    marks.push(line(scaled.filter((d) => dashed.has(d.color)), true));
  }
  if (o.dots) {
    marks.push(
      Plot.dot(scaled, {
        x: "x",
        y: "y",
        stroke: "color",
        fill: "color",
        r: 2.5,
        ...facet,
      }),
    );
  }
  const options: FigureOptions = {
    title: o.title,
    ...(o.subtitle === undefined ? {} : { subtitle: o.subtitle }),
    ...(o.caption === undefined ? {} : { caption: o.caption }),
    width: o.width ?? 720,
    height: o.height ?? 380,
    marginLeft: 70,
    marginRight: o.fy === undefined ? 28 : 120,
    marginBottom: 44,
    x: {
      label: o.xLabel + xAxis.suffix,
      grid: true,
      labelAnchor: "center",
      labelArrow: "none",
      ...scaleOptions(xScale, xAxis, o.xTicks, o.symlogConstant, data, "x"),
    },
    y: {
      label: o.yLabel + yAxis.suffix,
      grid: true,
      labelArrow: "none",
      ...scaleOptions(yScale, yAxis, o.yTicks, o.symlogConstant, data, "y"),
    },
    color: { legend: true, type: "categorical", domain: colors },
    ...(o.fx === undefined ? {} : {
      fx: {
        label: null,
        ...(o.fxDomain ? { domain: o.fxDomain } : {}),
        padding: 0.12,
      },
    }),
    ...(o.fy === undefined ? {} : {
      fy: {
        label: null,
        ...(o.fyDomain ? { domain: o.fyDomain } : {}),
      },
    }),
    marks,
  };
  return figure(options);
}

interface Axis {
  readonly format: AxisFormat;
  /** Divide values by this. */
  readonly factor: number;
  /** Appended to the axis label (" (ms)"), or "". */
  readonly suffix: string;
}

function axis(
  format: AxisFormat,
  unit: Unit,
  data: readonly Point[],
  key: "x" | "y",
): Axis {
  if (format !== "unit") return { format, factor: 1, suffix: "" };
  const u = displayUnit(unit, maxAbs(data, key));
  return { format, factor: u.factor, suffix: u.suffix ? ` (${u.suffix})` : "" };
}

function scaleOptions(
  scale: ScaleType,
  a: Axis,
  ticks: readonly number[] | undefined,
  constant: number | undefined,
  data: readonly Point[],
  key: "x" | "y",
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (scale !== "linear") out.type = scale;
  let t = ticks?.map((v) => v / a.factor);
  if (scale === "symlog") {
    out.constant = (constant ?? 1) / a.factor;
    if (t === undefined) {
      const max = maxAbs(data, key) / a.factor;
      t = [0];
      for (let p = 1; p <= Math.max(1, max) * 1.0001; p *= 10) t.push(p);
    }
  }
  if (t !== undefined) out.ticks = t;
  // d3's log tickFormat blanks labels that are not 1, 2 or 5 times a power of
  // the base: explicit power-of-two ticks keep their labels with base 2.
  if (scale === "log" && t !== undefined && t.every(isPowerOfTwo)) {
    out.base = 2;
  }
  if (a.format === "size") {
    out.tickFormat = (v: number) => formatSize(v);
  } else if (scale !== "linear" || a.format === "count") {
    out.tickFormat = (v: number) => formatNumber(v);
  }
  return out;
}

function isPowerOfTwo(v: number): boolean {
  return v > 0 && Number.isInteger(Math.log2(v));
}

/** A tick label: digit grouping, at most three significant digits below 1000. */
function formatNumber(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return String(Number(v.toPrecision(3)));
}

/** Options of {@linkcode stackedBars}. */
export interface StackedBarsOptions {
  /** Field naming the bar (category on x). */
  readonly x: string;
  /** Field of the segment heights. */
  readonly y: string;
  /** Field naming the segment (one color each). */
  readonly fill: string;
  /** Order of the bars. [first seen] */
  readonly xDomain?: readonly string[];
  /** Order of the segments, bottom to top, and of the legend. [first seen] */
  readonly fillDomain?: readonly string[];
  /** Unit of the y values. [from the field name] */
  readonly yUnit?: Unit;
  /** x axis label. */
  readonly xLabel: string;
  /** y axis label (the unit is appended). */
  readonly yLabel: string;
  /** Totals to mark above each bar (in the y field's unit), labelled with their value. */
  readonly totals?: readonly { readonly x: string; readonly y: number }[];
  /** Title. */
  readonly title: string;
  /** Subtitle. */
  readonly subtitle?: string;
  /** Caption under the chart. */
  readonly caption?: string;
  /** Width in pixels. [720] */
  readonly width?: number;
  /** Height in pixels. [400] */
  readonly height?: number;
}

/** Stacked bars (negative segments stack below zero), with optional marked totals. */
export function stackedBars(
  rows: readonly Row[],
  o: StackedBarsOptions,
): Figure {
  const data = rows.map((r, i) => ({
    x: String(getPath(r, o.x)),
    y: num(r, o.y, i),
    fill: String(getPath(r, o.fill)),
  }));
  let max = 0;
  const pos = new Map<string, number>();
  for (const d of data) {
    if (d.y > 0) pos.set(d.x, (pos.get(d.x) ?? 0) + d.y);
  }
  for (const v of pos.values()) max = Math.max(max, v);
  for (const t of o.totals ?? []) max = Math.max(max, t.y);
  const yu = displayUnit(o.yUnit ?? unitOf(o.y), max);
  const scaled = data.map((d) => ({ ...d, y: d.y / yu.factor }));
  const fills = o.fillDomain
    ? o.fillDomain.filter((f) => scaled.some((d) => d.fill === f))
    : unique(scaled.map((d) => d.fill));
  const xs = o.xDomain ?? unique(scaled.map((d) => d.x));
  const totals = (o.totals ?? []).map((t) => ({
    x: t.x,
    y: t.y / yu.factor,
    label: `${fmt(t.y / yu.factor)} ${yu.suffix}`.trim(),
  }));
  const marks: unknown[] = [
    Plot.barY(scaled, {
      x: "x",
      y: "y",
      fill: "fill",
      order: fills,
    }),
    Plot.ruleY([0]),
  ];
  if (totals.length > 0) {
    marks.push(
      Plot.tickY(totals, { x: "x", y: "y", strokeWidth: 2, stroke: "black" }),
      Plot.text(totals, {
        x: "x",
        y: "y",
        text: "label",
        dy: -8,
        fontWeight: "bold",
      }),
    );
  }
  return figure({
    title: o.title,
    ...(o.subtitle === undefined ? {} : { subtitle: o.subtitle }),
    ...(o.caption === undefined ? {} : { caption: o.caption }),
    width: o.width ?? 720,
    height: o.height ?? 400,
    marginLeft: 64,
    marginTop: 24,
    marginBottom: 48,
    x: { label: o.xLabel, domain: xs, padding: 0.3 },
    y: {
      label: axisLabel(o.yLabel, yu),
      grid: true,
      labelArrow: "none",
    },
    color: { legend: true, type: "categorical", domain: fills },
    marks,
  });
}

function num(r: Row, field: string, i: number): number {
  const v = Number(getPath(r, field));
  if (!Number.isFinite(v)) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot draw the chart: row ${i} has ${field}=${
        JSON.stringify(getPath(r, field))
      }; expected a number`,
    );
  }
  return v;
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
