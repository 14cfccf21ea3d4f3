/**
 * Wall time of the full report (`deno task report`, every experiment at
 * full size) in this process. It takes minutes, so bench/run.ts runs it
 * only when named: `deno task bench report`. Target: 90 s on the 2-core
 * machine class (bench/_targets.ts).
 *
 * @module
 */
import { runReport } from "../lib/report/mod.ts";

Deno.bench({
  name: "report (full) end to end",
  group: "report",
  n: 1,
  warmup: 0,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "iopf-lab-bench-report-" });
    try {
      await runReport({ out, quick: false, progress: false, log: () => {} });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
