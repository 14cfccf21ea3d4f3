/**
 * Figures: Observable Plot drawn outside the browser into one standalone
 * SVG (linkedom for the DOM), PNG through resvg, inline display in the
 * Deno Jupyter kernel, and the report's common charts (lines over time,
 * grouped bars, log-log scatter).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as Plot from "@observablehq/plot";
 * import { barChart, figure } from "./mod.ts";
 * const fig = barChart(
 *   [{ mode: "static-pin", setupNs: 2.9e9 }, { mode: "iopf", setupNs: 4e6 }],
 *   { x: "mode", y: "setupNs", title: "VM start" },
 * );
 * assert(fig.svg.includes("setupNs (s)"));
 * const custom = figure({ marks: [Plot.dot([[1, 2], [2, 3]])] });
 * assert(custom.width === 640);
 * ```
 *
 * @module
 */
export {
  BUNDLED_FONTS,
  bundledFontFiles,
  type DisplayBundle,
  Figure,
  figure,
  type FigureOptions,
  JUPYTER_DISPLAY,
  type LegendLine,
  type LegendSymbol,
  PNG_FONT,
  type PngOptions,
} from "./figure.ts";
export {
  barChart,
  type BarChartOptions,
  type ChartOptions,
  type DisplayUnit,
  displayUnit,
  lineChart,
  type LineChartOptions,
  scatterChart,
  type ScatterChartOptions,
  type Unit,
  unitOf,
} from "./charts.ts";
export {
  type AxisFormat,
  COINCIDE_SHARE,
  facetLines,
  type FacetLinesOptions,
  type FacetPoint,
  LAYER_RADIUS,
  LAYER_WIDTH,
  MAX_LAYERS,
  type ScaleType,
  SERIES_SYMBOLS,
  type SeriesStyle,
  seriesStyles,
  stackedBars,
  type StackedBarsOptions,
} from "./facets.ts";
export { getPath, type Row } from "./row.ts";
