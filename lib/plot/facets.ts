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
import { brokenAxis } from "./_breaks.ts";
import { displayUnit, type Unit, unitOf } from "./charts.ts";
import {
  type Figure,
  figure,
  type FigureOptions,
  type LegendSymbol,
} from "./figure.ts";
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
  /**
   * Break the x axis (linear x only): stretches longer than an eighth of the
   * range where no line changes are cut down to a narrow gap marked by a
   * dotted rule, so a series that starts late does not squeeze the others
   * into a sliver; ticks keep their real values. [false]
   */
  readonly xBreaks?: boolean;
  /**
   * With `xBreaks`, series whose changes do not keep a stretch from being
   * cut (a long ramp that would otherwise leave nothing to cut); the
   * caption names them. [none]
   */
  readonly xBreaksIgnore?: readonly string[];
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

/** A point as facetLines draws it (x and y in display units). */
export interface FacetPoint {
  /** x value. */
  x: number;
  /** y value. */
  y: number;
  /** Series. */
  color: string;
  /** Horizontal facet ("" without). */
  fx: string;
  /** Vertical facet ("" without). */
  fy: string;
}

/** Lines over x, one color per series, optionally in facets. */
export function facetLines(
  rows: readonly Row[],
  o: FacetLinesOptions,
): Figure {
  const xScale = o.xType ?? "linear";
  const yScale = o.yType ?? "linear";
  let data: FacetPoint[] = rows.map((r, i) => ({
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
  let scaled = data.map((d) => ({
    ...d,
    x: d.x / xAxis.factor,
    y: d.y / yAxis.factor,
  }));
  if (o.xBreaks && xScale !== "linear") {
    throw new IopfLabError(
      "EINVAL",
      `Cannot draw "${o.title}": xBreaks needs a linear x axis, not ${xScale}`,
    );
  }
  const ignored = new Set(o.xBreaksIgnore ?? []);
  const xsAll = scaled.map((d) => d.x);
  const broken = o.xBreaks
    ? brokenAxis(
      scaled.filter((d) => !ignored.has(d.color)).map((d) => ({
        key: `${d.color}\u0000${d.fx}\u0000${d.fy}`,
        x: d.x,
        y: d.y,
      })),
      { extent: [Math.min(...xsAll), Math.max(...xsAll)] },
    )
    : undefined;
  if (broken !== undefined && broken.cuts.length > 0) {
    scaled = scaled.map((d) => ({ ...d, x: broken.map(d.x) }));
  }
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
  const styles = seriesStyles(scaled, colors, {
    dashed,
    dots: o.dots ?? false,
    transform: (v) =>
      transformed(v, yScale, (o.symlogConstant ?? 1) / yAxis.factor),
    zeroRule: yScale === "linear",
    include: [
      ...(yScale === "linear" ? [0] : []),
      ...(o.rules ?? []).map((r) => r.y / yAxis.factor),
    ],
  });
  // One mark per series and facet, in legend order: where lines coincide,
  // the earlier one is drawn wider underneath (its dots larger), so none
  // hides another.
  const facetOf = (d: FacetPoint) => `${d.fx}\u0000${d.fy}`;
  const facetKeys = unique(scaled.map(facetOf));
  for (const st of styles) {
    for (const f of facetKeys) {
      const points = scaled.filter((d) =>
        d.color === st.series && facetOf(d) === f
      );
      if (points.length === 0) continue;
      const under = st.underIn[f] ?? 0;
      marks.push(
        Plot.line(points, {
          x: "x",
          y: "y",
          z: "color",
          stroke: "color",
          sort: "x",
          strokeWidth: st.strokeWidth + LAYER_WIDTH * under,
          ...(st.dash === undefined ? {} : { strokeDasharray: st.dash }),
          ...(o.step ? { curve: "step-before" } : {}),
          ...facet,
        }),
      );
    }
  }
  if (o.dots) {
    for (const st of styles) {
      for (const f of facetKeys) {
        const points = scaled.filter((d) =>
          d.color === st.series && facetOf(d) === f
        );
        if (points.length === 0) continue;
        marks.push(
          Plot.dot(points, {
            x: "x",
            y: "y",
            stroke: "color",
            fill: "color",
            symbol: st.symbol,
            r: st.r + LAYER_RADIUS * (st.dotsUnderIn[f] ?? 0),
            ...facet,
          }),
        );
      }
    }
  }
  const cuts = broken?.cuts ?? [];
  if (broken !== undefined && cuts.length > 0) {
    marks.push(
      Plot.ruleX(broken.marks, {
        stroke: "gray",
        strokeDasharray: "1,3",
        strokeWidth: 6,
        strokeOpacity: 0.5,
        ariaDescription: "x axis break",
      }),
    );
  }
  const covered = styles.some((st) => st.under > 0);
  const notes = [
    o.caption,
    cuts.length > 0
      ? `Broken time axis: ${
        cuts.map(([a, b]) =>
          `${formatNumber(a)}–${formatNumber(b)}${
            xAxis.suffix.replace(/[()]/g, "")
          }`
        ).join(" and ")
      }, when no line${
        ignored.size > 0 ? ` but ${[...ignored].join(", ")}` : ""
      } changes, are cut down to the dotted bands.`
      : undefined,
    covered
      ? `Where ${
        o.dots ? "lines or dots" : "lines"
      } coincide, the one earlier in the legend is drawn ${
        o.dots ? "larger" : "wider"
      }, underneath.`
      : undefined,
  ];
  const caption = notes.filter((t) => t !== undefined).join(" ");
  const options: FigureOptions = {
    title: o.title,
    ...(o.subtitle === undefined ? {} : { subtitle: o.subtitle }),
    ...(caption === "" ? {} : { caption }),
    width: o.width ?? 720,
    height: o.height ?? 380,
    marginLeft: 70,
    marginRight: o.fy === undefined ? 28 : Math.max(
      120,
      16 +
        6 * Math.max(...unique(scaled.map((d) => d.fy)).map((f) => f.length)),
    ),
    marginBottom: 44,
    x: {
      label: o.xLabel + xAxis.suffix,
      grid: true,
      labelAnchor: "center",
      labelArrow: "none",
      ...(broken !== undefined && cuts.length > 0
        ? {
          ticks: broken.ticks,
          tickFormat: (v: number) => formatNumber(broken.unmap(v)),
        }
        : scaleOptions(xScale, xAxis, o.xTicks, o.symlogConstant, data, "x")),
    },
    y: {
      label: o.yLabel + yAxis.suffix,
      grid: true,
      labelArrow: "none",
      ...scaleOptions(yScale, yAxis, o.yTicks, o.symlogConstant, data, "y"),
    },
    color: { legend: true, type: "categorical", domain: colors },
    legendLines: Object.fromEntries(
      styles.map((st) => [st.series, {
        ...(st.dash === undefined ? {} : { dash: st.dash }),
        ...(o.dots ? { symbol: st.symbol } : {}),
      }]),
    ),
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

/** The dot symbols of the series, in legend order (then repeating). */
export const SERIES_SYMBOLS: readonly LegendSymbol[] = [
  "circle",
  "square",
  "triangle",
  "diamond2",
  "star",
  "wye",
];

/** How {@linkcode facetLines} draws one series. */
export interface SeriesStyle {
  /** The series (color domain value). */
  readonly series: string;
  /** Line width in pixels where nothing lies on it ({@linkcode LAYER_WIDTH} more per layer on top). */
  readonly strokeWidth: number;
  /** Dash pattern, for the series in `dashed`. */
  readonly dash: string | undefined;
  /** Dot symbol. */
  readonly symbol: LegendSymbol;
  /** Dot radius in pixels where nothing lies on it ({@linkcode LAYER_RADIUS} more per layer on top). */
  readonly r: number;
  /** Layers of later series' lines lying on this line, per facet (key: fx, NUL, fy); absent: 0. */
  readonly underIn: Readonly<Record<string, number>>;
  /** Layers of later series' dots lying on this one's dots, per facet; absent: 0. */
  readonly dotsUnderIn: Readonly<Record<string, number>>;
  /** The most layers lying on it in any facet (0: nothing covers it). */
  readonly under: number;
}

/** Extra line width per series lying on a line, in pixels. */
export const LAYER_WIDTH = 2;
/** At most this many layers widen a line (five coinciding series stay readable). */
export const MAX_LAYERS = 3;
/** Extra dot radius per series lying on a line's dots, in pixels. */
export const LAYER_RADIUS = 1.6;

/** Closer than this share of the axis span, two lines are drawn as coinciding. */
export const COINCIDE_SHARE = 0.02;

/**
 * The style of each series: solid (or dashed) lines of width 1.6 (2
 * dashed), a symbol each; in a facet where a later series lies on it (the
 * same x values and y closer than {@linkcode COINCIDE_SHARE} of the axis
 * span on a third or more of the segments, not counting those with both
 * on a zero rule, or at a lone point), it gets
 * {@linkcode LAYER_WIDTH} more width per layer on top (at most
 * {@linkcode MAX_LAYERS}), and where later dots lie on its dots
 * {@linkcode LAYER_RADIUS} larger dots, so it shows as a border round the
 * ones above it.
 */
export function seriesStyles(
  data: readonly FacetPoint[],
  order: readonly string[],
  o: {
    readonly dashed: ReadonlySet<string>;
    readonly dots: boolean;
    readonly transform: (v: number) => number;
    /** Other y values the axis spans (a rule at 0, reference lines). */
    readonly include?: readonly number[];
    /** A rule is drawn at y = 0 (linear axes): lines both at zero lie on it and do not count. [false] */
    readonly zeroRule?: boolean;
  },
): SeriesStyle[] {
  const ty = data.map((d) => o.transform(d.y));
  const ends = [...ty, ...(o.include ?? []).map(o.transform)];
  const span = ends.length > 0 ? Math.max(...ends) - Math.min(...ends) : 0;
  const tol = span * COINCIDE_SHARE;
  // Per series and facet: y by x.
  const byKey = new Map<string, Map<number, number>>();
  data.forEach((d, i) => {
    const key = `${d.color}\u0000${d.fx}\u0000${d.fy}`;
    let m = byKey.get(key);
    if (m === undefined) byKey.set(key, m = new Map());
    m.set(d.x, ty[i]!);
  });
  const facets = unique(data.map((d) => `${d.fx}\u0000${d.fy}`));
  const lies = (upper: string, lower: string, f: string): boolean => {
    const a = byKey.get(`${upper}\u0000${f}`);
    const b = byKey.get(`${lower}\u0000${f}`);
    if (a === undefined || b === undefined) return false;
    const xs = [...a.keys()].filter((x) => b.has(x)).sort((p, q) => p - q);
    const near = xs.map((x) => Math.abs(a.get(x)! - b.get(x)!) <= tol);
    if (xs.length === 1) return near[0]! && a.size === 1;
    // Segments with both at (or within tolerance of) zero lie on the zero
    // rule of a linear axis, where a wider line shows nothing: they do not
    // count. Of the others, a third or more (and
    // two, if there are two) must coincide: lines that cross or touch once
    // do not hide each other.
    const zero = xs.map((x) =>
      o.zeroRule === true && Math.abs(a.get(x)!) <= tol &&
      Math.abs(b.get(x)!) <= tol
    );
    let segments = 0;
    let together = 0;
    for (let k = 0; k + 1 < xs.length; k++) {
      if (zero[k] && zero[k + 1]) continue;
      segments++;
      if (near[k] && near[k + 1]) together++;
    }
    // Sampled at other times, two long series share too few x values to say.
    if (segments < Math.min(3, a.size - 1, b.size - 1)) return false;
    return together >= Math.min(2, segments) && together > 0 &&
      together * 3 >= segments;
  };
  const dotsMeet = (upper: string, lower: string, f: string): boolean => {
    const a = byKey.get(`${upper}\u0000${f}`);
    const b = byKey.get(`${lower}\u0000${f}`);
    if (a === undefined || b === undefined) return false;
    return [...a.keys()].some((x) =>
      b.has(x) && Math.abs(a.get(x)! - b.get(x)!) <= tol
    );
  };
  const layers = (meet: typeof lies) => {
    const under = order.map(() => ({} as Record<string, number>));
    for (const f of facets) {
      for (let i = order.length - 1; i >= 0; i--) {
        for (let j = i + 1; j < order.length; j++) {
          if (meet(order[j]!, order[i]!, f)) {
            under[i]![f] = Math.min(
              MAX_LAYERS,
              Math.max(under[i]![f] ?? 0, (under[j]![f] ?? 0) + 1),
            );
          }
        }
      }
    }
    return under;
  };
  const underIn = layers(lies);
  const dotsUnderIn = o.dots
    ? layers(dotsMeet)
    : order.map(() => ({} as Record<string, number>));
  return order.map((series, i) => {
    const dash = o.dashed.has(series) ? "6,4" : undefined;
    return {
      series,
      strokeWidth: dash ? 2 : 1.6,
      dash,
      symbol: SERIES_SYMBOLS[i % SERIES_SYMBOLS.length]!,
      r: 2.5,
      underIn: underIn[i]!,
      dotsUnderIn: dotsUnderIn[i]!,
      under: Math.max(
        0,
        ...Object.values(underIn[i]!),
        ...Object.values(dotsUnderIn[i]!),
      ),
    };
  });
}

/** A value as the axis places it: log10 on log axes, symlog's transform on symlog. */
function transformed(v: number, scale: ScaleType, constant: number): number {
  if (scale === "log") return Math.log10(v);
  if (scale === "symlog") {
    return Math.sign(v) * Math.log1p(Math.abs(v / constant));
  }
  return v;
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
  data: readonly FacetPoint[],
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
  data: readonly FacetPoint[],
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
