/**
 * Sweeps on Web Workers: each point of a sweep runs in a module worker
 * (`runScenario` from ./run.ts), several at once; the results come back in
 * sweep order and do not depend on how many workers ran them. An error
 * inside a worker comes back as an `IopfLabError` with its code.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { expandSweep, parseScenario } from "./scenario.ts";
 * import { progressReporter, runSweep } from "./sweep.ts";
 * const points = expandSweep(parseScenario({
 *   vm: { memory: "1GiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * }));
 * const metrics = await runSweep(points, { onProgress: progressReporter() });
 * assert.equal(metrics.length, 2);
 * ```
 *
 * @module
 */
import { type ErrorCode, IopfLabError } from "../sim/errors.ts";
import { bareMessage } from "../sim/fields.ts";
import type { Metrics, SeriesRow } from "./metrics.ts";
import type { RunProgress, RunScenarioOptions, VmOutcome } from "./run.ts";
import * as simulator from "./run.ts";
import type { Scenario } from "./scenario.ts";

/** A run's metrics and its time series. */
export interface RunResult {
  /** What the run measured. */
  readonly metrics: Metrics;
  /** Samples over simulated time. */
  readonly series: SeriesRow[];
  /** Each VM's outcome, in VM order (runScenarioWithSeries always sets it). */
  readonly vms?: readonly VmOutcome[];
}

/** What a runner module (./run.ts, or a test double) exports. */
export interface RunnerModule {
  /** Runs one scenario to completion. */
  runScenario(scenario: Scenario): Metrics;
  /** Runs one scenario and records its time series. */
  runScenarioWithSeries(
    scenario: Scenario,
    options?: RunScenarioOptions,
  ): RunResult;
}

/** Progress of a sweep, reported after each point completes. */
export interface SweepProgress {
  /** Points completed so far. */
  readonly done: number;
  /** Points in the sweep. */
  readonly total: number;
  /** Index (in sweep order) of the point that just completed. */
  readonly index: number;
  /** Its scenario name. */
  readonly name: string;
  /** Wall-clock milliseconds since the sweep started. */
  readonly elapsedMs: number;
  /**
   * Estimated wall-clock milliseconds until the last point completes, at
   * the rate the points have completed so far (0 when done).
   */
  readonly etaMs: number;
}

/** Options of {@linkcode runSweep}. */
export interface RunSweepOptions {
  /**
   * Workers running points at once; 0 runs them one after the other on the
   * calling thread. [navigator.hardwareConcurrency, at most one per point]
   */
  readonly workers?: number;
  /** Called after each point completes (in completion order). */
  readonly onProgress?: (progress: SweepProgress) => void;
  /**
   * Called with each point's result as it completes (in completion order),
   * so a caller interrupted with `signal` still has the finished points.
   */
  readonly onResult?: (index: number, result: Metrics | RunResult) => void;
  /**
   * Called as each running point goes (its {@linkcode RunScenarioOptions.onProgress}
   * reports, passed from the worker), with the point's index.
   */
  readonly onRunProgress?: (index: number, progress: RunProgress) => void;
  /**
   * Aborting it stops the sweep: running points are terminated, no more
   * start, and the promise rejects with the signal's reason. Without
   * workers a point already running finishes first (it runs on this thread).
   */
  readonly signal?: AbortSignal;
  /**
   * Workers to run the points on, kept for the next sweep (see
   * {@linkcode SweepPool}); `workers` then defaults to the pool's size and
   * may not exceed it. [a pool of this sweep's own, ended with it]
   */
  readonly pool?: SweepPool;
  /**
   * The runner of the points when `workers` is 0 (a test double, say).
   * [the simulator: ./run.ts]
   */
  readonly runner?: RunnerModule;
  /**
   * Module worker script the points run in when `workers` is above 0: it
   * imports its runner statically and calls {@linkcode serveRunner} with
   * it. [{@linkcode DEFAULT_WORKER}]
   */
  readonly worker?: string | URL;
}

