/**
 * Figures drawn with Observable Plot outside a browser: linkedom provides
 * the `document`, the result is always one standalone SVG (titles and color
 * legends are drawn into it rather than into HTML around it), and resvg
 * renders PNGs. A {@linkcode Figure} displays inline in the Deno Jupyter
 * kernel.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { IopfLabError } from "../sim/errors.ts";

const SVG_NS = "http://www.w3.org/2000/svg";

/** The symbol the Deno Jupyter kernel calls to display an object. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for(
  "Jupyter.display",
) as never;

/**
 * Options of {@linkcode figure}: Observable Plot's plot options
 * (https://observablehq.com/plot/features/plots), typed loosely here so
 * that this API does not expose Plot's types. `title`, `subtitle`,
 * `caption` and `color.legend` are drawn into the SVG.
 */
export interface FigureOptions {
  /** The marks to draw (`Plot.lineY(...)`, `Plot.dot(...)`, ...). */
  readonly marks?: readonly unknown[];
  /** Title above the chart. */
  readonly title?: string;
  /** Subtitle under the title. */
  readonly subtitle?: string;
  /** Caption under the chart. */
  readonly caption?: string;
  /** Width in pixels. [640] */
  readonly width?: number;
  /** Height in pixels (of the plot, without title and legend). [Plot's default] */
  readonly height?: number;
  /** Options of the color scale; `legend: true` draws a color legend. */
  readonly color?: {
    /** Draw a legend (swatches, or a ramp for continuous scales). */
    readonly legend?: boolean;
    /** Legend title. */
    readonly label?: string;
    /** Any other option of Plot's color scale. */
    readonly [option: string]: unknown;
  };
  /**
   * Draw the color legend's swatches as short lines with these styles (per
   * color domain value: a dash pattern, a dot symbol) instead of squares, so
   * the legend shows the marks the lines are drawn with.
   */
  readonly legendLines?: {
    readonly [value: string]: LegendLine;
  };
  /** Any other Plot option (`x`, `y`, `fx`, margins, ...). */
  readonly [option: string]: unknown;
}

/** The dot symbols a legend swatch can show (Plot's symbol names). */
export type LegendSymbol =
  | "circle"
  | "square"
  | "triangle"
  | "diamond2"
  | "star"
  | "wye";

/** How one series is drawn, for its legend swatch. */
export interface LegendLine {
  /** SVG stroke-dasharray of the line ("6,4"); solid when absent. */
  readonly dash?: string;
  /** The symbol of its dots; none when absent. */
  readonly symbol?: LegendSymbol;
}

/** Options of {@linkcode Figure.toPng}. */
export interface PngOptions {
  /** Pixels per SVG unit. [2] */
  readonly scale?: number;
  /** Background color; transparent PNGs look black in some viewers. ["white"] */
  readonly background?: string;
}

/** The fonts bundled under data/fonts/ (DejaVu Sans 2.37; licence in data/fonts/LICENSE-DejaVu.txt). */
export const BUNDLED_FONTS: readonly URL[] = [
  new URL("../../data/fonts/DejaVuSans.ttf", import.meta.url),
  new URL("../../data/fonts/DejaVuSans-Bold.ttf", import.meta.url),
];

/**
 * Font settings for resvg: only the bundled DejaVu Sans (regular and bold),
 * standing in for Plot's `system-ui, sans-serif`; system fonts are not
 * loaded, so a PNG has the same text on every machine, with or without
 * fonts installed.
 */
export const PNG_FONT = {
  loadSystemFonts: false,
  defaultFontFamily: "DejaVu Sans",
  sansSerifFamily: "DejaVu Sans",
} as const;

let fontFiles: Promise<string[]> | undefined;

/**
 * Local paths of {@linkcode BUNDLED_FONTS} for resvg, which reads fonts from
 * files: the files themselves in a checkout, copies in a temporary
 * directory when the package was imported from a remote URL.
 */
export function bundledFontFiles(): Promise<string[]> {
  fontFiles ??= (async () => {
    if (BUNDLED_FONTS.every((u) => u.protocol === "file:")) {
      return BUNDLED_FONTS.map((u) => decodeURIComponent(u.pathname));
    }
    const dir = await Deno.makeTempDir({ prefix: "iopf-lab-fonts-" });
    const out: string[] = [];
    for (const u of BUNDLED_FONTS) {
      const res = await fetch(u);
      if (!res.ok) {
        throw new IopfLabError(
          "EIO",
          `Cannot load the bundled font ${u.href}: HTTP ${res.status}`,
        );
      }
      const path = `${dir}/${u.pathname.split("/").pop()}`;
      await Deno.writeFile(path, new Uint8Array(await res.arrayBuffer()));
      out.push(path);
    }
    return out;
  })();
  return fontFiles;
}

