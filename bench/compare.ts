/**
 * Compares bench results (the aggregated runs bench/run.ts writes to
 * out/bench-summary.json, or one `deno bench --json` document) with the
 * committed reference bench/baseline.json: one row per bench with its time
 * per operation and spread over runs, its ratio to its group's baseline
 * bench, its change against the reference with a noise-aware verdict, and
 * its target. `--update` replaces the reference with these results.
 *
 *     deno run --allow-read --allow-write bench/compare.ts [out/bench-summary.json] [--update] [--stat p75|avg|min]
 *
 * The statistic compared is p75 by default: on shared machines the mean is
 * pulled by a few long iterations (a GC, another process), the 75th
 * percentile much less. Targets are read, never asserted in a test.
 *
 * @module
 */
import { OP_UNIT, OPS_PER_ITERATION } from "./_ops.ts";
import { checkTarget, TARGETS } from "./_targets.ts";

/** The statistics a bench result carries (ns per iteration). */
export type Stat = "avg" | "p75" | "min";

/** One bench in a result file or the reference. */
export interface BenchRow {
  /** Group (translate, fault, pin, scenario, ...). */
  readonly group: string;
  /** Bench name. */
  readonly name: string;
  /** Whether it is its group's baseline. */
  readonly baseline: boolean;
  /** Samples. */
  readonly n: number;
  /** Mean ns per iteration. */
  readonly avg: number;
  /** 75th percentile, ns per iteration. */
  readonly p75: number;
  /** Fastest iteration, ns. */
  readonly min: number;
  /** Slowest iteration, ns. */
  readonly max: number;
  /** Why the bench failed, if it did (no numbers then). */
  readonly error?: string;
  /**
   * Spread over repeated runs of the bench file ({@linkcode aggregateReps}):
   * the p75 per operation of each run, and, in a group with an in-run
   * baseline, each run's ratio to it. Absent for a single run.
   */
  readonly reps?: RepSpread;
}

/** Order statistics of a bench's per-run values (nearest rank). */
export interface Spread {
  /** Runs. */
  readonly n: number;
  /** Smallest. */
  readonly min: number;
  /** Median. */
  readonly p50: number;
  /** 99th percentile (the largest for fewer than 100 runs). */
  readonly p99: number;
}

/** A bench's spread over repeated runs. */
export interface RepSpread {
  /** p75 ns per operation of each run. */
  readonly perOp: Spread;
  /** Each run's per-operation ratio to its group's in-run baseline. */
  readonly ratio?: Spread;
}

/** A set of results: where they ran and the benches. */
export interface BenchSet {
  /** Runtime string of `deno bench --json`. */
  readonly runtime: string;
  /** CPU name. */
  readonly cpu: string;
  /** When the results were taken (ISO date), if known. */
  readonly date?: string;
  /** The benches. */
  readonly benches: readonly BenchRow[];
}

/** The default reference file, next to this script. */
export const REFERENCE = new URL("./baseline.json", import.meta.url);

interface RawResult {
  ok?: {
    n: number;
    avg: number;
    p75: number;
    min: number;
    max: number;
  };
  failed?: unknown;
}

interface RawBench {
  group?: string | null;
  name: string;
  baseline?: boolean;
  results: RawResult[];
}

/**
 * Reads `deno bench --json` output (or a file this module wrote with
 * {@linkcode toReference}) into a {@linkcode BenchSet}.
 */
export function parseBenchJson(json: unknown): BenchSet {
  const o = json as {
    runtime?: string;
    cpu?: string;
    date?: string;
    benches?: unknown[];
  };
  if (!o || !Array.isArray(o.benches)) {
    throw new Error("not bench results: no `benches` array");
  }
  const benches = o.benches.map((b): BenchRow => {
    const raw = b as RawBench & Partial<BenchRow>;
    const group = raw.group ?? "";
    if (!Array.isArray(raw.results)) {
      // Already a BenchRow (a reference file).
      return {
        group,
        name: raw.name,
        baseline: raw.baseline ?? false,
        n: raw.n ?? 0,
        avg: raw.avg ?? NaN,
        p75: raw.p75 ?? NaN,
        min: raw.min ?? NaN,
        max: raw.max ?? NaN,
        ...(raw.error === undefined ? {} : { error: raw.error }),
        ...(raw.reps === undefined ? {} : { reps: raw.reps }),
      };
    }
    const ok = raw.results[0]?.ok;
    if (!ok) {
      return {
        group,
        name: raw.name,
        baseline: raw.baseline ?? false,
        n: 0,
        avg: NaN,
        p75: NaN,
        min: NaN,
        max: NaN,
        error: JSON.stringify(raw.results[0]?.failed ?? "no result"),
      };
    }
    return {
      group,
      name: raw.name,
      baseline: raw.baseline ?? false,
      n: ok.n,
      avg: ok.avg,
      p75: ok.p75,
      min: ok.min,
      max: ok.max,
    };
  });
  return {
    runtime: o.runtime ?? "",
    cpu: o.cpu ?? "",
    ...(o.date === undefined ? {} : { date: o.date }),
    benches,
  };
}