/**
 * Module workers kept across sweeps: a caller running many sweeps (the
 * report runs one per experiment) starts each worker once, and the points
 * of later sweeps run on code the engine has already compiled and
 * optimised, instead of paying a worker's start and warm-up per sweep.
 * Results do not depend on it. A worker that failed or was terminated (an
 * aborted sweep) is replaced by a fresh one when next needed.
 *
 * @example
 * ```ts ignore
 * import { SweepPool, runSweep } from "./sweep.ts";
 * const pool = new SweepPool({ size: 2 });
 * try {
 *   await runSweep(pointsA, { pool });
 *   await runSweep(pointsB, { pool }); // the same two workers
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class SweepPool {
  /** Workers at most. */
  readonly size: number;
  /** The worker script of its workers. [{@linkcode DEFAULT_WORKER}] */
  readonly worker: string | URL;
  readonly #workers: (Worker | undefined)[] = [];
  #busy = false;
  #closed = false;
  #dispatched = 0;

  /** Points sent to its workers so far, over every sweep. */
  get dispatched(): number {
    return this.#dispatched;
  }

  /** Sends one point to `worker`, one of those {@linkcode take} gave, and counts it. */
  post(worker: Worker, request: WorkerRequest): void {
    this.#dispatched++;
    worker.postMessage(request);
  }

  /**
   * Creates an empty pool (workers start when a sweep needs them).
   *
   * @throws {IopfLabError} EINVAL when `size` is not a whole number >= 1
   */
  constructor(
    options: { readonly size?: number; readonly worker?: string | URL } = {},
  ) {
    const size = options.size ??
      Math.max(1, navigator.hardwareConcurrency ?? 1);
    if (!Number.isInteger(size) || size < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a sweep pool: size must be a whole number >= 1, got ${size}`,
      );
    }
    this.size = size;
    this.worker = options.worker ?? DEFAULT_WORKER;
  }

  /**
   * Takes the first `n` workers (starting those not running) for one sweep.
   *
   * @throws {IopfLabError} EBUSY while another sweep uses the pool; EINVAL
   *   when closed or `n` exceeds the size
   */
  take(n: number): Worker[] {
    if (this.#closed) {
      throw new IopfLabError(
        "EINVAL",
        "Cannot run the sweep on the pool: it is closed",
      );
    }
    if (this.#busy) {
      throw new IopfLabError(
        "EBUSY",
        "Cannot run the sweep on the pool: another sweep is using it",
      );
    }
    if (n > this.size) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot run the sweep on ${n} workers: the pool has ${this.size}`,
      );
    }
    this.#busy = true;
    const out: Worker[] = [];
    for (let k = 0; k < n; k++) {
      let w = this.#workers[k];
      if (w === undefined) {
        w = newWorker(this.worker);
        this.#workers[k] = w;
      }
      out.push(w);
    }
    return out;
  }

  /**
   * Gives the workers of a sweep back; `discard` terminates them (a sweep
   * that failed or was aborted: a point may still be running), so the next
   * sweep starts fresh ones.
   */
  give(workers: readonly Worker[], discard: boolean): void {
    this.#busy = false;
    for (const w of workers) {
      w.onmessage = null;
      w.onerror = null;
      w.onmessageerror = null;
      if (!discard && !this.#closed) continue;
      w.terminate();
      const k = this.#workers.indexOf(w);
      if (k >= 0) this.#workers[k] = undefined;
    }
  }

  /** Terminates every worker; the pool cannot run sweeps any more. */
  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w?.terminate();
    this.#workers.length = 0;
  }
}

function newWorker(script: string | URL): Worker {
  return new Worker(script, { type: "module" });
}

/**
 * The worker script used unless an option names another: ./_worker.ts,
 * which serves the simulator (./run.ts). Its imports are static, so the
 * package's module graph (and `deno publish`) sees every module a sweep
 * loads.
 */
export const DEFAULT_WORKER: URL = new URL("./_worker.ts", import.meta.url);

/**
 * Runs every scenario and returns their metrics in the order given (each
 * with its scenario's `sweepPoint`). If a point fails, no further points
 * start, and the error of the first failing point in sweep order is thrown
 * once the running ones have finished.
 */
export function runSweep(
  scenarios: readonly Scenario[],
  options: RunSweepOptions = {},
): Promise<Metrics[]> {
  return runAll<Metrics>(scenarios, false, options);
}

/** Like {@linkcode runSweep}, also recording each run's time series. */
export function runSweepWithSeries(
  scenarios: readonly Scenario[],
  options: RunSweepOptions = {},
): Promise<RunResult[]> {
  return runAll<RunResult>(scenarios, true, options);
}

