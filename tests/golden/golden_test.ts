/**
 * Simulated outputs stay byte-identical: every golden case's metrics and
 * time series equal the stored tests/golden/outputs.json. A change that
 * alters the model regenerates them (`deno run -A tests/golden/generate.ts`)
 * and says why; refactors and optimisations never do.
 */
import { strictEqual } from "node:assert/strict";
import { goldenOutputs } from "./_run.ts";

Deno.test("golden: every fixed scenario's JSON output is byte-identical to the stored one", () => {
  const stored = JSON.parse(
    Deno.readTextFileSync(new URL("./outputs.json", import.meta.url)),
  ) as Record<string, unknown>;
  const now = goldenOutputs();
  strictEqual(
    Object.keys(now).join(","),
    Object.keys(stored).join(","),
    "the golden case list changed: regenerate tests/golden/outputs.json",
  );
  for (const [name, value] of Object.entries(now)) {
    strictEqual(
      JSON.stringify(value),
      JSON.stringify(stored[name]),
      `golden case ${name}: simulated output changed`,
    );
  }
});
