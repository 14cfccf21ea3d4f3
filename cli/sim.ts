/**
 * `deno task sim <scenario.json> [--json] [--csv FILE] [--check] [--workers N] [--no-limit]`:
 * runs one scenario, or every point of its sweep, and prints a summary
 * table (or, with `--json`, only the metrics JSON on stdout: an object, or
 * an array for a sweep). `--csv FILE` writes one row per scenario with
 * flattened keys, only once every run has succeeded; `--csv -` writes
 * them to stdout instead of the table.
 *
 * Exit status: 0 on success; 2 on a bad scenario file or bad arguments,
 * with one message on stderr naming the field and what is wrong, and no
 * file written; 1 on an internal error, or (one line on stderr) when the
 * scenario livelocks (ETIMEDOUT: no DMA progress while faults keep coming);
 * 130 when Ctrl-C (SIGINT) stops it: one line on stderr, and with `--csv`
 * a sweep's finished points are written (it says how many of how many).
 *
 * With `--db FILE` every run goes into the results database (lib/results)
 * and a point whose scenario key and model version are stored there is not
 * run again (`--fresh` reruns); the output is the same either way.
 *
 * With `--shard K/N --out DIR` it runs shard K of N of the sweep (the points
 * whose index i, from 0, has i mod N = K - 1) and writes
 * DIR/shard-K-of-N.json; `deno task merge` combines the N files into the
 * output one run gives (docs/SHARDS.md). `--shard auto` takes K and N from a
 * Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN,
 * SLURM_ARRAY_TASK_COUNT), `--shard auto/N` takes K from Slurm or from a
 * Kubernetes Indexed Job's JOB_COMPLETION_INDEX (plus one) and N as given.
 *
 * Progress goes to stderr, never stdout: a sweep reports each finished
 * point with an ETA; a single run that lasts more than 2 s of wall time
 * shows what it has done (pages pinned, bytes moved, trace rows replayed)
 * and an ETA, redrawn in place on a terminal, otherwise a line at most
 * every 5 s.
 *
 * @module
 */
import { resolve } from "node:path";
import { metricsToCsv } from "../lib/experiment/csv.ts";
import { formatSummary, type Metrics } from "../lib/experiment/metrics.ts";
import {
  type RunProgress,
  runScenario,
  runScenarioWithSeries,
} from "../lib/experiment/run.ts";
import {
  bareMessage,
  expandSweep,
  loadScenario,
  type Scenario,
} from "../lib/experiment/scenario.ts";
import {
  formatWallTime,
  progressReporter,
  runSweep,
} from "../lib/experiment/sweep.ts";
import {
  estimateWork,
  formatDuration,
  memoryLimit,
  WORK_LIMIT_SECONDS,
} from "../lib/experiment/estimate.ts";
import { IopfLabError } from "../lib/sim/errors.ts";
import { formatSize } from "../lib/sim/units.ts";
import { HELP, parseSimArgs, type SimArgs } from "./_args.ts";
import { join } from "node:path";
import { modelVersion } from "../lib/results/model_version.ts";
import { runStored } from "../lib/results/run.ts";
import {
  resolveShard,
  type Shard,
  shardFileName,
  shardFileText,
  shardIndices,
} from "../lib/results/shard.ts";
import { ResultsDb } from "../lib/results/store.ts";
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
  /** Stderr is a terminal: progress is redrawn in place. [false] */
  terminal?: boolean;
  /**
   * Ctrl-C (SIGINT) stops the run cleanly (exit 130); runs then go to a
   * worker so the signal is heard while the simulator runs. [false]
   */
  signals?: boolean;
  /** Wall ms a single run runs before its progress shows. [2000] */
  progressDelayMs?: number;
  /** The limits a run is refused above without `--no-limit`. [WORK_LIMITS] */
  limits?: WorkLimits;
  /** The environment `--shard auto` reads. [Deno.env] */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The estimated CPU time and model memory above which a run needs `--no-limit`. */
export interface WorkLimits {
  /** Seconds of CPU. */
  readonly cpuSeconds: number;
  /** Bytes of model state. */
  readonly memoryBytes: number;
}

/** The default limits: 10 minutes of CPU, 3/4 of this machine's RAM. */
export function defaultLimits(): WorkLimits {
  return { cpuSeconds: WORK_LIMIT_SECONDS, memoryBytes: memoryLimit() };
}