/**
 * One sweep of points of which some record their time series: point `i`
 * gives a {@linkcode RunResult} when `series[i]` is true (as
 * {@linkcode runSweepWithSeries}), else its Metrics (as
 * {@linkcode runSweep}). A caller with runs of both kinds (the report) keeps
 * its workers busy across them instead of waiting for one sweep to end
 * before it starts the next.
 *
 * @throws {IopfLabError} EINVAL when `series` and `scenarios` differ in length
 */
export function runSweepMixed(
  scenarios: readonly Scenario[],
  series: readonly boolean[],
  options: RunSweepOptions = {},
): Promise<(Metrics | RunResult)[]> {
  if (series.length !== scenarios.length) {
    return Promise.reject(
      new IopfLabError(
        "EINVAL",
        `Cannot run the sweep: ${series.length} series flags for ${scenarios.length} points`,
      ),
    );
  }
  return runAll<Metrics | RunResult>(scenarios, series, options);
}

/** A request to a worker. */
export interface WorkerRequest {
  /** Index of the point. */
  readonly index: number;
  /** The point. */
  readonly scenario: Scenario;
  /** Record the time series too. */
  readonly series: boolean;
  /** Post {@linkcode RunProgress} messages while the point runs. */
  readonly progress?: boolean;
}

/** An error as it crosses from a worker. */
export interface WorkerError {
  /** Error class name. */
  readonly name: string;
  /** The message (without the " (CODE)" suffix for an IopfLabError). */
  readonly message: string;
  /** The IopfLabError code, if it was one. */
  readonly code?: ErrorCode;
  /** The IopfLabError location, if any. */
  readonly where?: string;
  /** The stack inside the worker. */
  readonly stack?: string;
}

/** A worker's answer. */
export type WorkerResponse =
  | {
    readonly index: number;
    readonly ok: true;
    readonly result: Metrics | RunResult;
  }
  | { readonly index: number; readonly ok: false; readonly error: WorkerError }
  | {
    readonly index: number;
    readonly ok: "progress";
    readonly progress: RunProgress;
  };

/** Turns a thrown value into its transferable form. */
export function toWorkerError(e: unknown): WorkerError {
  if (e instanceof IopfLabError) {
    const suffix = ` (${e.code})`;
    const message = e.message.endsWith(suffix)
      ? e.message.slice(0, -suffix.length)
      : e.message;
    return {
      name: e.name,
      message,
      code: e.code,
      ...(e.where === undefined ? {} : { where: e.where }),
      ...(e.stack === undefined ? {} : { stack: e.stack }),
    };
  }
  if (e instanceof Error) {
    return {
      name: e.name,
      message: e.message,
      ...(e.stack === undefined ? {} : { stack: e.stack }),
    };
  }
  return { name: "Error", message: String(e) };
}

/** Rebuilds an error that crossed from a worker. */
export function fromWorkerError(e: WorkerError, scenarioName: string): Error {
  if (e.code !== undefined) {
    const err = new IopfLabError(e.code, e.message, e.where);
    if (e.stack !== undefined) err.stack = e.stack;
    return err;
  }
  return otherWorkerError(e, scenarioName);
}

/**
 * The error of a failed sweep point, saying which point: an IopfLabError's
 * message gains the point's name (its swept values) unless it names it
 * already; the code and field stay. Errors of single runs pass unchanged.
 */
