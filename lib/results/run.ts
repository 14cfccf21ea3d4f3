/**
 * Running scenarios through the results database: {@linkcode runStored}
 * takes the stored result of every point whose key and model version match,
 * runs only the others on the sweep's workers, stores them, and gives back
 * every point's result in order, as `runSweep` / `runSweepWithSeries` /
 * `runSweepMixed` would.
 *
 * @module
 */
import type { Metrics } from "../experiment/metrics.ts";
import type { Scenario } from "../experiment/config.ts";
import {
  type RunResult,
  runSweepMixed,
  type RunSweepOptions,
} from "../experiment/sweep.ts";
import { IopfLabError } from "../sim/errors.ts";
import { scenarioKey } from "./canonical.ts";
import type { ResultsDb } from "./store.ts";

/** Options of {@linkcode runStored}. */
export interface RunStoredOptions extends RunSweepOptions {
  /** The database to read and write; without one every point runs. */
  readonly db?: ResultsDb;
  /** Run every point even when a result is stored (and store the new ones). [false] */
  readonly fresh?: boolean;
  /**
   * Record (and require stored) time series and per-VM outcomes: for every
   * point, or per point (one flag each). [false]
   */
  readonly series?: boolean | readonly boolean[];
  /**
   * Called with each point's result as soon as it is known: at once (before
   * any point runs) for a stored one (`stored` true), as it completes for
   * one that runs.
   */
  readonly onStored?: (
    index: number,
    result: RunResult,
    stored: boolean,
  ) => void;
}

/** What {@linkcode runStored} gives back. */
export interface StoredResults {
  /** Every point's result, in the order given (metrics only unless `series`). */
  readonly results: RunResult[];
  /** How many came from the database. */
  readonly reused: number;
  /** How many ran. */
  readonly ran: number;
}

/**
 * Runs `scenarios` (sweep points), reusing stored results. Progress and
 * result callbacks see only the points that run, with their index in
 * `scenarios`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandSweep, parseScenario } from "../experiment/mod.ts";
 * import { ResultsDb, runStored } from "./mod.ts";
 * const dir = Deno.makeTempDirSync();
 * const db = ResultsDb.open(`${dir}/r.sqlite`);
 * const points = expandSweep(parseScenario({
 *   vm: { memory: "64MiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * }));
 * const first = await runStored(points, { db, workers: 0 });
 * const again = await runStored(points, { db, workers: 0 });
 * assert.deepEqual([first.ran, again.reused], [2, 2]);
 * assert.deepEqual(again.results.map((r) => r.metrics), first.results.map((r) => r.metrics));
 * db.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function runStored(
  scenarios: readonly Scenario[],
  options: RunStoredOptions = {},
): Promise<StoredResults> {
  const { db, fresh = false, series = false, onStored, ...sweep } = options;
  if (typeof series !== "boolean" && series.length !== scenarios.length) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot run the points: ${series.length} series flags for ${scenarios.length} points`,
    );
  }
  const wants = (i: number): boolean =>
    typeof series === "boolean" ? series : series[i]!;
  const results = new Array<RunResult>(scenarios.length);
  const keys = db ? scenarios.map(scenarioKey) : [];
  const todo: number[] = [];
  scenarios.forEach((_, i) => {
    const withSeries = wants(i);
    const stored = db && !fresh
      ? db.getByKey(keys[i]!, { series: withSeries })
      : undefined;
    if (stored === undefined) {
      todo.push(i);
      return;
    }
    results[i] = {
      metrics: stored.metrics,
      series: withSeries ? [...(stored.series ?? [])] : [],
      ...(withSeries && stored.vms ? { vms: stored.vms } : {}),
    };
  });
  for (let i = 0; i < scenarios.length; i++) {
    if (results[i] !== undefined) onStored?.(i, results[i]!, true);
  }
  const points = todo.map((i) => scenarios[i]!);
  // A point's result as runStored gives it back (metrics alone unless it records series).
  const asRun = (r: Metrics | RunResult): RunResult =>
    "metrics" in r ? r : { metrics: r, series: [] };
  const runOptions: RunSweepOptions = {
    ...sweep,
    onResult: (k, r) => {
      const i = todo[k]!;
      if (db) {
        const s = scenarios[i]!;
        if ("metrics" in r) db.put(s, wants(i) ? r : { metrics: r.metrics });
        else db.put(s, { metrics: r });
      }
      sweep.onResult?.(i, r);
      onStored?.(i, asRun(r), false);
    },
    ...(sweep.onProgress
      ? {
        onProgress: (p) => sweep.onProgress!({ ...p, index: todo[p.index]! }),
      }
      : {}),
    ...(sweep.onRunProgress
      ? { onRunProgress: (k, p) => sweep.onRunProgress!(todo[k]!, p) }
      : {}),
  };
  if (points.length > 0) {
    const ran = await runSweepMixed(points, todo.map(wants), runOptions);
    ran.forEach((r, k) => results[todo[k]!] = asRun(r));
  }
  return {
    results,
    reused: scenarios.length - points.length,
    ran: points.length,
  };
}
