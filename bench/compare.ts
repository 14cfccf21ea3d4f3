/**
 * Compares bench results (`deno bench --json` output, as bench/run.ts
 * writes it to out/bench.json) with the committed reference
 * bench/baseline.json: one row per bench with its time per iteration and
 * per operation, its ratio to its group's baseline bench, and its ratio to
 * the reference. `--update` replaces the reference with these results.
 *
 *     deno run --allow-read --allow-write bench/compare.ts [out/bench.json] [--update] [--stat p75|avg|min]
 *
 * The statistic compared is p75 by default: on shared machines the mean is
 * pulled by a few long iterations (a GC, another process), the 75th
 * percentile much less. Nothing here asserts a target; the ratios are for
 * reading.
 *
 * @module
 */
import { OP_UNIT, OPS_PER_ITERATION } from "./_ops.ts";

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
    })),
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
 * A readable table of `set`: per bench the mean and p75 per iteration, the
 * time per operation (the statistic divided by the operations an
 * iteration stands for), the ratio to the group's baseline and the ratio to
 * `reference` (same bench, same statistic).
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
  const header = [
    "group",
    "bench",
    "avg/iter",
    "p75/iter",
    `${stat}/op`,
    "op",
    "x group baseline",
    "x reference",
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
      const perOp = b[stat] / ops;
      const vsBase = base && base.error === undefined
        ? perOp / (base[stat] / opsPerIteration(base.name))
        : NaN;
      const r = ref.get(`${g}\0${b.name}`);
      const vsRef = r ? b[stat] / r[stat] : NaN;
      rows.push([
        g,
        b.name + (b.baseline ? " (baseline)" : ""),
        formatNs(b.avg),
        formatNs(b.p75),
        formatNs(perOp),
        ops === 1 ? OP_UNIT[g] ?? "iteration" : `1/${ops} iteration`,
        b.baseline ? "1" : formatRatio(vsBase),
        r ? formatRatio(vsRef) : "new",
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
  let file = "out/bench.json";
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
