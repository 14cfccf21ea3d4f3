/**
 * `deno task bench`: runs every bench file (bench/*_bench.ts) with
 * `deno bench --json`, one subprocess per file (so one file's memory does
 * not weigh on the next), prints a readable table per file as it finishes
 * (time per iteration and per operation, ratio to the group's baseline and
 * to the committed reference bench/baseline.json), and writes all results
 * as one `deno bench --json` document to out/bench.json.
 *
 *     deno task bench                 # everything, 3 runs of each file
 *     deno task bench translate fault # only files whose name contains a word
 *     deno task bench --reps 5        # 5 runs of each file (a wider spread sample)
 *     deno task bench --gate          # exit 1 if a bench regressed beyond the noise band
 *     deno task bench --update        # ... and make the results the reference
 *
 * Each file runs `--reps` times (default 3), each time in a fresh process;
 * per bench the table shows the median run's p75 per operation, the spread
 * over runs (min - p99), the ratio to the group's in-run baseline, the
 * change against the reference with a noise-aware verdict (regressed /
 * same / improved; compare.ts's `verdict`) and the bench's target
 * (bench/_targets.ts). `bench/report_bench.ts` (the full report, minutes)
 * runs only when named: `deno task bench report`.
 *
 * Set IOPF_BENCH_DETAIL=1 to also time each experiment of the report's
 * quick suite on its own (bench/scenario_bench.ts).
 *
 * @module
 */
import {
  aggregateReps,
  type BenchSet,
  formatTable,
  mergeSets,
  parseBenchJson,
  readBenchFile,
  REFERENCE,
  regressions,
  toReference,
  writeReference,
} from "./compare.ts";

const BENCH_DIR = new URL("./", import.meta.url);
const OUT = "out/bench.json";
/** The aggregated runs (spread per bench), in the reference's format. */
const SUMMARY = "out/bench-summary.json";
/** Files in this order first (the issue's groups), then any other, by name. */
const ORDER = [
  "translate_bench.ts",
  "fault_bench.ts",
  "pin_bench.ts",
  "scenario_bench.ts",
];
/** Runs only when a filter names it (minutes per run). */
const ON_REQUEST = "report_bench.ts";
const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-ffi",
  "--allow-sys",
];

function benchFiles(filters: readonly string[]): string[] {
  const all: string[] = [];
  for (const e of Deno.readDirSync(BENCH_DIR)) {
    if (e.isFile && e.name.endsWith("_bench.ts")) all.push(e.name);
  }
  if (filters.length === 0) {
    const i = all.indexOf(ON_REQUEST);
    if (i >= 0) all.splice(i, 1);
  }
  const rank = (f: string) => {
    const i = ORDER.indexOf(f);
    return i < 0 ? ORDER.length : i;
  };
  all.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  return filters.length === 0
    ? all
    : all.filter((f) => filters.some((w) => f.includes(w)));
}

/** Runs one bench file; returns its parsed JSON document and whether deno bench succeeded. */
async function runFile(
  file: string,
): Promise<{ json: Record<string, unknown> | undefined; ok: boolean }> {
  const path = new URL(file, BENCH_DIR).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "--json", ...PERMISSIONS, path],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    console.error(`bench: ${file} printed something that is not JSON:`);
    console.error(text.slice(0, 2000));
  }
  return { json, ok: out.success };
}

/** What `deno task bench --help` prints. */
export const BENCH_HELP =
  `usage: deno task bench [WORD...] [--reps N] [--gate] [--update]

Runs the bench files (bench/*_bench.ts) with deno bench, each --reps times in a
fresh process, and prints per bench the spread (min/p50/p99), the ratio to its
group's in-run baseline, a verdict against bench/baseline.json and its target.
On a shared host nice does not isolate a bench (autogroup scheduling): see the
README.

options:
  WORD           only the bench files whose name contains WORD (report_bench
                 runs only when named: deno task bench report)
  --reps N       runs of each file, 1 to 100 [3]
  --gate         exit 1 if a bench regressed beyond its noise band
  --update       make this run's results the reference (bench/baseline.json)
  -h, --help     print this and exit

example:
  deno task bench translate fault --reps 5
`;

