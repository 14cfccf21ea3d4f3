/**
 * Reading the marks of a drawn figure back from its SVG: the lines Plot
 * drew (facet, path, stroke, width, dash), the lines another one hides, the
 * x axis tick labels, and the x axis break marks.
 *
 * @module
 */

/** A line as drawn: which facet (its transform), its path and style, in drawing order. */
export interface DrawnLine {
  /** The facet's transform ("translate(1,214)"). */
  readonly facet: string;
  /** The path's d attribute. */
  readonly d: string;
  /** Stroke color. */
  readonly stroke: string;
  /** Stroke width (1.5, Plot's default, when not set). */
  readonly width: number;
  /** Dash pattern, if dashed. */
  readonly dash: string | undefined;
}

/** The text of each mark `label` (`<g ... aria-label="line">` up to the next mark), with its attributes. */
export function markGroups(
  svg: string,
  label: string,
): { attrs: string; body: string }[] {
  const open = new RegExp(`<g ([^>]*aria-label="${label}"[^>]*)>`, "g");
  const out: { attrs: string; body: string }[] = [];
  for (const m of svg.matchAll(open)) {
    const start = m.index! + m[0].length;
    const next = svg.indexOf("aria-label=", start);
    const body = svg.slice(start, next < 0 ? svg.length : next);
    // Faceted marks wrap each facet in an inner <g> with its transform.
    const inner = /^<g ([^>]*)>/.exec(body);
    out.push({ attrs: `${m[1]!} ${inner?.[1] ?? ""}`, body });
  }
  return out;
}

/** Every line mark's paths, in drawing order. */
export function drawnLines(svg: string): DrawnLine[] {
  const out: DrawnLine[] = [];
  for (const { attrs, body } of markGroups(svg, "line")) {
    const facet = /transform="([^"]*)"/.exec(attrs)?.[1] ?? "";
    const width = Number(/stroke-width="([^"]*)"/.exec(attrs)?.[1] ?? 1.5);
    const dash = /stroke-dasharray="([^"]*)"/.exec(attrs)?.[1];
    for (const p of body.matchAll(/<path ([^>]*)\/>/g)) {
      const d = /\bd="([^"]*)"/.exec(p[1]!)?.[1] ?? "";
      const stroke = /stroke="([^"]*)"/.exec(p[1]!)?.[1] ?? "";
      out.push({ facet, d, stroke, width, dash });
    }
  }
  return out;
}

/**
 * Lines drawn exactly over an earlier line of the same facet and not
 * narrower (dashed or not): the earlier one cannot be read. Returns "color under
 * color" descriptions, empty when every line shows.
 */
export function hiddenLines(svg: string): string[] {
  const lines = drawnLines(svg);
  const out: string[] = [];
  lines.forEach((under, i) => {
    for (const over of lines.slice(i + 1)) {
      if (over.facet !== under.facet || over.d !== under.d) continue;
      if (over.stroke === under.stroke) continue;
      // Dash gaps show a little of what is under them, not enough to read.
      if (under.width > over.width + 0.5) continue;
      out.push(`${under.stroke} under ${over.stroke} in ${under.facet}`);
    }
  });
  return out;
}

/** The x axis tick labels and their x positions. */
export function xTickLabels(svg: string): { text: string; x: number }[] {
  const out: { text: string; x: number }[] = [];
  for (const { body } of markGroups(svg, "x-axis tick label")) {
    for (
      const t of body.matchAll(
        /<text transform="translate\(([-0-9.]+),[-0-9.]+\)"[^>]*>([^<]*)<\/text>/g,
      )
    ) {
      out.push({ x: Number(t[1]), text: t[2]! });
    }
  }
  return out;
}

/** How many x axis break marks were drawn. */
export function xBreakMarks(svg: string): number {
  const m = /<g [^>]*aria-description="x axis break"[^>]*>([\s\S]*?)<\/g>/
    .exec(svg);
  return m ? (m[1]!.match(/<line/g) ?? []).length : 0;
}
