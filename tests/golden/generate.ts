/**
 * Regenerates tests/golden/outputs.json from {@linkcode GOLDEN_CASES}:
 * `deno run -A tests/golden/generate.ts [--check]`. With `--check` it
 * writes nothing and exits 1 naming every case whose output differs.
 *
 * @module
 */
import { goldenOutputs } from "./_run.ts";

const path = new URL("./outputs.json", import.meta.url);
const text = JSON.stringify(goldenOutputs(), null, 1) + "\n";
if (Deno.args.includes("--check")) {
  const stored = JSON.parse(Deno.readTextFileSync(path)) as Record<
    string,
    unknown
  >;
  const now = JSON.parse(text) as Record<string, unknown>;
  const bad = Object.keys({ ...stored, ...now }).filter((k) =>
    JSON.stringify(stored[k]) !== JSON.stringify(now[k])
  );
  if (bad.length > 0) {
    console.error(`golden: ${bad.length} outputs differ: ${bad.join(", ")}`);
    Deno.exit(1);
  }
  console.log(`golden: ${Object.keys(now).length} outputs identical`);
} else {
  Deno.writeTextFileSync(path, text);
  console.log(`golden: wrote ${Object.keys(JSON.parse(text)).length} outputs`);
}
