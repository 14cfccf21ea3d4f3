import assert from "node:assert/strict";

/**
 * Every notebook's code cells, read in order as one module, type-check
 * against the library: a notebook cannot drift from the API unnoticed, even
 * where Jupyter is not installed.
 */
const dir = new URL("../../notebooks/", import.meta.url);
const notebooks = [...Deno.readDirSync(dir)]
  .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
  .map((e) => e.name)
  .sort();

Deno.test("notebook code type-checks against lib/", async (t) => {
  assert.ok(notebooks.length >= 7);
  for (const name of notebooks) {
    await t.step(name, async () => {
      const nb = JSON.parse(Deno.readTextFileSync(new URL(name, dir))) as {
        cells: { cell_type: string; source: string | string[] }[];
      };
      const code = nb.cells
        .filter((c) => c.cell_type === "code")
        .map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source))
        .join("\n;\n");
      // Next to the notebook, so its relative imports resolve the same way.
      const file = new URL(`.typecheck_${name.replace(/\W/g, "_")}.ts`, dir);
      Deno.writeTextFileSync(file, `${code}\nexport {};\n`);
      try {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["check", "--quiet", file.pathname],
          env: { NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      } finally {
        Deno.removeSync(file);
      }
    });
  }
});