function pointError(e: unknown, scenario: Scenario): unknown {
  if (!(e instanceof IopfLabError) || scenario.sweepPoint === undefined) {
    return e;
  }
  const msg = bareMessage(e);
  if (msg.includes(scenario.name)) return e;
  const err = new IopfLabError(
    e.code,
    `sweep point ${scenario.name}: ${msg}`,
    e.where,
  );
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

function otherWorkerError(e: WorkerError, scenarioName: string): Error {
  const err = new Error(
    `Cannot run scenario ${
      JSON.stringify(scenarioName)
    }: ${e.name}: ${e.message}`,
  );
  if (e.stack !== undefined) {
    err.stack = `${err.message}\n(in the worker) ${e.stack}`;
  }
  return err;
}

async function runAll<T>(
  scenarios: readonly Scenario[],
  seriesOf: boolean | readonly boolean[],
  options: RunSweepOptions,
): Promise<T[]> {
  const wants = (i: number): boolean =>
    typeof seriesOf === "boolean" ? seriesOf : seriesOf[i]!;
  const total = scenarios.length;
  const results = new Array<T>(total);
  if (total === 0) return results;
  const worker = options.worker ?? options.pool?.worker ?? DEFAULT_WORKER;
  if (
    options.pool !== undefined && String(worker) !== String(options.pool.worker)
  ) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot run the sweep: its worker script ${worker} is not the pool's (${options.pool.worker})`,
    );
  }
  const hw = options.pool?.size ??
    Math.max(1, navigator.hardwareConcurrency ?? 1);
  const workers = Math.min(options.workers ?? hw, total);
  if (!Number.isInteger(workers) || workers < 0) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot run the sweep: workers must be a whole number >= 0, got ${workers}`,
    );
  }
  const t0 = performance.now();
  let done = 0;
  const completed = (index: number): void => {
    done++;
    options.onResult?.(index, results[index] as Metrics | RunResult);
    const elapsedMs = performance.now() - t0;
    options.onProgress?.({
      done,
      total,
      index,
      name: scenarios[index]!.name,
      elapsedMs,
      etaMs: (elapsedMs / done) * (total - done),
    });
  };
  const signal = options.signal;
  const onRunProgress = options.onRunProgress;

  if (workers === 0) {
    const mod: RunnerModule = options.runner ?? simulator;
    for (let i = 0; i < total; i++) {
      if (signal !== undefined) {
        // Let a signal handler run between points.
        await new Promise((r) => setTimeout(r, 0));
        signal.throwIfAborted();
      }
      const s = scenarios[i]!;
      const series = wants(i);
      let result: Metrics | RunResult;
      try {
        result = onRunProgress
          ? runWithProgress(mod, s, series, (p) => onRunProgress(i, p))
          : series
          ? mod.runScenarioWithSeries(s)
          : mod.runScenario(s);
      } catch (e) {
        throw pointError(e, s);
      }
      results[i] = withSweepPoint(result, s) as T;
      completed(i);
    }
    return results;
  }

  return await new Promise<T[]>((resolve, reject) => {
    const shared = options.pool;
    const pool: Worker[] = shared ? shared.take(workers) : [];
    let next = 0;
    let inFlight = 0;
    let settled = false;
    let failure: { index: number; error: Error } | undefined;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (shared) {
        shared.give(pool, error !== undefined);
      } else for (const w of pool) w.terminate();
      if (error !== undefined) reject(error);
      else if (failure) reject(failure.error);
      else resolve(results);
    };
    const onAbort = (): void => settle(signal!.reason);
    if (signal?.aborted) {
      settle(signal.reason);
      return;
    }
    signal?.addEventListener("abort", onAbort);
    const dispatch = (w: Worker): void => {
      if (failure !== undefined || next >= total) {
        if (inFlight === 0) settle();
        return;
      }
      const index = next++;
      inFlight++;
      const request: WorkerRequest = {
        index,
        scenario: scenarios[index]!,
        series: wants(index),
        ...(onRunProgress ? { progress: true } : {}),
      };
      if (shared) shared.post(w, request);
      else w.postMessage(request);
    };
    for (let k = 0; k < workers; k++) {
      const w = shared ? pool[k]! : newWorker(worker);
      w.onmessage = (ev: MessageEvent<WorkerResponse>) => {
        const msg = ev.data;
        if (msg.ok === "progress") {
          if (!settled) onRunProgress?.(msg.index, msg.progress);
          return;
        }
        inFlight--;
        if (msg.ok) {
          results[msg.index] = withSweepPoint(
            msg.result,
            scenarios[msg.index]!,
          ) as T;
          completed(msg.index);
        } else if (failure === undefined || msg.index < failure.index) {
          failure = {
            index: msg.index,
            error: pointError(
              fromWorkerError(msg.error, scenarios[msg.index]!.name),
              scenarios[msg.index]!,
            ) as Error,
          };
        }
        dispatch(w);
      };
      w.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        settle(
          new Error(`Cannot run the sweep: a worker failed: ${ev.message}`),
        );
      };
      w.onmessageerror = () => {
        settle(
          new Error(
            "Cannot run the sweep: a worker's result could not be received",
          ),
        );
      };
      if (!shared) pool.push(w);
    }
    for (const w of pool) dispatch(w);
  });
}

/** The worker's global scope, as far as {@linkcode serveRunner} uses it. */
interface WorkerScope {
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse): void;
}

/**
 * Makes the calling module worker run the points {@linkcode runSweep} sends
 * it with `runner`, posting back each result or error (with its code), and
 * progress reports when asked. A worker script for the `worker` option is
 * one static import of its runner and one call of this.
 *
 * @example
 * ```ts ignore
 * // my_worker.ts, used as runSweep(points, { worker: new URL("./my_worker.ts", import.meta.url) })
 * import { serveRunner } from "./sweep.ts";
 * import * as runner from "./my_runner.ts";
 * serveRunner(runner);
 * ```
 */
export function serveRunner(runner: RunnerModule): void {
  const scope = self as unknown as WorkerScope;
  scope.onmessage = (ev) => {
    const { index, scenario, series, progress } = ev.data;
    let response: WorkerResponse;
    try {
      const result = progress
        ? runWithProgress(
          runner,
          scenario,
          series,
          (p) => scope.postMessage({ index, ok: "progress", progress: p }),
        )
        : series
        ? runner.runScenarioWithSeries(scenario)
        : runner.runScenario(scenario);
      response = { index, ok: true, result };
    } catch (e) {
      response = { index, ok: false, error: toWorkerError(e) };
    }
    scope.postMessage(response);
  };
}

/**
 * Runs `s` with progress reports (through runScenarioWithSeries, whose
 * metrics are runScenario's).
 */
export function runWithProgress(
  mod: RunnerModule,
  s: Scenario,
  series: boolean,
  onProgress: (p: RunProgress) => void,
): Metrics | RunResult {
  const r = mod.runScenarioWithSeries(s, { onProgress });
  return series ? r : r.metrics;
}

/** Adds the scenario's sweep point to its metrics if the runner left it out. */
function withSweepPoint(
  result: Metrics | RunResult,
  scenario: Scenario,
): Metrics | RunResult {
  if (scenario.sweepPoint === undefined) return result;
  if ("metrics" in result) {
    const metrics = withSweepPoint(result.metrics, scenario) as Metrics;
    return metrics === result.metrics ? result : { ...result, metrics };
  }
  if (result.sweepPoint !== undefined) return result;
  return { ...result, sweepPoint: scenario.sweepPoint };
}

/** Options of {@linkcode progressReporter}. */
export interface ProgressReporterOptions {
  /** Where the text goes. [stderr] */
  readonly write?: (text: string) => void;
  /** Draw a bar redrawn in place (for a terminal) instead of a line per point. [Deno.stderr.isTerminal()] */
  readonly terminal?: boolean;
}

/**
 * A progress callback for {@linkcode runSweep} that writes to stderr: a
 * progress bar when stderr is a terminal, otherwise one plain line per
 * completed point (`[3/8] name (1.2 s, ETA 2.0 s)`; no ETA on the last).
 */
export function progressReporter(
  options: ProgressReporterOptions = {},
): (progress: SweepProgress) => void {
  const terminal = options.terminal ?? Deno.stderr.isTerminal();
  const write = options.write ?? writeStderr;
  return (p) => {
    const secs = `${(p.elapsedMs / 1000).toFixed(1)} s`;
    const eta = p.done < p.total ? `ETA ${formatWallTime(p.etaMs)}` : "";
    if (!terminal) {
      write(
        `[${p.done}/${p.total}] ${p.name} (${secs}${eta ? `, ${eta}` : ""})\n`,
      );
      return;
    }
    const width = 24;
    const filled = Math.round((width * p.done) / p.total);
    const name = p.name.length > 48 ? p.name.slice(0, 47) + "…" : p.name;
    write(
      `\r[${"#".repeat(filled)}${
        "-".repeat(width - filled)
      }] ${p.done}/${p.total} ${secs}${eta ? ` ${eta}` : ""} ${name}\x1b[K`,
    );
    if (p.done === p.total) write("\n");
  };
}

/** Wall-clock milliseconds as "4.2 s", "3.5 min" or "1.2 h" (for progress lines). */
export function formatWallTime(ms: number): string {
  if (!Number.isFinite(ms)) return "unknown";
  const s = Math.max(0, ms) / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}
