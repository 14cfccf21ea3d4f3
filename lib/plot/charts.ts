/**
 * The common charts of the report: lines over simulated time, grouped bars,
 * and scatter plots on log axes. Each takes tidy rows (metrics, flattened
 * metrics or series rows) and field names, scales values into a readable
 * unit (ns -> ms, bytes -> GiB, bytes/s -> GB/s) and returns a
 * {@linkcode Figure}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineChart } from "./charts.ts";
 * const rows = [0, 1e6, 2e6].map((tNs, i) => ({ name: "iopf", tNs, faults: i * 10 }));
 * const fig = lineChart(rows, { y: "faults", title: "Faults over time" });
 * assert(fig.svg.includes("time (ms)"));
 * ```
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { IopfLabError } from "../sim/errors.ts";
import { fieldUnit } from "../sim/field_units.ts";
import { getPath, type Row } from "./row.ts";
import { axisLabel, maxAbs, unique } from "./_scale.ts";
import {
  type Figure,
  figure as plotFigure,
  type FigureOptions,
} from "./figure.ts";

/** Draws typed Plot options. */
function figure(options: Plot.PlotOptions): Figure {
  return plotFigure(options as unknown as FigureOptions);
}

/** The unit of a field's values, used to pick an axis unit. */
export type Unit = "ns" | "bytes" | "bytes/s" | "pages" | "count";

/**
 * The axis unit of a field from its name, by the one field-unit table
 * (lib/sim/field_units.ts, as tables and the CLI use it): `...Ns` is ns,
 * `...BytesPerSec` bytes/s, `...Bytes...` and scenario sizes
 * (`vm.memory`, `workload.blockSize`) bytes, `...Pages...` pages, anything
 * else (addresses and seeds too) a count.
 */
export function unitOf(field: string): Unit {
  const unit = fieldUnit(field);
  return unit === "address" || unit === "id" ? "count" : unit;
}

/** A display unit: divide values by `factor` and name them `suffix`. */
export interface DisplayUnit {
  /** What one displayed unit is worth in the field's unit. */
  readonly factor: number;
  /** The unit's name ("ms", "GiB"), empty for plain counts. */
  readonly suffix: string;
}

/** The display unit that suits values up to `max` (absolute) of `unit`. */
export function displayUnit(unit: Unit, max: number): DisplayUnit {
  const pick = (steps: readonly [number, string][]): DisplayUnit => {
    let best = steps[0]!;
    for (const step of steps) if (max >= step[0]) best = step;
    return { factor: best[0], suffix: best[1] };
  };
  switch (unit) {
    case "ns":
      return pick([[1, "ns"], [1e3, "us"], [1e6, "ms"], [1e9, "s"]]);
    case "bytes":
      return pick([[1, "B"], [2 ** 10, "KiB"], [2 ** 20, "MiB"], [
        2 ** 30,
        "GiB",
      ], [2 ** 40, "TiB"]]);
    case "bytes/s":
      return pick([[1, "B/s"], [1e3, "kB/s"], [1e6, "MB/s"], [1e9, "GB/s"]]);
    case "pages":
      return { factor: 1, suffix: "4 KiB pages" };
    case "count":
      return { factor: 1, suffix: "" };
  }
}

