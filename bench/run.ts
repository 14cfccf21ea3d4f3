/**
 * `deno task bench`: runs every bench file (bench/*_bench.ts) with
 * `deno bench --json`, one subprocess per file (so one file's memory does
 * not weigh on the next), prints a readable table per file as it finishes
 * (time per iteration and per operation, ratio to the group's baseline and
 * to the committed reference bench/baseline.json), and writes all results
 * as one `deno bench --json` document to out/bench.json.
 *
 *     deno task bench                 # everything (a few minutes)
 *     deno task bench translate fault # only files whose name contains a word
 *     deno task bench --update        # ... and make the results the reference
 *
 * Set IOPF_BENCH_DETAIL=1 to also time each experiment of the report's
 * quick suite on its own (bench/scenario_bench.ts).
 *
 * @module
 */
import {
  type BenchSet,
  formatTable,
  mergeSets,
  parseBenchJson,
  readBenchFile,
  REFERENCE,
  writeReference,
} from "./compare.ts";

const BENCH_DIR = new URL("./", import.meta.url);
const OUT = "out/bench.json";
/** Files in this order first (the issue's groups), then any other, by name. */
const ORDER = [
  "translate_bench.ts",
  "fault_bench.ts",
  "pin_bench.ts",
  "scenario_bench.ts",
];
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

async function main(args: string[]): Promise<number> {
  const update = args.includes("--update");
  const filters = args.filter((a) => !a.startsWith("--"));
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
  for (const [i, file] of files.entries()) {
    console.log(`\n[bench ${i + 1}/${files.length}] ${file}`);
    const tf = performance.now();
    const { json, ok } = await runFile(file);
    if (!ok) failed++;
    if (!json) continue;
    merged.version = json.version ?? 1;
    merged.runtime = json.runtime ?? merged.runtime;
    merged.cpu = json.cpu ?? merged.cpu;
    const benches = Array.isArray(json.benches) ? json.benches : [];
    merged.benches.push(...benches);
    const set: BenchSet = parseBenchJson({ ...json, benches });
    console.log(formatTable(set, reference));
    console.log(
      `(${((performance.now() - tf) / 1000).toFixed(0)} s${
        ok ? "" : ", deno bench FAILED"
      })`,
    );
  }
  Deno.mkdirSync("out", { recursive: true });
  Deno.writeTextFileSync(OUT, JSON.stringify(merged, null, 2) + "\n");
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
      writeReference(mergeSets(reference, parseBenchJson(merged)));
      console.log(`updated ${REFERENCE.pathname}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
