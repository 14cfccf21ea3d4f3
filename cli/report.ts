/**
 * `deno task report [--out DIR] [--quick] [--workers N] [--db FILE | --no-db] [--fresh]`:
 * runs the built-in experiment suite through the model and writes
 * DIR/index.html (default `out/report/`) with every figure inline, each
 * figure also as .svg and .png, and each table as .csv. Progress goes to
 * stderr: one line per experiment and one per completed run (a bar on a
 * terminal).
 *
 * Every run goes into the results database (default DIR/results.sqlite,
 * `--db FILE` another, `--no-db` none); a run whose scenario key and model
 * version are stored there is not run again (`--fresh` runs everything
 * and replaces the stored results). The CSV files are the same either way.
 *
 * Exit status: 0 on success; 2 on bad arguments (one message on stderr);
 * 1 on an internal error; 130 when Ctrl-C stops it (one line on stderr).
 *
 * @module
 */
import {
  DEFAULT_OUT_DIR,
  experimentScenarios,
  reportSuite,
  runReport,
  type RunReportOptions,
} from "../lib/report/mod.ts";
import { estimateWork, formatDuration } from "../lib/experiment/estimate.ts";
import { formatSize } from "../lib/sim/units.ts";
import type { RunProgress } from "../lib/experiment/run.ts";
import type { Scenario } from "../lib/experiment/scenario.ts";
import { formatWallTime } from "../lib/experiment/sweep.ts";
import { formatRunProgress } from "./sim.ts";
import { progressReporter } from "../lib/experiment/sweep.ts";
import { IopfLabError } from "../lib/sim/errors.ts";
import { join } from "node:path";
import { writeAll } from "./_io.ts";
import { checkOutputDir, checkOutputFile } from "./_paths.ts";
import { ResultsDb } from "../lib/results/store.ts";

/** The usage line. */
export const USAGE =
  "usage: deno task report [--out DIR] [--quick] [--workers N] [--db FILE | --no-db] [--fresh]";

/** The results database's file name in the output directory. */
export const DB_FILE = "results.sqlite";

/** What `--help` prints: the usage, every option, an example. */
export const HELP = `${USAGE}

Runs the built-in experiment suite and writes DIR/index.html with every
figure inline, each figure as .svg and .png, each table as .csv.

options:
  --out DIR      output directory [${DEFAULT_OUT_DIR}]
  --quick        the reduced suite (138 runs, about a minute of CPU)
  --workers N    workers per sweep, 0 to 256 (0: on the main thread) [one per core]
  --db FILE      the results database: stored runs are read back, not run
                 again [DIR/${DB_FILE}]
  --no-db        no results database
  --fresh        run every scenario again and replace what is stored
  -h, --help     print this and exit

example:
  deno task report --quick --out out/quick
`;

/** Parsed arguments of `deno task report`. */
export interface ReportArgs {
  /** Output directory. */
  readonly out: string;
  /** The reduced suite. */
  readonly quick: boolean;
  /** Workers per sweep (0: on the main thread). */
  readonly workers?: number;
  /** The results database file; null: none. [DIR/results.sqlite] */
  readonly db: string | null;
  /** Run everything even when stored. */
  readonly fresh: boolean;
}

/** The result of {@linkcode parseReportArgs}: arguments, or a request for help. */
export type ParsedReportArgs =
  | { readonly help: true }
  | ({ readonly help: false } & ReportArgs);

/**
 * Parses `--out DIR` (or `--out=DIR`), `--quick`, `--workers N`,
 * `--db FILE`, `--no-db`, `--fresh`, `--help`.
 * Mistakes throw EINVAL with a one-line message.
 */
