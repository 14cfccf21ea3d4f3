/**
 * The module worker of {@linkcode runSweep}: imports the runner module named
 * in each request, runs the scenario, and posts back the result or the
 * error (with its code).
 *
 * @module
 */
import type { RunnerModule, WorkerRequest, WorkerResponse } from "./sweep.ts";
import { runWithProgress, toWorkerError } from "./sweep.ts";

/** The worker's global scope, as far as this module uses it. */
interface WorkerScope {
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse): void;
}

const scope = self as unknown as WorkerScope;
const runners = new Map<string, Promise<RunnerModule>>();

scope.onmessage = async (ev) => {
  const { runner, index, scenario, series, progress } = ev.data;
  let response: WorkerResponse;
  try {
    let mod = runners.get(runner);
    if (mod === undefined) {
      mod = import(runner) as Promise<RunnerModule>;
      runners.set(runner, mod);
    }
    const m = await mod;
    const result = progress
      ? runWithProgress(
        m,
        scenario,
        series,
        (p) => scope.postMessage({ index, ok: "progress", progress: p }),
      )
      : series
      ? m.runScenarioWithSeries(scenario)
      : m.runScenario(scenario);
    response = { index, ok: true, result };
  } catch (e) {
    response = { index, ok: false, error: toWorkerError(e) };
  }
  scope.postMessage(response);
};