/** Reads a results or reference file; undefined when it does not exist. */
export function readBenchFile(path: string | URL): BenchSet | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return parseBenchJson(JSON.parse(text));
}

/** The reference form of a result set (what `--update` writes): rounded, dated. */
export function toReference(set: BenchSet, date = new Date()): BenchSet {
  const r = (x: number) => Number.isFinite(x) ? Math.round(x * 10) / 10 : x;
  return {
    runtime: set.runtime,
    cpu: set.cpu,
    date: date.toISOString(),
    benches: set.benches.filter((b) => b.error === undefined).map((b) => ({
      group: b.group,
      name: b.name,
      baseline: b.baseline,
      n: b.n,
      avg: r(b.avg),
      p75: r(b.p75),
      min: r(b.min),
      max: r(b.max),
      ...(b.reps === undefined ? {} : {
        reps: {
          perOp: roundSpread(b.reps.perOp, r),
          ...(b.reps.ratio === undefined
            ? {}
            : { ratio: roundSpread(b.reps.ratio, (x) => +x.toPrecision(4)) }),
        },
      }),
    })),
  };
}

function roundSpread(s: Spread, r: (x: number) => number): Spread {
  return { n: s.n, min: r(s.min), p50: r(s.p50), p99: r(s.p99) };
}

/** Nearest-rank order statistics of `values` (at least one). */
export function spread(values: readonly number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  const rank = (q: number) => v[Math.max(0, Math.ceil(q * v.length) - 1)]!;
  return { n: v.length, min: v[0]!, p50: rank(0.5), p99: rank(0.99) };
}

/**
 * One set from repeated runs of the same bench files: per bench, the first
 * run's figures (n, avg, p75, min, max: the median run's, by p75) and the
 * spread over runs of its p75 per operation and of its ratio to the
 * group's in-run baseline (measured in the same run, so machine-wide noise
 * that slows both cancels). A bench that failed in any run is failed.
 */
export function aggregateReps(runs: readonly BenchSet[]): BenchSet {
  if (runs.length === 0) throw new Error("aggregateReps: no runs");
  const key = (b: BenchRow) => `${b.group}\0${b.name}`;
  const order: BenchRow[] = [];
  const byKey = new Map<string, BenchRow[]>();
  for (const run of runs) {
    for (const b of run.benches) {
      const k = key(b);
      let list = byKey.get(k);
      if (!list) {
        byKey.set(k, list = []);
        order.push(b);
      }
      list.push(b);
    }
  }
  const perOp = (b: BenchRow) => b.p75 / opsPerIteration(b.name);
  /** Each run's baseline bench per group. */
  const bases = runs.map((run) => {
    const m = new Map<string, BenchRow>();
    for (const b of run.benches) {
      if (b.baseline && b.error === undefined) m.set(b.group, b);
    }
    return m;
  });
  const benches = order.map((first): BenchRow => {
    const list = byKey.get(key(first))!;
    const failed = list.find((b) => b.error !== undefined);
    if (failed) return failed;
    const sorted = [...list].sort((a, b) => a.p75 - b.p75);
    const median = sorted[Math.ceil(sorted.length / 2) - 1]!;
    const ratios: number[] = [];
    if (!first.baseline) {
      for (const [i, run] of runs.entries()) {
        const b = run.benches.find((x) => key(x) === key(first));
        const base = bases[i]!.get(first.group);
        if (b && base && b.error === undefined) {
          ratios.push(perOp(b) / perOp(base));
        }
      }
    }
    return {
      ...median,
      reps: {
        perOp: spread(list.map(perOp)),
        ...(ratios.length > 0 ? { ratio: spread(ratios) } : {}),
      },
    };
  });
  const last = runs[runs.length - 1]!;
  return {
    runtime: last.runtime,
    cpu: last.cpu,
    ...(last.date === undefined ? {} : { date: last.date }),
    benches,
  };
}

