/**
 * A stand-in runner for sweep tests: metrics computed from the scenario
 * without simulating, and failures on request.
 *
 * @module
 */
import { IopfLabError } from "../../lib/sim/errors.ts";
import { emptyMetrics, type Metrics } from "../../lib/experiment/metrics.ts";
import type { Scenario } from "../../lib/experiment/scenario.ts";
import type { RunResult } from "../../lib/experiment/sweep.ts";

/** Metrics derived from the scenario; "fail" in costs makes it throw. */
export function runScenario(s: Scenario): Metrics {
  if (s.costs["mm.ioctl"] === 13) {
    throw new IopfLabError(
      "ENOMEM",
      `Cannot pin guest RAM of ${s.name}: over the memlock limit`,
    );
  }
  if (s.costs["mm.ioctl"] === 14) throw new TypeError("boom");
  if (s.costs["mm.ioctl"] === 15) {
    throw new IopfLabError("EINVAL", "vm.memory: too small", "vm.memory");
  }
  // Burn a little time, more for earlier points, so completion order varies.
  const spin = (s.seed % 3) * 5;
  const until = Date.now() + spin;
  while (Date.now() < until) { /* spin */ }
  return {
    ...emptyMetrics(s.name, s.seed),
    runNs: s.vm.memory / 4096 + s.seed,
    faults: {
      total: s.seed * 2,
      stage1: 0,
      stage2: s.seed * 2,
      stall: s.seed * 2,
      pri: 0,
    },
  };
}

/** The same with a two-sample series. */
export function runScenarioWithSeries(s: Scenario): RunResult {
  const metrics = runScenario(s);
  const row = {
    name: s.name,
    dmaBytes: 0,
    throughputBytesPerSec: 0,
    faults: 0,
    pinnedPages: 0,
    populatedBytes: 0,
    lockedBytes: 0,
  };
  return {
    metrics,
    series: [{ ...row, tNs: 0 }, {
      ...row,
      tNs: metrics.runNs,
      faults: metrics.faults.total,
    }],
  };
}
