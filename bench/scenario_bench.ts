/**
 * Whole scenarios end to end (wall time of one iteration = the named set of
 * runs), with everything a scenario run includes: machine assembly, the
 * isolation sanitizer on every page access, the time series, metrics and
 * teardown.
 *
 * - `example scenario sweep` (baseline): data/scenarios/accelerator_iopf.json,
 *   its 4 sweep points one after the other on the calling thread.
 * - `quick <experiment>` (only with IOPF_BENCH_DETAIL=1): the scenario
 *   points of one experiment of the report's quick suite (lib/report
 *   `reportSuite({ quick: true })`), run one after the other on the calling
 *   thread, then the experiment's analysis (figures built in memory, not
 *   written): where the suite's time goes, one thread.
 * - `report --quick end to end`: `runReport({ quick: true })` as
 *   `deno task report --quick` runs it (sweeps on Web Workers, one per
 *   core), writing the HTML, SVG, PNG and CSV files into a temporary
 *   directory.
 *
 * They take seconds, so each is asked for one sample without warm-up
 * (Deno still calls a bench three times and reports two samples).
 *
 *     deno bench --allow-all bench/scenario_bench.ts
 *
 * @module
 */
import {
  expandSweep,
  loadScenario,
  runScenario,
  runScenarioWithSeries,
  type Scenario,
} from "../lib/experiment/mod.ts";
import {
  experimentScenarios,
  reportSuite,
  type RunOutput,
  runReport,
  supportingScenarios,
} from "../lib/report/mod.ts";

const GROUP = "scenario";
const ONCE = { n: 1, warmup: 0 } as const;

const example = new URL(
  "../data/scenarios/accelerator_iopf.json",
  import.meta.url,
);

Deno.bench({
  name: "example scenario sweep",
  group: GROUP,
  baseline: true,
  ...ONCE,
  fn() {
    const points = expandSweep(loadScenario(example.pathname));
    for (const p of points) runScenario(p);
  },
});

// Opt-in (IOPF_BENCH_DETAIL=1): the end-to-end bench already runs them all.
const detail = Deno.env.get("IOPF_BENCH_DETAIL") === "1";
for (const e of detail ? reportSuite({ quick: true }) : []) {
  Deno.bench({
    name: `quick ${e.id}`,
    group: GROUP,
    ...ONCE,
    fn() {
      const withSeries = (scenario: Scenario): RunOutput => {
        const r = runScenarioWithSeries(scenario);
        return {
          scenario,
          metrics: r.metrics,
          series: r.series,
          ...(r.vms ? { vms: r.vms } : {}),
        };
      };
      const runs: RunOutput[] = experimentScenarios(e).map((scenario) =>
        e.series
          ? withSeries(scenario)
          : { scenario, metrics: runScenario(scenario), series: [] }
      );
      e.analyse(runs, supportingScenarios(e).map(withSeries));
    },
  });
}

Deno.bench({
  name: "report --quick end to end",
  group: GROUP,
  ...ONCE,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "iopf-lab-bench-report-" });
    try {
      await runReport({ out, quick: true, progress: false, log: () => {} });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
