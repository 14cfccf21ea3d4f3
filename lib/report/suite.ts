/**
 * The built-in experiment suite of `deno task report`: each experiment is a
 * question a user asks, a set of scenarios that the real model runs, and an
 * analysis that turns the runs' metrics and time series into tidy tables,
 * figures and a few sentences of findings. No number is typed in: every
 * value in a table or a figure is read off a simulated run (or, for the
 * fault latency breakdown, priced from the cost profile and closed by the
 * measured total). Each experiment lives in its own file under
 * `experiments/`; the types they share are in `experiment.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentScenarios } from "./experiment.ts";
 * import { reportSuite } from "./suite.ts";
 * const suite = reportSuite({ quick: true });
 * assert.equal(suite.length, 9);
 * assert(experimentScenarios(suite[0]!).every((s) => s.workload.kind === "boot"));
 * ```
 *
 * @module
 */
import type { Experiment, SuiteOptions } from "./experiment.ts";
import { acceleratorSlowdown } from "./experiments/accelerator_slowdown.ts";
import { alternatives } from "./experiments/alternatives.ts";
import { faultLatency } from "./experiments/fault_latency.ts";
import { lazyInvalidation } from "./experiments/lazy_invalidation.ts";
import { notifierMemory } from "./experiments/notifier_memory.ts";
import { priQueue } from "./experiments/pri_queue.ts";
import { rampUp } from "./experiments/ramp_up.ts";
import { rfcVsMainline } from "./experiments/rfc_vs_mainline.ts";
import { startTime } from "./experiments/start_time.ts";

/** The nine experiments of the report, full or quick. */
export function reportSuite(options: SuiteOptions = {}): Experiment[] {
  const quick = options.quick ?? false;
  return [
    startTime(quick),
    faultLatency(quick),
    acceleratorSlowdown(quick),
    rampUp(quick),
    priQueue(quick),
    notifierMemory(quick),
    lazyInvalidation(quick),
    alternatives(quick),
    rfcVsMainline(quick),
  ];
}