/** The options of `deno task bench`; throws on a bad one. */
export function parseRunArgs(args: readonly string[]): {
  help?: boolean;
  update: boolean;
  gate: boolean;
  reps: number;
  filters: string[];
} {
  let update = false, gate = false, reps = 3;
  const filters: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--help" || a === "-h") {
      return { help: true, update, gate, reps, filters };
    } else if (a === "--update") update = true;
    else if (a === "--gate") gate = true;
    else if (a === "--reps" || a.startsWith("--reps=")) {
      const v = a === "--reps" ? args[++i] : a.slice("--reps=".length);
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100) {
        throw new Error(`--reps: expected an integer from 1 to 100, got ${v}`);
      }
      reps = n;
    } else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else filters.push(a);
  }
  return { update, gate, reps, filters };
}

async function main(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseRunArgs(args);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  if (opts.help) {
    console.log(BENCH_HELP);
    return 0;
  }
  const { update, gate, reps, filters } = opts;
  const files = benchFiles(filters);
  if (files.length === 0) {
    console.error(`bench: no bench file matches ${filters.join(" ")}`);
    return 2;
  }
  const reference = readBenchFile(REFERENCE);
  const merged: Record<string, unknown> & { benches: unknown[] } = {
    version: 1,
    runtime: "",
    cpu: "",
    benches: [],
  };
  let failed = 0;
  const t0 = performance.now();
  const sets: BenchSet[] = [];
  for (const [i, file] of files.entries()) {
    console.log(`\n[bench ${i + 1}/${files.length}] ${file}`);
    const tf = performance.now();
    const runs: BenchSet[] = [];
    for (let r = 0; r < reps; r++) {
      const { json, ok } = await runFile(file);
      if (!ok) failed++;
      if (!json) continue;
      merged.version = json.version ?? 1;
      merged.runtime = json.runtime ?? merged.runtime;
      merged.cpu = json.cpu ?? merged.cpu;
      const benches = Array.isArray(json.benches) ? json.benches : [];
      merged.benches.push(...benches);
      runs.push(parseBenchJson({ ...json, benches }));
    }
    if (runs.length === 0) continue;
    const set = aggregateReps(runs);
    sets.push(set);
    console.log(formatTable(set, reference));
    console.log(
      `(${reps} run${reps === 1 ? "" : "s"}, ${
        ((performance.now() - tf) / 1000).toFixed(0)
      } s${failed > 0 ? ", deno bench FAILED" : ""})`,
    );
  }
  const all: BenchSet = {
    runtime: merged.runtime as string,
    cpu: merged.cpu as string,
    benches: sets.flatMap((s) => s.benches),
  };
  Deno.mkdirSync("out", { recursive: true });
  Deno.writeTextFileSync(OUT, JSON.stringify(merged, null, 2) + "\n");
  Deno.writeTextFileSync(
    SUMMARY,
    JSON.stringify(toReference(all), null, 2) + "\n",
  );
  console.log(
    `\nwrote ${OUT} (${merged.benches.length} benches, ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s); ratios to the reference use p75; ${
      reference
        ? `reference from ${reference.date ?? "an undated run"}`
        : "no reference yet (bench/baseline.json): run with --update"
    }`,
  );
  if (update) {
    if (failed > 0) {
      console.error("bench: not updating the reference: a bench file failed");
    } else {
      // Benches not run this time keep their reference figures.
      writeReference(mergeSets(reference, all));
      console.log(`updated ${REFERENCE.pathname}`);
    }
  }
  if (gate) {
    const worse = regressions(all, reference);
    for (const b of worse) {
      console.error(`bench: REGRESSED: ${b.group} / ${b.name}`);
    }
    if (worse.length > 0) return 1;
    console.log("bench: --gate: no bench regressed beyond its noise band");
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
