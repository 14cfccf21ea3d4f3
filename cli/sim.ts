/**
 * `deno task sim <scenario.json> [--json] [--csv FILE] [--check] [--workers N] [--no-limit]`:
 * runs one scenario, or every point of its sweep, and prints a summary
 * table (or, with `--json`, only the metrics JSON on stdout: an object, or
 * an array for a sweep). `--csv FILE` writes one row per scenario with
 * flattened keys, only once every run has succeeded.
 *
 * Exit status: 0 on success; 2 on a bad scenario file or bad arguments,
 * with one message on stderr naming the field and what is wrong, and no
 * file written; 1 on an internal error, or (one line on stderr) when the
 * scenario livelocks (ETIMEDOUT: no DMA progress while faults keep coming).
 *
 * @module
 */
import { resolve } from "node:path";
import { metricsToCsv } from "../lib/experiment/csv.ts";
import { formatSummary, type Metrics } from "../lib/experiment/metrics.ts";
import { runScenario } from "../lib/experiment/run.ts";
import {
  bareMessage,
  expandSweep,
  loadScenario,
  type Scenario,
} from "../lib/experiment/scenario.ts";
import { progressReporter, runSweep } from "../lib/experiment/sweep.ts";
import {
  estimateWork,
  formatDuration,
  WORK_LIMIT_SECONDS,
} from "../lib/experiment/estimate.ts";
import { IopfLabError } from "../lib/sim/errors.ts";
import { parseSimArgs, type SimArgs, USAGE } from "./_args.ts";
import { writeAll } from "./_io.ts";
import { checkOutputFile, writeFileAtomic } from "./_paths.ts";

/** Where {@linkcode main} writes its output (tests capture it). */
export interface SimIo {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Reports sweep progress (by default a bar or lines on stderr). */
  progress?: boolean;
}

/** The process's standard output and error. */
export const STDIO: SimIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  progress: true,
};

/** Exit status: success. */
export const EXIT_OK = 0;
/** Exit status: an internal error. */
export const EXIT_INTERNAL = 1;
/** Exit status: bad arguments or a bad scenario file. */
export const EXIT_USAGE = 2;

/** Runs the command with `args`; returns the exit status. */
export async function main(
  args: readonly string[],
  io: SimIo = STDIO,
): Promise<number> {
  let parsed: SimArgs;
  try {
    const p = parseSimArgs(args);
    if (p.help) {
      io.stdout(`${USAGE}\n`);
      return EXIT_OK;
    }
    parsed = p;
    if (parsed.csv !== undefined) checkOutputFile(parsed.csv, [], "--csv");
  } catch (e) {
    if (e instanceof IopfLabError) {
      io.stderr(`sim: ${bareMessage(e)}\n`);
      return EXIT_USAGE;
    }
    return internal(io, e);
  }

  let points: Scenario[];
  try {
    const scenario = loadScenario(parsed.file);
    points = expandSweep(scenario).map((p) =>
      parsed.check ? { ...p, check: true } : p
    );
    if (!parsed.noLimit) {
      const big = tooMuchWork(points);
      if (big !== undefined) {
        io.stderr(`${parsed.file}: ${big}\n`);
        return EXIT_USAGE;
      }
    }
    if (parsed.csv !== undefined) {
      try {
        checkOutputFile(
          parsed.csv,
          scenarioInputs(parsed.file, points),
          "--csv",
        );
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        io.stderr(`sim: ${bareMessage(e)}\n`);
        return EXIT_USAGE;
      }
    }
    if (scenario.sweep.length === 0 && points.length === 1) {
      return finish(parsed, io, runScenario(points[0]!));
    }
  } catch (e) {
    return failed(io, parsed.file, e);
  }
  try {
    const metrics = await runSweep(points, {
      ...(parsed.workers === undefined ? {} : { workers: parsed.workers }),
      ...(io.progress ? { onProgress: progressReporter() } : {}),
    });
    return finish(parsed, io, metrics);
  } catch (e) {
    return failed(io, parsed.file, e);
  }
}

/** Writes the CSV (through a temporary file) and the output. */
function finish(
  args: SimArgs,
  io: SimIo,
  result: Metrics | Metrics[],
): number {
  if (args.csv !== undefined) {
    try {
      writeCsvFile(args.csv, Array.isArray(result) ? result : [result]);
    } catch (e) {
      io.stderr(
        `sim: cannot write ${args.csv}: ${
          e instanceof Error ? e.message : e
        }\n`,
      );
      return EXIT_INTERNAL;
    }
  }
  io.stdout(renderOutput(result, { json: args.json }));
  return EXIT_OK;
}

/** Options of {@linkcode renderOutput}. */
export interface RenderOptions {
  /** JSON instead of the summary table. */
  readonly json: boolean;
}

/**
 * What the command prints: the summary table, or with `json` the metrics
 * JSON (an object for one run, an array for a sweep).
 */
export function renderOutput(
  result: Metrics | readonly Metrics[],
  options: RenderOptions,
): string {
  if (options.json) return JSON.stringify(result, null, 2) + "\n";
  return formatSummary(result);
}

/**
 * Writes metrics as CSV to `path` through a temporary file in the same
 * directory renamed into place, so a reader never sees a partial file.
 */
export function writeCsvFile(path: string, rows: readonly Metrics[]): void {
  writeFileAtomic(path, metricsToCsv(rows));
}

/**
 * Why the run of `points` is refused as too large (the first point whose
 * estimated CPU time is above {@linkcode WORK_LIMIT_SECONDS}), or undefined.
 */
export function tooMuchWork(points: readonly Scenario[]): string | undefined {
  for (const p of points) {
    const e = estimateWork(p);
    if (e.cpuSeconds <= WORK_LIMIT_SECONDS) continue;
    const t = e.terms[0]!;
    return `${e.field}: this run would take ${
      formatDuration(e.cpuSeconds)
    } of CPU (${t.count.toPrecision(3)} ${t.what}${
      points.length > 1 ? ` at sweep point ${p.name}` : ""
    }), above the limit of ${
      formatDuration(WORK_LIMIT_SECONDS)
    }; make it smaller, or pass --no-limit to run it anyway`;
  }
  return undefined;
}

/** Every file a run of `points` (loaded from `file`) reads: the scenario and its traces. */
export function scenarioInputs(
  file: string,
  points: readonly Scenario[],
): string[] {
  const inputs = new Set([resolve(file)]);
  for (const p of points) {
    if (p.workload.kind === "trace") inputs.add(p.workload.file);
  }
  return [...inputs];
}

/**
 * Reports an error of loading or running: scenario mistakes (EINVAL naming
 * a field, or a file that cannot be read) exit 2, anything else 1.
 */
function failed(io: SimIo, file: string, e: unknown): number {
  if (
    e instanceof IopfLabError &&
    (e.code === "EINVAL" || e.code === "ENOENT") && e.where !== undefined
  ) {
    const msg = e.message.startsWith(file)
      ? e.message
      : `${file}: ${e.message}`;
    io.stderr(`${msg.replaceAll("\n", " ")}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof IopfLabError && e.code === "ETIMEDOUT") {
    // The scenario livelocked (a result of the model, not a bug in it).
    io.stderr(`${file}: ${e.message.replaceAll("\n", " ")}\n`);
    return EXIT_INTERNAL;
  }
  return internal(io, e);
}

function internal(io: SimIo, e: unknown): number {
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  io.stderr(`sim: internal error: ${text}\n`);
  return EXIT_INTERNAL;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