/**
 * What the Deno Jupyter kernel shows for a figure: the SVG, a PNG of it,
 * and an HTML `<img>` carrying the SVG as a data URI. Each front end picks
 * the richest part it renders: HTML export with nbconvert 6.5 (which
 * empties inline SVG, jupyter/nbconvert#1849) and later takes the HTML
 * `<img>`, JupyterLab the HTML when trusted and the PNG when not (its
 * sanitizer drops `<svg>` but keeps `<img>`), VS Code the SVG or HTML.
 */
export interface DisplayBundle {
  /** `<img src="data:image/svg+xml;base64,...">` with the figure's size and title as alt text. */
  readonly "text/html": string;
  /** The SVG text. */
  readonly "image/svg+xml": string;
  /** The PNG rendering (scale 2), base64. */
  readonly "image/png": string;
  /** A one-line description. */
  readonly "text/plain": string;
}

/** A standalone SVG figure: write it as SVG or PNG, or show it in Jupyter. */
export class Figure {
  /** The SVG document text (with the SVG namespace). */
  readonly svg: string;
  /** Width in SVG units (pixels). */
  readonly width: number;
  /** Height in SVG units (pixels). */
  readonly height: number;

  /** A figure from SVG text and its size. */
  constructor(
    svg: string,
    size: { readonly width: number; readonly height: number },
  ) {
    this.svg = svg;
    this.width = size.width;
    this.height = size.height;
  }

  /** The SVG text. */
  toString(): string {
    return this.svg;
  }

  /** The MIME bundle the Deno Jupyter kernel shows inline (see {@linkcode DisplayBundle}). */
  [JUPYTER_DISPLAY](): Promise<DisplayBundle> {
    return this.toDisplayBundle();
  }

  /** The figure's title (the first text of the SVG's header), if it has one. */
  get title(): string | undefined {
    const m = /^<svg[^>]*><text([^>]*)>([^<]*)<\/text>/.exec(this.svg);
    const isTitle = m?.[1]?.includes('font-weight="bold"') &&
      m[1].includes('font-size="15"');
    return isTitle && m?.[2] !== undefined ? unescapeXml(m[2]) : undefined;
  }

  /**
   * The MIME bundle for Jupyter: SVG, PNG (rendered with the bundled font)
   * and an HTML `<img>` of the SVG, so the figure survives every export
   * path (see {@linkcode DisplayBundle}).
   */
  async toDisplayBundle(): Promise<DisplayBundle> {
    const png = encodeBase64(await this.toPng({ scale: 2 }));
    const svg64 = encodeBase64(new TextEncoder().encode(this.svg));
    const title = this.title;
    const alt = escapeAttr(title ?? "figure");
    return {
      "text/html":
        `<img src="data:image/svg+xml;base64,${svg64}" width="${this.width}" height="${this.height}" alt="${alt}">`,
      "image/svg+xml": this.svg,
      "image/png": png,
      "text/plain": `Figure${
        title ? `: ${title}` : ""
      } (${this.width}x${this.height})`,
    };
  }

  /** Writes the SVG to `path`. */
  async writeSvg(path: string | URL): Promise<void> {
    await Deno.writeTextFile(path, this.svg + "\n");
  }

