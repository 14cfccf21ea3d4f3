/**
 * A broken x axis for {@linkcode facetLines}: stretches of x where no line
 * changes (every series holds its value) are cut down to a narrow gap, so a
 * series that starts late does not squeeze the others into a sliver of the
 * axis. Positions stay linear inside each kept stretch; ticks are chosen
 * per stretch and labelled with the real values.
 *
 * @module
 */

/** A point of a line: series key (series and facet), x, y. */
export interface BreakPoint {
  /** Series and facet the point belongs to. */
  readonly key: string;
  /** x value. */
  readonly x: number;
  /** y value. */
  readonly y: number;
}

/** Options of {@linkcode brokenAxis}. */
export interface BrokenAxisOptions {
  /** A quiet stretch longer than this share of the x range is cut. [0.12] */
  readonly minShare?: number;
  /** Kept on each side of a cut, as a share of the x range. [0.015] */
  readonly margin?: number;
  /** Width a cut is drawn with, as a share of the x range. [0.03] */
  readonly gap?: number;
  /** Ticks across the whole axis, shared out by width. [8] */
  readonly ticks?: number;
  /** The x range of the axis, when it is wider than the points'. [the points'] */
  readonly extent?: readonly [number, number];
}

/** The broken axis: cuts, the mapping both ways, and ticks. */
export interface BrokenAxis {
  /** The stretches cut, in x units, in order. */
  readonly cuts: readonly (readonly [number, number])[];
  /** x to the position on the broken axis (the identity without cuts). */
  readonly map: (x: number) => number;
  /** A position on the broken axis back to x. */
  readonly unmap: (position: number) => number;
  /** Tick positions on the broken axis (none in a cut). */
  readonly ticks: readonly number[];
  /** Positions of the cuts' middles, where the break marks go. */
  readonly marks: readonly number[];
}

/**
 * The cuts for `points`: the quiet stretches (no series' y changes between
 * two of its samples anywhere in them) longer than `minShare` of the range.
 */
export function brokenAxis(
  points: readonly BreakPoint[],
  options: BrokenAxisOptions = {},
): BrokenAxis {
  const xs = points.map((p) => p.x);
  const lo = Math.min(...xs, ...(options.extent ?? []));
  const hi = Math.max(...xs, ...(options.extent ?? []));
  const range = hi - lo;
  const identity: BrokenAxis = {
    cuts: [],
    map: (x) => x,
    unmap: (x) => x,
    ticks: [],
    marks: [],
  };
  if (!(range > 0)) return identity;
  // Active stretches: between two consecutive samples of a series whose y
  // differ (a step or a slope is drawn there).
  const bySeries = new Map<string, BreakPoint[]>();
  for (const p of points) {
    let list = bySeries.get(p.key);
    if (list === undefined) bySeries.set(p.key, list = []);
    list.push(p);
  }
  const active: [number, number][] = [];
  for (const list of bySeries.values()) {
    list.sort((a, b) => a.x - b.x);
    for (let k = 1; k < list.length; k++) {
      if (list[k]!.y !== list[k - 1]!.y) {
        active.push([list[k - 1]!.x, list[k]!.x]);
      }
    }
  }
  active.sort((a, b) => a[0] - b[0]);
  const margin = (options.margin ?? 0.015) * range;
  const minLength = (options.minShare ?? 0.12) * range;
  const cuts: [number, number][] = [];
  let reached = lo; // active (or axis start) up to here
  const consider = (from: number, to: number, atStart: boolean) => {
    const a = atStart ? from : from + margin;
    const b = to - margin;
    if (to - from > minLength && b > a) cuts.push([a, b]);
  };
  let first = true;
  for (const [a, b] of active) {
    if (a > reached) consider(reached, a, first);
    first = false;
    reached = Math.max(reached, b);
  }
  if (active.length === 0) return identity;
  if (hi > reached) {
    const a = reached + margin;
    if (hi - reached > minLength && hi > a) cuts.push([a, hi]);
  }
  if (cuts.length === 0) return identity;
  const gap = (options.gap ?? 0.03) * range;
  // Kept stretches and their offsets on the broken axis.
  const map = (x: number): number => {
    let shift = 0;
    for (const [a, b] of cuts) {
      if (x <= a) break;
      if (x < b) return x - shift - (x - a) * (1 - gap / (b - a));
      shift += b - a - gap;
    }
    return x - shift;
  };
  const unmap = (p: number): number => {
    let shift = 0;
    for (const [a, b] of cuts) {
      const pa = a - shift;
      if (p <= pa) break;
      if (p < pa + gap) return a + (p - pa) * ((b - a) / gap);
      shift += b - a - gap;
    }
    return p + shift;
  };
  const kept: [number, number][] = [];
  let start = lo;
  for (const [a, b] of cuts) {
    if (a > start) kept.push([start, a]);
    start = b;
  }
  if (hi > start) kept.push([start, hi]);
  const total = kept.reduce((s, [a, b]) => s + (b - a), 0);
  const want = options.ticks ?? 8;
  const ticks: number[] = [];
  for (const [a, b] of kept) {
    const n = Math.max(2, Math.round((want * (b - a)) / total));
    for (const t of niceTicks(a, b, n)) ticks.push(map(t));
  }
  return {
    cuts,
    map,
    unmap,
    ticks,
    marks: cuts.map(([a, b]) => map((a + b) / 2)),
  };
}

/** About `n` round values in [a, b] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(a: number, b: number, n: number): number[] {
  const raw = (b - a) / Math.max(1, n);
  if (!(raw > 0)) return [a];
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ??
    10 * p;
  const out: number[] = [];
  for (let t = Math.ceil(a / step) * step; t <= b + step * 1e-9; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}
