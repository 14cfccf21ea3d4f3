/**
 * Running scenarios through the results database: {@linkcode runStored}
 * takes the stored result of every point whose key and model version match,
 * runs only the others on the sweep's workers, stores them, and gives back
 * every point's result in order, as `runSweep` / `runSweepWithSeries`
 * would.
 *
 * @module
 */
import type { Metrics } from "../experiment/metrics.ts";
import type { Scenario } from "../experiment/config.ts";
import {
  type RunResult,
  runSweep,
  type RunSweepOptions,
  runSweepWithSeries,
} from "../experiment/sweep.ts";
import { scenarioKey } from "./canonical.ts";
import type { ResultsDb } from "./store.ts";

/** Options of {@linkcode runStored}. */
export interface RunStoredOptions extends RunSweepOptions {
  /** The database to read and write; without one every point runs. */
  readonly db?: ResultsDb;
  /** Run every point even when a result is stored (and store the new ones). [false] */
  readonly fresh?: boolean;
  /** Record (and require stored) time series and per-VM outcomes. [false] */
  readonly series?: boolean;
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
  const { db, fresh = false, series = false, ...sweep } = options;
  const results = new Array<RunResult>(scenarios.length);
  const keys = db ? scenarios.map(scenarioKey) : [];
  const todo: number[] = [];
  scenarios.forEach((_, i) => {
    const stored = db && !fresh ? db.getByKey(keys[i]!, { series }) : undefined;
    if (stored === undefined) {
      todo.push(i);
      return;
    }
    results[i] = {
      metrics: stored.metrics,
      series: series ? [...(stored.series ?? [])] : [],
      ...(series && stored.vms ? { vms: stored.vms } : {}),
    };
  });
  const points = todo.map((i) => scenarios[i]!);
  const store = (k: number, r: Metrics | RunResult): void => {
    if (!db) return;
    const s = scenarios[todo[k]!]!;
    if ("metrics" in r) {
      db.put(s, series ? r : { metrics: r.metrics });
    } else db.put(s, { metrics: r });
  };
  const runOptions: RunSweepOptions = {
    ...sweep,
    onResult: (k, r) => {
      store(k, r);
      sweep.onResult?.(todo[k]!, r);
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
    const ran: RunResult[] = series
      ? await runSweepWithSeries(points, runOptions)
      : (await runSweep(points, runOptions)).map((m) => ({
        metrics: m,
        series: [],
      }));
    ran.forEach((r, k) => results[todo[k]!] = r);
  }
  return {
    results,
    reused: scenarios.length - points.length,
    ran: points.length,
  };
}