export function parseReportArgs(args: readonly string[]): ParsedReportArgs {
  let out: string | undefined;
  let quick = false;
  let fresh = false;
  let noDb = false;
  let db: string | undefined;
  let workers: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith("--") && eq > 0
      ? arg.slice(eq + 1)
      : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        fail(`${name} needs a value`);
      }
      i++;
      return next;
    };
    switch (name) {
      case "--help":
      case "-h":
        return { help: true };
      case "--quick":
        if (inline !== undefined) fail("--quick takes no value");
        quick = true;
        break;
      case "--fresh":
        if (inline !== undefined) fail("--fresh takes no value");
        fresh = true;
        break;
      case "--no-db":
        if (inline !== undefined) fail("--no-db takes no value");
        noDb = true;
        break;
      case "--db": {
        if (db !== undefined) fail("--db given twice");
        const v = value();
        if (v === "") fail("--db needs a file");
        db = v;
        break;
      }
      case "--out": {
        if (out !== undefined) fail("--out given twice");
        const v = value();
        if (v === "") fail("--out needs a directory");
        out = v;
        break;
      }
      case "--workers": {
        const v = value();
        const n = Number(v);
        if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n > 256) {
          fail(`--workers: expected a whole number 0..256, got ${v}`);
        }
        workers = n;
        break;
      }
      default:
        fail(
          arg.startsWith("-")
            ? `unknown option ${name}`
            : `unexpected argument ${JSON.stringify(arg)}`,
        );
    }
  }
  if (noDb && db !== undefined) fail("--db and --no-db together");
  if (noDb && fresh) fail("--fresh needs a results database (not --no-db)");
  const dir = out ?? DEFAULT_OUT_DIR;
  return {
    help: false,
    out: dir,
    quick,
    db: noDb ? null : db ?? join(dir, DB_FILE),
    fresh,
    ...(workers === undefined ? {} : { workers }),
  };
}

function fail(why: string): never {
  throw new IopfLabError("EINVAL", `${why} (${USAGE})`);
}

/** What a report run is expected to cost, before it starts. */
export interface ReportEstimate {
  /** Experiments in the suite. */
  readonly experiments: number;
  /** Runs (sweep points) over all experiments. */
  readonly runs: number;
  /** Estimated CPU seconds of all runs (lib/experiment/estimate.ts). */
  readonly cpuSeconds: number;
  /** Workers the runs are spread over. */
  readonly workers: number;
  /** Estimated wall seconds: the CPU time over the workers. */
  readonly wallSeconds: number;
  /** Estimated peak bytes of model state: the `workers` largest runs at once. */
  readonly memoryBytes: number;
  /** Runs the results database holds already (read back, not run; not in the CPU and memory figures). */
  readonly stored: number;
}

/**
 * The report's cost from its scenarios, before running any: each run's
 * {@linkcode estimateWork} (the same estimate `deno task sim` refuses
 * large runs by), summed for CPU, and the largest runs that can be in
 * flight together for memory.
 */
export function estimateReport(
  quick: boolean,
  workers: number = navigator.hardwareConcurrency ?? 1,
  db?: ResultsDb,
): ReportEstimate {
  const suite = reportSuite({ quick });
  let stored = 0;
  let runs = 0;
  const estimates = suite.flatMap((e) => {
    const points = experimentScenarios(e);
    runs += points.length;
    // A stored run is read back, not run: what the report will reuse.
    const todo = db === undefined
      ? points
      : points.filter((s) => db.get(s, { series: e.series }) === undefined);
    stored += points.length - todo.length;
    return todo.map(estimateWork);
  });
  const n = Math.max(1, workers);
  const cpuSeconds = estimates.reduce((a, e) => a + e.cpuSeconds, 0);
  const memoryBytes = estimates.map((e) => e.memoryBytes)
    .sort((a, b) => b - a).slice(0, n).reduce((a, b) => a + b, 0);
  return {
    experiments: suite.length,
    runs,
    stored,
    cpuSeconds,
    workers: n,
    wallSeconds: cpuSeconds / n,
    memoryBytes,
  };
}

/** {@linkcode estimateReport} as the line the command prints first. */
export function formatReportEstimate(e: ReportEstimate): string {
  const mib = Math.max(1, Math.round(e.memoryBytes / 2 ** 20)) * 2 ** 20;
  return `report: ${e.runs} runs in ${e.experiments} experiments${
    e.stored > 0 ? ` (${e.stored} stored, read back)` : ""
  }: ${formatDuration(e.cpuSeconds)} of CPU (${
    formatDuration(e.wallSeconds)
  } on ${e.workers} worker${e.workers === 1 ? "" : "s"}) and up to ${
    formatSize(mib)
  } of model state at once, estimated`;
}

/**
 * A progress line on stderr for each long run of the report: nothing for
 * a run's first `delayMs` of wall time, then at most one line every
 * `everyMs` per run ("report: <name>: running: 42% (...), ETA 3.0 s").
 */