/** The process's standard output and error. */
export const STDIO: SimIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  progress: true,
  terminal: Deno.stderr.isTerminal(),
  signals: true,
};

/** Exit status: stopped by Ctrl-C (SIGINT), as a shell reports it (128 + 2). */
export const EXIT_INTERRUPTED = 130;

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
  const interrupt = io.signals ? new Interrupt() : undefined;
  try {
    return await command(args, io, interrupt);
  } finally {
    interrupt?.dispose();
  }
}

/** The reason an interrupted run rejects with. */
class Interrupted extends Error {
  constructor() {
    super("interrupted (SIGINT)");
    this.name = "Interrupted";
  }
}

/**
 * Turns SIGINT into an aborted signal; a second Ctrl-C ends the process at
 * once.
 */
class Interrupt {
  readonly controller = new AbortController();
  readonly #listener = (): void => {
    if (this.controller.signal.aborted) Deno.exit(EXIT_INTERRUPTED);
    this.controller.abort(new Interrupted());
  };

  constructor() {
    Deno.addSignalListener("SIGINT", this.#listener);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    Deno.removeSignalListener("SIGINT", this.#listener);
  }
}

async function command(
  args: readonly string[],
  io: SimIo,
  interrupt: Interrupt | undefined,
): Promise<number> {
  let parsed: SimArgs;
  let shard: Shard | undefined;
  try {
    const p = parseSimArgs(args);
    if (p.help) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    parsed = p;
    if (parsed.csv !== undefined && parsed.csv !== "-") {
      checkOutputFile(parsed.csv, [], "--csv");
    }
    if (parsed.db !== undefined) checkOutputFile(parsed.db, [], "--db");
    if (parsed.shard !== undefined) {
      shard = resolveShard(parsed.shard, io.env ?? Deno.env.toObject());
      checkShardDir(parsed.out!);
    }
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
      const big = tooMuchWork(points, io.limits ?? defaultLimits());
      if (big !== undefined) {
        io.stderr(`${parsed.file}: ${big}\n`);
        return EXIT_USAGE;
      }
    }
    if (parsed.csv !== undefined && parsed.csv !== "-") {
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
    if (shard !== undefined || parsed.db !== undefined) {
      let db: ResultsDb | undefined;
      try {
        if (parsed.db !== undefined) {
          checkOutputFile(
            parsed.db,
            scenarioInputs(parsed.file, points),
            "--db",
          );
          db = ResultsDb.open(parsed.db);
        }
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        io.stderr(`sim: ${bareMessage(e)}\n`);
        return EXIT_USAGE;
      }
      try {
        return await runThroughResults(parsed, io, {
          scenario,
          points,
          shard,
          db,
          interrupt,
        });
      } finally {
        db?.close();
      }
    }
    if (scenario.sweep.length === 0 && points.length === 1) {
      const point = points[0]!;
      const line = io.progress ? runProgressLine(io) : undefined;
      let metrics: Metrics;
      if (interrupt) {
        // In a worker, so that Ctrl-C is heard while the simulator runs.
        metrics = (await runSweep([point], {
          workers: 1,
          signal: interrupt.signal,
          ...(line ? { onRunProgress: (_i, p) => line.report(p) } : {}),
        }))[0]!;
      } else {
        metrics = line
          ? runScenarioWithSeries(point, { onProgress: line.report }).metrics
          : runScenario(point);
      }
      line?.end();
      return finish(parsed, io, metrics);
    }
  } catch (e) {
    if (e instanceof Interrupted) {
      io.stderr(`${clearLine(io)}sim: interrupted (Ctrl-C); nothing written\n`);
      return EXIT_INTERRUPTED;
    }
    return failed(io, parsed.file, e);
  }
  const finished = new Map<number, Metrics>();
  try {
    const metrics = await runSweep(points, {
      ...(parsed.workers === undefined ? {} : { workers: parsed.workers }),
      ...(io.progress
        ? {
          onProgress: progressReporter({
            write: io.stderr,
            terminal: io.terminal ?? false,
          }),
        }
        : {}),
      ...(interrupt
        ? {
          signal: interrupt.signal,
          onResult: (i: number, r: unknown) =>
            void finished.set(i, r as Metrics),
        }
        : {}),
    });
    return finish(parsed, io, metrics);
  } catch (e) {
    if (e instanceof Interrupted) {
      return interrupted(parsed, io, finished, points.length);
    }
    return failed(io, parsed.file, e);
  }
}

