/**
 * A stand-in runner that counts the points its module instance ran (one
 * instance per worker), for the sweep pool's tests.
 *
 * @module
 */
import { emptyMetrics, type Metrics } from "../../lib/experiment/metrics.ts";
import type { Scenario } from "../../lib/experiment/scenario.ts";
import type { RunResult } from "../../lib/experiment/sweep.ts";

let calls = 0;

/** Metrics whose `runNs` is the number of points this worker ran so far. */
export function runScenario(s: Scenario): Metrics {
  return { ...emptyMetrics(s.name, s.seed), runNs: ++calls };
}

/** The same with an empty series. */
export function runScenarioWithSeries(s: Scenario): RunResult {
  return { metrics: runScenario(s), series: [] };
}