export function longRunLines(
  write: (text: string) => void,
  delayMs = 5000,
  everyMs = 5000,
): (scenario: Scenario, p: RunProgress) => void {
  const runs = new Map<
    string,
    { t0: number; last: number; phase: string; phaseStart: number }
  >();
  return (scenario, p) => {
    const now = performance.now();
    let r = runs.get(scenario.name);
    if (r === undefined) {
      r = { t0: now, last: -Infinity, phase: p.phase, phaseStart: now };
      runs.set(scenario.name, r);
    }
    if (p.phase !== r.phase) {
      r.phase = p.phase;
      r.phaseStart = now;
    }
    if (now - r.t0 < delayMs || now - r.last < everyMs) return;
    r.last = now;
    write(
      `report: ${scenario.name}: ${formatRunProgress(p, now - r.phaseStart)}, ${
        formatWallTime(now - r.t0)
      } elapsed\n`,
    );
  };
}

/** Where {@linkcode main} writes. */
export interface ReportIo {
  /** Standard output. */
  stdout(text: string): void;
  /** Standard error (progress and errors). */
  stderr(text: string): void;
  /** Per-run progress on stderr. [true] */
  readonly progress?: boolean;
  /** Stderr is a terminal: draw a progress bar instead of a line per run. [false] */
  readonly terminal?: boolean;
  /**
   * Ctrl-C (SIGINT) ends the command with one line on stderr and exit
   * status 130 (the figures and tables written so far stay; each file is
   * written whole or not at all). [false]
   */
  readonly signals?: boolean;
}

/** The process's standard output and error. */
export const STDIO: ReportIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  terminal: Deno.stderr.isTerminal(),
  signals: true,
};

/** Runs the command with `args`; returns the exit status. */
export async function main(
  args: readonly string[],
  io: ReportIo = STDIO,
): Promise<number> {
  let parsed: ReportArgs;
  let db: ResultsDb | undefined;
  try {
    const p = parseReportArgs(args);
    if (p.help) {
      io.stdout(HELP);
      return 0;
    }
    parsed = p;
    checkOutputDir(parsed.out, reportInputs(), "--out");
    if (parsed.db !== null) {
      if (parsed.db === join(parsed.out, DB_FILE)) {
        Deno.mkdirSync(parsed.out, { recursive: true });
      }
      checkOutputFile(parsed.db, reportInputs(), "--db");
      db = ResultsDb.open(parsed.db);
    }
  } catch (e) {
    const msg = e instanceof IopfLabError
      ? e.message.replace(/ \(EINVAL\)$/, "")
      : String(e);
    io.stderr(`report: ${msg}\n`);
    return 2;
  }
  const options: RunReportOptions = {
    out: parsed.out,
    quick: parsed.quick,
    ...(db ? { db } : {}),
    ...(parsed.fresh ? { fresh: true } : {}),
    ...(parsed.workers === undefined ? {} : { workers: parsed.workers }),
    log: (line) => io.stderr(line + "\n"),
    ...((io.progress ?? true) && !io.terminal
      ? { onRunProgress: longRunLines((text) => io.stderr(text)) }
      : {}),
    progress: (io.progress ?? true)
      ? progressReporter({
        write: (text) => io.stderr(text),
        terminal: io.terminal ?? false,
      })
      : false,
  };
  io.stderr(
    `${
      formatReportEstimate(
        estimateReport(
          parsed.quick,
          parsed.workers ?? navigator.hardwareConcurrency ?? 1,
          parsed.fresh ? undefined : db,
        ),
      )
    }\n`,
  );
  const onInterrupt = (): void => {
    io.stderr(
      `${
        io.terminal ? "\r\x1b[K" : ""
      }report: interrupted (Ctrl-C); the report in ${parsed.out} is incomplete\n`,
    );
    Deno.exit(130);
  };
  if (io.signals) Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const summary = await runReport(options);
    io.stdout(`${summary.index}\n`);
    return 0;
  } catch (e) {
    io.stderr(
      `report: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 1;
  } finally {
    if (io.signals) Deno.removeSignalListener("SIGINT", onInterrupt);
    db?.close();
  }
}

/** The files a report run reads: the cost profiles and traces under data/. */
export function reportInputs(): string[] {
  const data = new URL("../data/", import.meta.url).pathname;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else files.push(p);
    }
  };
  walk(data);
  return files;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