/** What {@linkcode runThroughResults} runs. */
interface ResultsRun {
  /** The scenario file as loaded. */
  readonly scenario: Scenario;
  /** Every point of its sweep. */
  readonly points: readonly Scenario[];
  /** The shard to run, or every point. */
  readonly shard: Shard | undefined;
  /** The results database, if any. */
  readonly db: ResultsDb | undefined;
  /** Ctrl-C. */
  readonly interrupt: Interrupt | undefined;
}

/**
 * Runs every point (or a shard's points) through the results database:
 * stored points are reused, the others run on the sweep's workers. A shard
 * goes to its file in `--out DIR`; otherwise the output is what a run
 * without a database gives.
 */
async function runThroughResults(
  args: SimArgs,
  io: SimIo,
  run: ResultsRun,
): Promise<number> {
  const { scenario, points, shard, db, interrupt } = run;
  const mine = shard === undefined
    ? points
    : shardIndices(points.length, shard).map((i) => points[i]!);
  const single = scenario.sweep.length === 0 && points.length === 1;
  const stored = await runStored(mine, {
    ...(db ? { db } : {}),
    ...(args.fresh ? { fresh: true } : {}),
    ...(args.workers === undefined ? {} : { workers: args.workers }),
    ...(io.progress && !single
      ? {
        onProgress: progressReporter({
          write: io.stderr,
          terminal: io.terminal ?? false,
        }),
      }
      : {}),
    ...(interrupt ? { signal: interrupt.signal } : {}),
  });
  const metrics = stored.results.map((r) => r.metrics);
  if (shard === undefined) {
    return finish(args, io, single ? metrics[0]! : metrics);
  }
  const path = join(args.out!, shardFileName(shard));
  try {
    Deno.mkdirSync(args.out!, { recursive: true });
    writeFileAtomic(
      path,
      shardFileText(scenario, points, shard, metrics, modelVersion()),
    );
  } catch (e) {
    io.stderr(
      `sim: cannot write ${path}: ${e instanceof Error ? e.message : e}\n`,
    );
    return EXIT_INTERNAL;
  }
  io.stdout(
    `${path}: shard ${shard.index} of ${shard.count}, ${mine.length} of ${points.length} points${
      db ? ` (${stored.reused} from ${db.path})` : ""
    }\n`,
  );
  return EXIT_OK;
}

/** Refuses (EINVAL) a shard directory that is a file. */
function checkShardDir(dir: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch {
    return; // created by the run
  }
  if (!info.isDirectory) {
    throw new IopfLabError(
      "EINVAL",
      `--out ${dir}: is a file, not a directory`,
      "--out",
    );
  }
}

/**
 * After Ctrl-C in a sweep: writes the finished points (in sweep order) to
 * the CSV if one was asked for, and says so in one line.
 */
function interrupted(
  args: SimArgs,
  io: SimIo,
  finished: ReadonlyMap<number, Metrics>,
  total: number,
): number {
  const rows = [...finished.entries()].sort((a, b) => a[0] - b[0]).map((
    [, m],
  ) => m);
  let what = `${rows.length} of ${total} points had finished`;
  if (args.csv === "-" && rows.length > 0) {
    io.stdout(metricsToCsv(rows));
    what =
      `wrote the ${rows.length} of ${total} points that had finished to stdout`;
  } else if (args.csv !== undefined && rows.length > 0) {
    try {
      writeCsvFile(args.csv, rows);
      what =
        `wrote the ${rows.length} of ${total} points that had finished to ${args.csv}`;
    } catch (e) {
      what += `; cannot write ${args.csv}: ${
        e instanceof Error ? e.message : e
      }`;
    }
  } else if (args.csv !== undefined) what += `; ${args.csv} not written`;
  io.stderr(`${clearLine(io)}sim: interrupted (Ctrl-C): ${what}\n`);
  return EXIT_INTERRUPTED;
}

/** What ends a progress line drawn in place on a terminal. */
function clearLine(io: SimIo): string {
  return io.terminal ? "\r\x1b[K" : "";
}