/** What a bench did against the reference. */
export type Verdict = "regressed" | "same" | "improved" | "new" | "failed";

/** The smallest band a verdict tolerates, whatever the spread says. */
export const MIN_NOISE_BAND = 0.05;

/** Relative width of a spread: (p99 - min) / p50. */
function width(s: Spread): number {
  return s.p50 > 0 ? (s.p99 - s.min) / s.p50 : Infinity;
}

/**
 * A noise-aware verdict for `cur` against `ref` (same bench). It compares
 * the ratio to the group's in-run baseline when both have one (so a slower
 * machine or a busy neighbour, which slows the baseline too, is not a
 * regression), else the p75 per operation. The noise band is the wider of
 * the two runs' relative spreads and {@linkcode MIN_NOISE_BAND}; the bench
 * regressed when its median is above the reference's median by more than
 * the band and its fastest run is slower than the reference's slowest,
 * improved when below by more than the band and its slowest run is faster
 * than the reference's fastest, else it is the same. The second condition
 * keeps a process-to-process swing from being called a change: on the
 * shared 2-core host the same tree's stall fault bench gave 7.6-11.9 us
 * over three processes and 9.4-10.8 us over three more, against a
 * reference of 7.8-10.0 us, medians 31-45 % apart (2026-12-04), while the
 * two trees alternated in one process differed by 0.2 %.
 */
export function verdict(
  cur: BenchRow,
  ref: BenchRow | undefined,
): { verdict: Verdict; change: number; band: number } {
  if (cur.error !== undefined) {
    return { verdict: "failed", change: NaN, band: NaN };
  }
  if (!ref || ref.error !== undefined) {
    return { verdict: "new", change: NaN, band: NaN };
  }
  const single = (b: BenchRow): Spread => {
    const v = b.p75 / opsPerIteration(b.name);
    return { n: 1, min: v, p50: v, p99: v };
  };
  const useRatio = cur.reps?.ratio !== undefined &&
    ref.reps?.ratio !== undefined;
  const c = useRatio ? cur.reps!.ratio! : cur.reps?.perOp ?? single(cur);
  const r = useRatio ? ref.reps!.ratio! : ref.reps?.perOp ?? single(ref);
  const band = Math.max(MIN_NOISE_BAND, width(c), width(r));
  const change = c.p50 / r.p50 - 1;
  return {
    verdict: change > band && c.min > r.p99
      ? "regressed"
      : change < -band / (1 + band) && c.p99 < r.min
      ? "improved"
      : "same",
    change,
    band,
  };
}

/** Operations one iteration of `name` stands for. */
export function opsPerIteration(name: string): number {
  return OPS_PER_ITERATION[name] ?? 1;
}

