/**
 * Importing the simulator does not load the plotting stack: the module
 * graph (`deno info --json`, static and dynamic imports) of the package root
 * and of every simulator layer's entry holds no Observable Plot, linkedom or
 * resvg, and nothing of lib/plot (but its plain-data row helpers),
 * lib/report or lib/notebook. The sweep worker's imports are static, so the
 * graph (and `deno publish`) sees the simulator it runs.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
) as { exports: Record<string, string> };

/** Every module in the graph of `entry` (a path from the root). */
async function graph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  // npm modules appear as "npm:/name@version" ("npmPackages" lists every
  // package the project resolves, not this graph's).
  return info.modules.map((m) => m.specifier);
}

/** The modules of `specifiers` that belong to the plotting stack. */
function plotting(specifiers: readonly string[]): string[] {
  const lib = new URL("lib/", ROOT).href;
  return specifiers.filter((s) =>
    /observablehq|linkedom|resvg/.test(s) ||
    (s.startsWith(lib) &&
      /^(plot|report|notebook)\//.test(s.slice(lib.length)) &&
      s.slice(lib.length) !== "plot/row.ts")
  );
}

const PLOTTING_ENTRIES = new Set(["./plot", "./report", "./notebook"]);

Deno.test("the root and every simulator layer import no plotting module", async (t) => {
  const entries = Object.entries(config.exports)
    .filter(([key]) => !PLOTTING_ENTRIES.has(key));
  assert.ok(entries.length >= 15, `only ${entries.length} entries`);
  assert.ok(entries.some(([key]) => key === "."));
  assert.ok(entries.some(([key]) => key === "./experiment"));
  for (const [key, target] of entries) {
    await t.step(key, async () => {
      const mods = await graph(target);
      assert.ok(mods.length > 1, `${target}: an empty graph`);
      assert.deepEqual(plotting(mods), [], `${key} (${target}) loads these`);
    });
  }
});

Deno.test("the plot entry's graph holds the plotting stack (the check sees it)", async () => {
  const found = plotting(await graph(config.exports["./plot"]!)).join(" ");
  assert.match(found, /npm:\/?@observablehq\/plot@/);
  assert.match(found, /npm:\/?linkedom@/);
  assert.match(found, /lib\/plot\/figure\.ts/);
});

Deno.test("the sweep worker's graph holds the simulator (static imports)", async () => {
  const mods = await graph("lib/experiment/_worker.ts");
  for (const file of ["run.ts", "machine.ts", "sweep.ts"]) {
    assert.ok(
      mods.includes(new URL(`lib/experiment/${file}`, ROOT).href),
      `lib/experiment/_worker.ts does not reach ${file}`,
    );
  }
  assert.deepEqual(plotting(mods), []);
});