/** The progress line of a single run. */
interface RunProgressLine {
  /** Takes a report of the run. */
  report(p: RunProgress): void;
  /** The run ended: finish the line (on a terminal). */
  end(): void;
}

/**
 * Progress of a single run on stderr: nothing for its first 2 s of wall
 * time, then what the run has done and an ETA for its phase, redrawn at
 * most 5 times a second on a terminal, otherwise a line at most every 5 s.
 */
export function runProgressLine(io: SimIo): RunProgressLine {
  const t0 = performance.now();
  const delay = io.progressDelayMs ?? 2000;
  const terminal = io.terminal ?? false;
  const every = terminal ? 200 : 5000;
  let last = -Infinity, drawn = false;
  let phase = "", phaseStart = t0;
  return {
    report(p) {
      const now = performance.now();
      if (p.phase !== phase) {
        phase = p.phase;
        phaseStart = now;
      }
      if (now - t0 < delay || now - last < every) return;
      last = now;
      const text = `sim: ${formatRunProgress(p, now - phaseStart)}, ${
        formatWallTime(now - t0)
      } elapsed`;
      if (terminal) io.stderr(`\r${text}\x1b[K`);
      else io.stderr(`${text}\n`);
      drawn = true;
    },
    end() {
      if (terminal && drawn) io.stderr("\r\x1b[K");
    },
  };
}

/**
 * One report of a run as text: "running: 42% (4.20 GiB of 10.00 GiB moved),
 * ETA 12.0 s"; `phaseMs` is how long the phase has run (for the ETA).
 */
export function formatRunProgress(p: RunProgress, phaseMs: number): string {
  const what = p.phase === "setup" ? "starting the VMs" : "running";
  const n = (x: number) =>
    p.unit === "bytes moved"
      ? formatSize(Math.round(x))
      : x < 1e6
      ? String(Math.round(x))
      : x.toExponential(2);
  const unit = p.unit === "bytes moved" ? "moved" : p.unit;
  if (!(p.total > 0)) return `${what}: ${n(p.done)} ${unit}`;
  const f = p.fraction;
  const eta = f > 0 ? `, ETA ${formatWallTime((phaseMs * (1 - f)) / f)}` : "";
  return `${what}: ${(100 * f).toFixed(0)}% (${n(p.done)} of ${
    n(p.total)
  } ${unit})${eta}`;
}

/** Writes the CSV (through a temporary file) and the output. */
function finish(
  args: SimArgs,
  io: SimIo,
  result: Metrics | Metrics[],
): number {
  if (args.csv === "-") {
    // The CSV is the output: no table on stdout.
    io.stdout(metricsToCsv(Array.isArray(result) ? result : [result]));
    return EXIT_OK;
  }
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
  io.stdout(renderOutput(result, { json: args.json, all: args.all }));
  return EXIT_OK;
}

/** Options of {@linkcode renderOutput}. */
export interface RenderOptions {
  /** JSON instead of the summary table. */
  readonly json: boolean;
  /** Show the metrics that are 0 in every run too. [false] */
  readonly all?: boolean;
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
  return formatSummary(result, { hideZero: !(options.all ?? false) });
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
 * estimated model memory or CPU time is above `limits`), or undefined.
 */
export function tooMuchWork(
  points: readonly Scenario[],
  limits: WorkLimits,
): string | undefined {
  const mib = (b: number) => formatSize(Math.round(b / 2 ** 20) * 2 ** 20);
  for (const p of points) {
    const e = estimateWork(p);
    const at = points.length > 1 ? ` at sweep point ${p.name}` : "";
    if (e.memoryBytes > limits.memoryBytes) {
      return `vm.memory: this run would need about ${
        mib(e.memoryBytes)
      } of memory for the model's state (${e.memoryWhat}${at}), more than the ${
        mib(limits.memoryBytes)
      } allowed (3/4 of this machine's RAM); make it smaller, or pass --no-limit to run it anyway`;
    }
    if (e.cpuSeconds <= limits.cpuSeconds) continue;
    const t = e.terms[0]!;
    return `${e.field}: this run would take ${
      formatDuration(e.cpuSeconds)
    } of CPU (${t.count.toPrecision(3)} ${t.what}${at}), above the limit of ${
      formatDuration(limits.cpuSeconds)
    }; ${t.advice ?? "make it smaller"}, or pass --no-limit to run it anyway`;
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