  /**
   * Renders the figure as PNG with resvg (needs `--allow-ffi --allow-sys`
   * for the native renderer). The image is `scale` times the SVG size.
   */
  async toPng(options: PngOptions = {}): Promise<Uint8Array> {
    const scale = options.scale ?? 2;
    if (!(scale > 0 && scale <= 16)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot render PNG: scale must be in (0, 16], got ${scale}`,
      );
    }
    const { Resvg } = await import("@resvg/resvg-js");
    const resvg = new Resvg(this.svg, {
      fitTo: { mode: "zoom", value: scale },
      background: options.background ?? "white",
      font: { ...PNG_FONT, fontFiles: await bundledFontFiles() },
    });
    return new Uint8Array(resvg.render().asPng());
  }

  /** Writes the PNG rendering to `path`. */
  async writePng(path: string | URL, options: PngOptions = {}): Promise<void> {
    await Deno.writeFile(path, await this.toPng(options));
  }
}

// ---------------------------------------------------------------------------
// Building figures with Plot

interface DomNode {
  nodeType: number;
  localName?: string;
  data?: string;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
  attributes?: ArrayLike<{ name: string; value: string }>;
}

interface DomElement extends DomNode {
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  appendChild(child: unknown): unknown;
  firstChild: unknown;
  querySelector(selector: string): DomElement | null;
  scale?(name: string): Plot.ScaleOptions | undefined;
}

interface DomDocument {
  createElementNS(ns: string, name: string): DomElement;
  createTextNode(text: string): unknown;
}

/** A fresh linkedom document for Plot to draw into. */
function newDocument(): DomDocument {
  return parseHTML("<!doctype html><html><body></body></html>")
    .document as unknown as DomDocument;
}

/**
 * Draws a figure with Observable Plot (`Plot.plot(options)`), as one SVG.
 * `title`, `subtitle`, `caption` and a color legend (`color: { legend:
 * true }`) are drawn inside the SVG. Other legends are not supported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as Plot from "@observablehq/plot";
 * import { figure } from "./figure.ts";
 * const fig = figure({ marks: [Plot.lineY([1, 3, 2])], title: "A line" });
 * assert(fig.svg.startsWith("<svg") && fig.svg.includes("A line"));
 * ```
 */
export function figure(options: FigureOptions): Figure {
  const { title, subtitle, caption, legendLines, ...rest } =
    options as unknown as Plot.PlotOptions & {
      legendLines?: FigureOptions["legendLines"];
    };
  for (const name of ["symbol", "opacity", "r"] as const) {
    const scale = rest[name] as { legend?: unknown } | undefined;
    if (scale?.legend) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot draw figure: only color legends are supported, not ${name}.legend`,
      );
    }
  }
  const colorLegend = Boolean(rest.color?.legend);
  const document = newDocument();
  const drawn = Plot.plot({
    ...rest,
    ...(rest.color ? { color: { ...rest.color, legend: false } } : {}),
    document: document as unknown as Document,
  }) as unknown as DomElement;
  const plot = drawn.localName === "svg" ? drawn : drawn.querySelector("svg");
  if (plot === null) {
    throw new IopfLabError(
      "EINVAL",
      "Cannot draw figure: Plot returned no SVG",
    );
  }
  const width = Number(plot.getAttribute("width"));
  const plotHeight = Number(plot.getAttribute("height"));
  const header: HeaderItem[] = [];
  if (title !== undefined && title !== null) {
    header.push({ kind: "title", text: String(title) });
  }
  if (subtitle !== undefined && subtitle !== null) {
    header.push({ kind: "subtitle", text: String(subtitle) });
  }
  const described = colorLegend ? drawn.scale?.("color") : undefined;
  const label = rest.color?.label;
  // Plot's scale description has no label: take it from the options.
  const legendScale = described && label !== undefined && label !== null
    ? { ...described, label: String(label) }
    : described;
  if (
    header.length === 0 && legendScale === undefined &&
    (caption === undefined || caption === null)
  ) {
    plot.setAttribute("xmlns", SVG_NS);
    return new Figure(serialize(plot), { width, height: plotHeight });
  }
  return compose(document, plot, {
    width,
    plotHeight,
    header,
    legend: legendScale,
    legendLines,
    caption: caption === undefined || caption === null
      ? undefined
      : String(caption),
  });
}

interface HeaderItem {
  kind: "title" | "subtitle";
  text: string;
}

interface ComposeParts {
  width: number;
  plotHeight: number;
  header: HeaderItem[];
  legend: Plot.ScaleOptions | undefined;
  legendLines: FigureOptions["legendLines"];
  caption: string | undefined;
}

/** Font size of legend text, as Plot's (10px). */
const FONT = 10;
/** Approximate advance of one character at 10px (Plot's own estimate is similar). */
const CHAR = 0.6 * FONT;

/** Builds one SVG: header lines, legend, the plot's contents, caption. */
function compose(
  document: DomDocument,
  plot: DomElement,
  parts: ComposeParts,
): Figure {
  const el = (
    name: string,
    attrs: Record<string, string | number>,
    text?: string,
  ): DomElement => {
    const e = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.appendChild(document.createTextNode(text));
    return e;
  };
  const { width } = parts;
  const root = el("svg", { xmlns: SVG_NS });
  // Keep Plot's root attributes (class, fonts, fill) so its styles still apply.
  for (const a of Array.from(plot.attributes ?? [])) {
    if (!["width", "height", "viewBox", "xmlns"].includes(a.name)) {
      root.setAttribute(a.name, a.value);
    }
  }
  let y = 0;
  for (const item of parts.header) {
    const size = item.kind === "title" ? 15 : 12;
    y += size + 6;
    root.appendChild(el("text", {
      x: 0,
      y,
      "text-anchor": "start",
      "font-size": size,
      ...(item.kind === "title"
        ? { "font-weight": "bold" }
        : { "fill-opacity": 0.8 }),
    }, item.text));
  }
  if (parts.legend) {
    y += 8;
    const g = el("g", {
      transform: `translate(0,${y})`,
      "text-anchor": "start",
      "font-size": FONT,
      "aria-label": "color legend",
    });
    y += drawLegend(el, g, parts.legend, width, parts.legendLines);
    root.appendChild(g);
  }
  if (y > 0) y += 4;
  const body = el("g", { transform: `translate(0,${y})` });
  while (plot.firstChild) body.appendChild(plot.firstChild);
  root.appendChild(body);
  y += parts.plotHeight;
  if (parts.caption !== undefined) {
    y += 3;
    for (const line of wrapText(parts.caption, width)) {
      y += FONT + 3;
      root.appendChild(
        el("text", {
          x: 0,
          y,
          "text-anchor": "start",
          "font-size": FONT,
          "fill-opacity": 0.8,
        }, line),
      );
    }
    y += 4;
  }
  const height = Math.ceil(y);
  root.setAttribute("width", String(width));
  root.setAttribute("height", String(height));
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  return new Figure(serialize(root), { width, height });
}

/** Text in lines that fit `width` pixels at the legend's font size (words kept whole). */
function wrapText(text: string, width: number): string[] {
  const max = Math.max(20, Math.floor(width / CHAR));
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

const ORDINAL = new Set([
  "ordinal",
  "categorical",
  "threshold",
  "quantile",
  "quantize",
]);

/** Draws a color legend into `g`; returns its height. */
function drawLegend(
  el: (
    name: string,
    attrs: Record<string, string | number>,
    text?: string,
  ) => DomElement,
  g: DomElement,
  scale: Plot.ScaleOptions,
  width: number,
  lines?: FigureOptions["legendLines"],
): number {
  const color = (scale as { apply?: (v: unknown) => string }).apply
    ? (scale as { apply: (v: unknown) => string })
    : (Plot.scale({ color: scale }) as { apply(v: unknown): string });
  const domain = (scale.domain ?? []) as unknown[];
  if (ORDINAL.has(String(scale.type))) {
    const swatch = 15;
    const rowHeight = swatch + 5;
    let x = 0;
    let row = 0;
    if (scale.label) {
      g.appendChild(
        el("text", { x: 0, y: 11, "font-weight": "bold" }, String(scale.label)),
      );
      x = String(scale.label).length * CHAR + 12;
    }
    for (const value of domain) {
      const text = String(value);
      const style = lines?.[text];
      const sw = style === undefined ? swatch : 28;
      const w = sw + 6 + text.length * CHAR + 14;
      if (x > 0 && x + w > width) {
        x = 0;
        row++;
      }
      const top = row * rowHeight;
      if (style === undefined) {
        g.appendChild(
          el("rect", {
            x,
            y: top,
            width: swatch,
            height: swatch,
            fill: color.apply(value),
          }),
        );
      } else {
        drawLineSwatch(el, g, { x, y: top + swatch / 2, width: sw }, {
          color: color.apply(value),
          ...style,
        });
      }
      g.appendChild(el("text", { x: x + sw + 6, y: top + 11 }, text));
      x += w;
    }
    return (row + 1) * rowHeight;
  }
  // A continuous ramp: gradient bar with the domain's ends.
  const lo = Number(domain[0]);
  const hi = Number(domain[domain.length - 1]);
  const log = scale.type === "log";
  const id = `plot-legend-ramp-${rampId++}`;
  const gradient = el("linearGradient", { id });
  const steps = 16;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const v = log ? lo * (hi / lo) ** t : lo + (hi - lo) * t;
    gradient.appendChild(
      el("stop", {
        offset: `${(t * 100).toFixed(2)}%`,
        "stop-color": color.apply(v),
      }),
    );
  }
  const defs = el("defs", {});
  defs.appendChild(gradient);
  g.appendChild(defs);
  const top = scale.label ? 14 : 0;
  if (scale.label) {
    g.appendChild(
      el("text", { x: 0, y: 10, "font-weight": "bold" }, String(scale.label)),
    );
  }
  const barWidth = Math.min(240, width);
  g.appendChild(
    el("rect", {
      x: 0,
      y: top,
      width: barWidth,
      height: 10,
      fill: `url(#${id})`,
    }),
  );
  g.appendChild(el("text", { x: 0, y: top + 22 }, formatTick(lo)));
  g.appendChild(
    el(
      "text",
      { x: barWidth, y: top + 22, "text-anchor": "end" },
      formatTick(hi),
    ),
  );
  return top + 26;
}

let rampId = 0;

/** A legend swatch for a line series: a short line, dashed if it is, with its dot symbol. */
function drawLineSwatch(
  el: (
    name: string,
    attrs: Record<string, string | number>,
    text?: string,
  ) => DomElement,
  g: DomElement,
  at: { x: number; y: number; width: number },
  style: LegendLine & { color: string },
): void {
  g.appendChild(el("line", {
    x1: at.x,
    y1: at.y,
    x2: at.x + at.width,
    y2: at.y,
    stroke: style.color,
    "stroke-width": 2,
    ...(style.dash === undefined ? {} : { "stroke-dasharray": style.dash }),
  }));
  if (style.symbol === undefined) return;
  const cx = at.x + at.width / 2;
  const cy = at.y;
  const r = 4;
  const paint = { fill: style.color, stroke: style.color };
  const polygon = (pts: [number, number][]) =>
    el("path", {
      d: `M${
        pts.map(([px, py]) => `${fix(cx + px)},${fix(cy + py)}`).join("L")
      }Z`,
      ...paint,
      "aria-label": `${style.symbol} symbol`,
    });
  switch (style.symbol) {
    case "circle":
      g.appendChild(
        el("circle", { cx, cy, r, ...paint, "aria-label": "circle symbol" }),
      );
      return;
    case "square":
      g.appendChild(polygon([[-r, -r], [r, -r], [r, r], [-r, r]]));
      return;
    case "triangle":
      g.appendChild(polygon([[0, -r * 1.2], [r * 1.1, r * 0.7], [
        -r * 1.1,
        r * 0.7,
      ]]));
      return;
    case "diamond2":
      g.appendChild(polygon([[0, -r * 1.3], [r * 1.3, 0], [0, r * 1.3], [
        -r * 1.3,
        0,
      ]]));
      return;
    case "star": {
      const pts: [number, number][] = [];
      for (let k = 0; k < 10; k++) {
        const a = -Math.PI / 2 + (k * Math.PI) / 5;
        const rr = k % 2 === 0 ? r * 1.4 : r * 0.6;
        pts.push([rr * Math.cos(a), rr * Math.sin(a)]);
      }
      g.appendChild(polygon(pts));
      return;
    }
    case "wye": {
      const arm = (a: number): [number, number][] => {
        const c = Math.cos(a);
        const s = Math.sin(a);
        const w = r * 0.35;
        const l = r * 1.3;
        return [[-s * w, c * w], [c * l - s * w, s * l + c * w], [
          c * l + s * w,
          s * l - c * w,
        ], [s * w, -c * w]];
      };
      const pts = [
        ...arm(-Math.PI / 2),
        ...arm(Math.PI / 6),
        ...arm((5 * Math.PI) / 6),
      ];
      g.appendChild(polygon(pts));
      return;
    }
  }
}

function fix(v: number): string {
  return String(Number(v.toFixed(2)));
}

function formatTick(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) {
    return v.toExponential(2);
  }
  return String(Number(v.toPrecision(4)));
}

// ---------------------------------------------------------------------------
// XML serialisation (linkedom's outerHTML does not escape attributes for XML)

/** Serialises an SVG element as XML text. */
function serialize(node: DomNode): string {
  if (node.nodeType === 3) return escapeText(node.data ?? "");
  if (node.nodeType !== 1) return "";
  const name = node.localName!;
  let out = `<${name}`;
  for (const a of Array.from(node.attributes ?? [])) {
    out += ` ${a.name}="${escapeAttr(a.value)}"`;
  }
  const children = Array.from(node.childNodes);
  if (children.length === 0) return out + "/>";
  out += ">";
  for (const child of children) out += serialize(child);
  return out + `</${name}>`;
}

function unescapeXml(s: string): string {
  return s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll(
    "&quot;",
    '"',
  ).replaceAll("&amp;", "&");
}

/** Base64 of bytes (chunked, so large PNGs do not overflow the call stack). */
function encodeBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function escapeText(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}

function escapeAttr(s: string): string {
  return escapeText(s).replaceAll('"', "&quot;").replaceAll("\n", "&#10;");
}