/** Options shared by every chart. */
export interface ChartOptions {
  /** Title drawn above the chart. */
  readonly title?: string;
  /** Subtitle under the title. */
  readonly subtitle?: string;
  /** Caption under the chart. */
  readonly caption?: string;
  /** Width in pixels. [640] */
  readonly width?: number;
  /** Height of the plot area and axes in pixels. [360] */
  readonly height?: number;
  /** Label of the x axis (the unit is appended). [the field name] */
  readonly xLabel?: string;
  /** Label of the y axis (the unit is appended). [the field name] */
  readonly yLabel?: string;
  /** Unit of the x values. [from the field name, see {@linkcode unitOf}] */
  readonly xUnit?: Unit;
  /** Unit of the y values. [from the field name] */
  readonly yUnit?: Unit;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions extends ChartOptions {
  /** Field of the x values. ["tNs"] */
  readonly x?: string;
  /** Field of the y values. */
  readonly y: string;
  /** Field naming the series (one line and color each); null for one line. ["name"] */
  readonly series?: string | null;
  /** Logarithmic y axis. [false] */
  readonly logY?: boolean;
  /** Draw steps (values hold until the next sample) instead of straight segments. [false] */
  readonly step?: boolean;
}

/**
 * A line chart, by default of series rows over simulated time: one line per
 * `series` value, with a color legend when there are several.
 */
export function lineChart(
  rows: readonly Row[],
  options: LineChartOptions,
): Figure {
  const x = options.x ?? "tNs";
  const series = options.series === undefined ? "name" : options.series;
  const xUnit = options.xUnit ?? (x === "tNs" ? "ns" : unitOf(x));
  const yUnit = options.yUnit ?? unitOf(options.y);
  const data = tidy(rows, { x, y: options.y, series, where: "lineChart" });
  const xu = displayUnit(xUnit, maxAbs(data, "x"));
  const yu = displayUnit(yUnit, maxAbs(data, "y"));
  const scaled = data.map((d) => ({
    ...d,
    x: d.x / xu.factor,
    y: d.y / yu.factor,
  }));
  const seriesNames = unique(scaled.map((d) => d.series));
  const many = seriesNames.length > 1;
  const log = options.logY ?? false;
  const points = log ? scaled.filter((d) => d.y > 0) : scaled;
  return figure({
    ...common(options),
    marginLeft: marginFor(points, log),
    x: {
      label: axisLabel(options.xLabel ?? (x === "tNs" ? "time" : x), xu),
      grid: true,
    },
    y: {
      label: axisLabel(options.yLabel ?? options.y, yu),
      grid: true,
      ...logAxis(log),
    },
    color: { legend: many, type: "categorical", domain: seriesNames },
    marks: [
      ...(log ? [] : [Plot.ruleY([0])]),
      Plot.line(points, {
        x: "x",
        y: "y",
        z: "series",
        stroke: many ? "series" : "currentColor",
        ...(options.step ? { curve: "step-after" } : {}),
        sort: "x",
      }),
    ],
  });
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions extends ChartOptions {
  /** Field naming the category of each bar (a group of bars with `group`). */
  readonly x: string;
  /** Field of the bar heights. */
  readonly y: string;
  /** Field naming the bar within a category: bars side by side, colored by it. */
  readonly group?: string;
  /** Logarithmic y axis. [false] */
  readonly logY?: boolean;
}

/**
 * A bar chart: one bar per category, or with `group` grouped bars (one
 * group per `x` value, one colored bar per `group` value, with a legend).
 */
export function barChart(
  rows: readonly Row[],
  options: BarChartOptions,
): Figure {
  const yUnit = options.yUnit ?? unitOf(options.y);
  const data = tidy(rows, {
    x: options.x,
    y: options.y,
    series: options.group ?? null,
    where: "barChart",
    textX: true,
  });
  const yu = displayUnit(yUnit, maxAbs(data, "y"));
  const scaled = data.map((d) => ({ ...d, y: d.y / yu.factor }));
  const log = options.logY ?? false;
  const yOptions = {
    label: axisLabel(options.yLabel ?? options.y, yu),
    grid: true,
    ...logAxis(log),
  };
  const categories = unique(scaled.map((d) => d.xText));
  // On a log axis a bar cannot start at 0: it starts at the power of ten
  // below the smallest positive value, and non-positive values are left out.
  const positive = scaled.filter((d) => d.y > 0);
  const base = log && positive.length > 0
    ? 10 ** Math.floor(Math.log10(Math.min(...positive.map((d) => d.y))))
    : 0;
  const bars = log ? positive.map((d) => ({ ...d, y0: base })) : scaled;
  const yChannels = log ? { y1: "y0", y2: "y" } : { y: "y" };
  if (options.group === undefined) {
    return figure({
      ...common(options),
      marginLeft: marginFor(scaled, log),
      x: { label: options.xLabel ?? options.x, domain: categories },
      y: yOptions,
      marks: [
        Plot.barY(bars, { x: "xText", ...yChannels, fill: "steelblue" }),
        ...(log ? [] : [Plot.ruleY([0])]),
      ],
    });
  }
  const groups = unique(scaled.map((d) => d.series));
  return figure({
    ...common(options),
    marginLeft: marginFor(scaled, log),
    marginBottom: 40,
    fx: {
      label: options.xLabel ?? options.x,
      domain: categories,
      padding: 0.15,
    },
    x: { axis: null, domain: groups, padding: 0.05 },
    y: yOptions,
    color: { legend: true, type: "categorical", domain: groups },
    marks: [
      Plot.barY(bars, {
        fx: "xText",
        x: "series",
        ...yChannels,
        fill: "series",
      }),
      ...(log ? [] : [Plot.ruleY([0])]),
    ],
  });
}

/** Options of {@linkcode scatterChart}. */
export interface ScatterChartOptions extends ChartOptions {
  /** Field of the x values. */
  readonly x: string;
  /** Field of the y values. */
  readonly y: string;
  /** Field naming the series (color); null for one color. [null] */
  readonly series?: string | null;
  /** Logarithmic x axis (non-positive values are left out). [true] */
  readonly logX?: boolean;
  /** Logarithmic y axis (non-positive values are left out). [true] */
  readonly logY?: boolean;
  /** Join each series' points in x order. [false] */
  readonly connect?: boolean;
}

/** A scatter plot, on log axes unless told otherwise. */
export function scatterChart(
  rows: readonly Row[],
  options: ScatterChartOptions,
): Figure {
  const series = options.series ?? null;
  const logX = options.logX ?? true;
  const logY = options.logY ?? true;
  const data = tidy(rows, {
    x: options.x,
    y: options.y,
    series,
    where: "scatterChart",
  })
    .filter((d) => (!logX || d.x > 0) && (!logY || d.y > 0));
  const xu = displayUnit(options.xUnit ?? unitOf(options.x), maxAbs(data, "x"));
  const yu = displayUnit(options.yUnit ?? unitOf(options.y), maxAbs(data, "y"));
  const scaled = data.map((d) => ({
    ...d,
    x: d.x / xu.factor,
    y: d.y / yu.factor,
  }));
  const seriesNames = unique(scaled.map((d) => d.series));
  const many = series !== null && seriesNames.length > 1;
  const color = many ? "series" : "currentColor";
  return figure({
    ...common(options),
    marginLeft: marginFor(scaled, logY),
    x: {
      label: axisLabel(options.xLabel ?? options.x, xu),
      grid: true,
      ...logAxis(logX),
    },
    y: {
      label: axisLabel(options.yLabel ?? options.y, yu),
      grid: true,
      ...logAxis(logY),
    },
    color: { legend: many, type: "categorical", domain: seriesNames },
    marks: [
      ...(options.connect
        ? [
          Plot.line(scaled, {
            x: "x",
            y: "y",
            z: "series",
            stroke: color,
            sort: "x",
          }),
        ]
        : []),
      Plot.dot(scaled, { x: "x", y: "y", stroke: color, fill: color, r: 3 }),
    ],
  });
}

// ---------------------------------------------------------------------------

interface Datum {
  x: number;
  xText: string;
  y: number;
  series: string;
}

function tidy(
  rows: readonly Row[],
  o: {
    x: string;
    y: string;
    series: string | null;
    where: string;
    textX?: boolean;
  },
): Datum[] {
  const out: Datum[] = [];
  rows.forEach((row, i) => {
    const rawX = getPath(row, o.x);
    const rawY = getPath(row, o.y);
    if (rawY === undefined || rawY === null || rawY === "") return; // missing cell
    const y = Number(rawY);
    const x = Number(rawX);
    if (!Number.isFinite(y) || (!o.textX && !Number.isFinite(x))) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot draw ${o.where}: row ${i} has ${o.x}=${
          JSON.stringify(rawX)
        }, ${o.y}=${JSON.stringify(rawY)}; expected numbers`,
      );
    }
    out.push({
      x,
      xText: String(rawX),
      y,
      series: o.series === null ? "" : String(getPath(row, o.series)),
    });
  });
  return out;
}

/** Log axes label ticks as plain numbers ("0.1", "1,000"), not SI prefixes ("100m"). */
function logAxis(
  log: boolean,
): { type: "log"; tickFormat: string } | Record<never, never> {
  return log ? { type: "log", tickFormat: ",~g" } : {};
}

/** A left margin wide enough for the y tick labels (Plot's default is 40). */
function marginFor(data: readonly Datum[], log: boolean): number {
  const max = maxAbs(data, "y");
  const digits = log
    ? String(Math.round(max)).length
    : Math.round(max).toLocaleString("en-US").length;
  const decimals = max < 10 ? 2 : 0;
  return Math.max(40, 14 + 6 * (digits + decimals));
}

function common(o: ChartOptions): Plot.PlotOptions {
  return {
    width: o.width ?? 640,
    height: o.height ?? 360,
    ...(o.title === undefined ? {} : { title: o.title }),
    ...(o.subtitle === undefined ? {} : { subtitle: o.subtitle }),
    ...(o.caption === undefined ? {} : { caption: o.caption }),
  };
}