/** Formats ns with a unit (ns, µs, ms, s). */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "-";
  if (ns < 1e3) return `${ns.toFixed(ns < 10 ? 2 : 1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function formatRatio(x: number): string {
  if (!Number.isFinite(x)) return "-";
  return `${x.toFixed(x < 10 ? 2 : 1)}x`;
}

/** Options of {@linkcode formatTable}. */
export interface FormatTableOptions {
  /** The statistic ratios use. Default "p75". */
  readonly stat?: Stat;
  /** Only these groups (in this order). Default: every group, in order of appearance. */
  readonly groups?: readonly string[];
}

/**
 * A readable table of `set`: per bench its time per operation (the
 * statistic divided by the operations an iteration stands for; with
 * repeated runs, the median run's p75 and the spread min-p99 over runs),
 * the ratio to the group's baseline, the change against `reference` with a
 * noise-aware {@linkcode verdict}, and the bench's target
 * (bench/_targets.ts), met or missed.
 */
export function formatTable(
  set: BenchSet,
  reference: BenchSet | undefined,
  options: FormatTableOptions = {},
): string {
  const stat = options.stat ?? "p75";
  const groups = options.groups ??
    [...new Set(set.benches.map((b) => b.group))];
  const ref = new Map(
    (reference?.benches ?? []).map((b) => [`${b.group}\0${b.name}`, b]),
  );
  const targets = new Map(
    TARGETS.map((t) => [`${t.group}\0${t.bench}`, t]),
  );
  const header = [
    "group",
    "bench",
    `${stat}/op`,
    "spread over runs",
    "op",
    "x group baseline",
    "vs reference",
    "target",
  ];
  const rows: string[][] = [];
  for (const g of groups) {
    const benches = set.benches.filter((b) => b.group === g);
    const base = benches.find((b) => b.baseline);
    for (const b of benches) {
      if (b.error !== undefined) {
        rows.push([g, b.name, "FAILED", "", "", "", "", b.error.slice(0, 60)]);
        continue;
      }
      const ops = opsPerIteration(b.name);
      const perOp = stat === "p75" && b.reps ? b.reps.perOp.p50 : b[stat] / ops;
      const vsBase = b.reps?.ratio?.p50 ??
        (base && base.error === undefined
          ? perOp / (base[stat] / opsPerIteration(base.name))
          : NaN);
      const r = ref.get(`${g}\0${b.name}`);
      const v = verdict(b, r);
      const t = targets.get(`${g}\0${b.name}`);
      const tc = t && checkTarget(t, set);
      rows.push([
        g,
        b.name + (b.baseline ? " (baseline)" : ""),
        formatNs(perOp),
        b.reps && b.reps.perOp.n > 1
          ? `${formatNs(b.reps.perOp.min)} - ${
            formatNs(b.reps.perOp.p99)
          } (${b.reps.perOp.n} runs)`
          : "1 run",
        ops === 1 ? OP_UNIT[g] ?? "iteration" : `1/${ops} iteration`,
        b.baseline ? "1" : formatRatio(vsBase),
        v.verdict === "new"
          ? "new"
          : `${v.change >= 0 ? "+" : ""}${(v.change * 100).toFixed(0)}% ${
            v.verdict === "same"
              ? `same (band ${(v.band * 100).toFixed(0)}%)`
              : v.verdict
          }`,
        t
          ? `${t.text}: ${
            tc ? `${tc.value} ${tc.met ? "met" : "MISSED"}` : "-"
          }`
          : "",
      ]);
    }
  }
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join("\n");
}

/** The benches of `set` that regressed against `reference`. */
export function regressions(
  set: BenchSet,
  reference: BenchSet | undefined,
): BenchRow[] {
  const ref = new Map(
    (reference?.benches ?? []).map((b) => [`${b.group}\0${b.name}`, b]),
  );
  return set.benches.filter((b) =>
    verdict(b, ref.get(`${b.group}\0${b.name}`)).verdict === "regressed"
  );
}

/**
 * `old` with the benches of `update` replacing theirs (same group and
 * name) or added; for refreshing the reference after running a subset.
 */
export function mergeSets(
  old: BenchSet | undefined,
  update: BenchSet,
): BenchSet {
  if (!old) return update;
  const key = (b: BenchRow) => `${b.group}\0${b.name}`;
  const fresh = new Map(update.benches.map((b) => [key(b), b]));
  const benches = old.benches.map((b) => fresh.get(key(b)) ?? b);
  const known = new Set(old.benches.map(key));
  for (const b of update.benches) if (!known.has(key(b))) benches.push(b);
  return { ...update, benches };
}

/** Writes `set` as the reference (bench/baseline.json by default). */
export function writeReference(set: BenchSet, path: string | URL = REFERENCE) {
  Deno.writeTextFileSync(
    path,
    JSON.stringify(toReference(set), null, 2) + "\n",
  );
}

function parseArgs(args: string[]): {
  file: string;
  update: boolean;
  stat: Stat;
} {
  let file = "out/bench-summary.json";
  let update = false;
  let stat: Stat = "p75";
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--update") update = true;
    else if (a === "--stat") {
      const v = args[++i];
      if (v !== "avg" && v !== "p75" && v !== "min") {
        throw new Error(`--stat: expected avg, p75 or min, got ${v}`);
      }
      stat = v;
    } else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else file = a;
  }
  return { file, update, stat };
}

if (import.meta.main) {
  try {
    const { file, update, stat } = parseArgs(Deno.args);
    const set = readBenchFile(file);
    if (!set) throw new Error(`${file} not found: run \`deno task bench\``);
    const reference = readBenchFile(REFERENCE);
    console.log(
      `${file}: ${set.runtime}, ${set.cpu}; reference: ${
        reference
          ? `${reference.date ?? "undated"}, ${reference.cpu}`
          : "none (bench/baseline.json missing)"
      }; ratios of ${stat}`,
    );
    console.log(formatTable(set, reference, { stat }));
    if (update) {
      writeReference(set);
      console.log(`updated ${REFERENCE.pathname}`);
    }
  } catch (e) {
    console.error(`compare: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
