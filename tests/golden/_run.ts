import { runScenarioWithSeries } from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import { GOLDEN_CASES } from "./scenarios.ts";

/** Runs every golden case; metrics and series, keyed by case name. */
export function goldenOutputs(): Record<string, unknown> {
  const base = new URL("./", import.meta.url).pathname;
  const out: Record<string, unknown> = {};
  for (const c of GOLDEN_CASES) {
    const s = parseScenario(c.scenario, { baseDir: base });
    const r = runScenarioWithSeries(s, { seriesPoints: 20 });
    out[c.name] = { metrics: r.metrics, series: r.series };
  }
  return out;
}
