/**
 * The notebooks: stored without outputs, on the Deno kernel, importing what
 * exists, and executed for real through Jupyter (`jupyter nbconvert
 * --execute`), one step per notebook, each showing at least the figures its
 * metadata promises. Without Jupyter the execution test is skipped with a
 * loud warning, unless IOPF_LAB_REQUIRE_JUPYTER=1 (CI), where it fails.
 */
import assert from "node:assert/strict";
import {
  executeNotebook,
  formatNotebook,
  hasJupyter,
  installKernelspec,
  type Notebook,
  stripNotebook,
} from "../../cli/_jupyter.ts";
import { parseTrace } from "../../lib/experiment/mod.ts";
import {
  formatTraceCsv,
  generateTrace,
  SAMPLE_TRACE,
} from "../../data/traces/generate.ts";

const NOTEBOOKS = new URL("../../notebooks/", import.meta.url);
const APT_GET =
  "sudo apt-get install -y jupyter-nbconvert python3-nbclient jupyter-client";
const REQUIRE_JUPYTER = Deno.env.get("IOPF_LAB_REQUIRE_JUPYTER") === "1";
const JUPYTER = await hasJupyter();

if (!JUPYTER) {
  console.warn(
    [
      "",
      "!!! `jupyter nbconvert` is not installed: the notebooks cannot be executed.",
      REQUIRE_JUPYTER
        ? "!!! IOPF_LAB_REQUIRE_JUPYTER=1, so this is a test FAILURE."
        : '!!! The test "notebooks execute in Jupyter" is SKIPPED.',
      `!!! Install Jupyter from Debian: ${APT_GET}`,
      "",
    ].join("\n"),
  );
}

/** notebooks/*.ipynb, sorted, as paths. */
async function notebookPaths(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(NOTEBOOKS)) {
    if (e.isFile && e.name.endsWith(".ipynb")) {
      out.push(new URL(e.name, NOTEBOOKS).pathname);
    }
  }
  return out.sort();
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

async function readNotebook(path: string): Promise<[string, Notebook]> {
  const text = await Deno.readTextFile(path);
  return [text, JSON.parse(text) as Notebook];
}

function sourceOf(cell: { source: string | string[] }): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

Deno.test("notebooks 01 to 09 are there, every notebook numbered", async () => {
  const names = (await notebookPaths()).map(baseName);
  for (const n of names) {
    assert.match(n, /^[0-9]{2}_[a-z0-9_]+\.ipynb$/, `notebooks/${n}`);
  }
  const numbers = names.map((n) => n.slice(0, 2));
  for (
    const want of ["01", "02", "03", "04", "05", "06", "07", "08", "09"]
  ) {
    assert.ok(numbers.includes(want), `no notebooks/${want}_*.ipynb`);
  }
  assert.equal(new Set(numbers).size, numbers.length, "a number used twice");
});

Deno.test("notebooks in git carry no outputs and no execution counts", async (t) => {
  for (const path of await notebookPaths()) {
    await t.step(baseName(path), async () => {
      const [text, nb] = await readNotebook(path);
      for (const [i, cell] of nb.cells.entries()) {
        if (cell.cell_type !== "code") continue;
        assert.deepEqual(cell.outputs, [], `cell ${i} has saved outputs`);
        assert.equal(
          cell.execution_count,
          null,
          `cell ${i} has an execution count`,
        );
      }
      assert.equal(
        text,
        formatNotebook(stripNotebook(structuredClone(nb))),
        "not in the form `deno task nb --strip` writes",
      );
    });
  }
});

Deno.test("notebook metadata says nbformat 4, the Deno kernel, expects_figures >= 1; the first cell is markdown", async (t) => {
  for (const path of await notebookPaths()) {
    await t.step(baseName(path), async () => {
      const [, nb] = await readNotebook(path);
      assert.equal(nb.nbformat, 4);
      const kernelspec = nb.metadata["kernelspec"] as Record<string, unknown>;
      assert.equal(kernelspec?.["name"], "deno");
      assert.equal(kernelspec?.["language"], "typescript");
      const meta = nb.metadata["iopf_lab"] as
        | { expects_figures?: unknown }
        | undefined;
      const expects = meta?.expects_figures;
      assert.ok(
        Number.isInteger(expects) && (expects as number) >= 1,
        `metadata.iopf_lab.expects_figures must be a whole number >= 1, got ${
          JSON.stringify(expects)
        }`,
      );
      assert.equal(nb.cells[0]?.cell_type, "markdown", "opens with narrative");
    });
  }
});

Deno.test("notebooks 01-09 open with a parameters cell whose knobs later cells use", async (t) => {
  const paths = (await notebookPaths()).filter((p) =>
    /^0[1-9]_/.test(baseName(p))
  );
  assert.equal(paths.length, 9);
  for (const path of paths) {
    await t.step(baseName(path), async () => {
      const [, nb] = await readNotebook(path);
      const code = nb.cells.filter((c) => c.cell_type === "code");
      const first = code[0];
      assert.ok(first, "no code cell");
      const tags = (first.metadata?.["tags"] ?? []) as string[];
      assert.ok(
        tags.includes("parameters"),
        "the first code cell is not tagged parameters",
      );
      const src = sourceOf(first);
      assert.doesNotMatch(src, /\bimport\b/, "the parameters cell imports");
      const names = [...src.matchAll(/^const ([A-Z][A-Z0-9_]*) =/gm)].map((m) =>
        m[1]!
      );
      assert.ok(names.length >= 2, `only ${names.length} parameters`);
      const rest = code.slice(1).map(sourceOf).join("\n");
      for (const name of names) {
        assert.match(
          rest,
          new RegExp(`\\b${name}\\b`),
          `parameter ${name} is not used by any later cell`,
        );
        assert.doesNotMatch(
          rest,
          new RegExp(`\\bconst ${name}\\b`),
          `parameter ${name} is defined again later`,
        );
      }
    });
  }
});

Deno.test("notebook 01 loads a scenario file and compares it with a stored result", async () => {
  const [, nb] = await readNotebook(
    new URL("01_quickstart.ipynb", NOTEBOOKS).pathname,
  );
  const params = sourceOf(nb.cells.find((c) => c.cell_type === "code")!);
  const value = (name: string) =>
    new RegExp(`^const ${name} = "([^"]+)";`, "m").exec(params)?.[1];
  const file = value("SCENARIO_FILE"), stored = value("STORED_RESULTS");
  const storedCase = value("STORED_CASE");
  assert.ok(file && stored && storedCase, params);
  // The files it names exist, and the stored case is in the stored results.
  await Deno.stat(new URL(file, NOTEBOOKS));
  const results = JSON.parse(
    await Deno.readTextFile(new URL(stored, NOTEBOOKS)),
  ) as Record<string, { metrics?: unknown }>;
  assert.ok(results[storedCase]?.metrics, `${stored} has no ${storedCase}`);
  const code = nb.cells.map(sourceOf).join("\n");
  assert.match(code, /loadScenario\(SCENARIO_FILE\)/);
  assert.match(code, /readTextFile\(STORED_RESULTS\)/);
});

Deno.test("notebooks import modules that exist, by relative path", async (t) => {
  for (const path of await notebookPaths()) {
    await t.step(baseName(path), async () => {
      const [, nb] = await readNotebook(path);
      const code = nb.cells.filter((c) => c.cell_type === "code").map(
        sourceOf,
      ).join("\n");
      const specifiers = [...code.matchAll(/from\s+"([^"]+)"/g)].map((m) =>
        m[1]!
      );
      assert.ok(specifiers.length > 0, "imports nothing");
      for (const s of specifiers) {
        assert.ok(s.startsWith("../"), `import ${s}: not relative to lib/`);
        await Deno.stat(new URL(s, NOTEBOOKS)); // throws NotFound
      }
    });
  }
});

Deno.test("data/traces sample is what generate.ts writes, and parses", async () => {
  const text = await Deno.readTextFile(SAMPLE_TRACE);
  assert.equal(
    text,
    formatTraceCsv(generateTrace()),
    "run `deno run --allow-write data/traces/generate.ts` and commit the file",
  );
  const rows = parseTrace(text, "accelerator_two_phase.csv", {
    memory: 128 * 2 ** 20,
  });
  assert.equal(rows.length, 2400);
  assert.ok(rows.every((r) => r.stream === 0));
});

Deno.test({
  name: "notebooks execute in Jupyter on the Deno kernel",
  ignore: !JUPYTER && !REQUIRE_JUPYTER,
  async fn(t) {
    if (!JUPYTER) {
      assert.fail(
        `jupyter nbconvert is not installed and IOPF_LAB_REQUIRE_JUPYTER=1: ${APT_GET}`,
      );
    }
    const jupyterPath = await installKernelspec();
    try {
      // One notebook at a time: each starts its own kernel.
      for (const path of await notebookPaths()) {
        await t.step(baseName(path), async () => {
          const report = await executeNotebook(path, { jupyterPath });
          if (report.attempts > 1) {
            console.warn(
              `${
                baseName(path)
              }: ran ${report.attempts} times (a figure went missing; the Deno kernel's IOPub socket can drop a message)`,
            );
          }
          assert.deepEqual(report.errors, [], "cells failed");
          assert.ok(report.expectedFigures >= 1, "promises no figures");
          assert.ok(
            report.figures >= report.expectedFigures,
            `showed ${report.figures} figures, metadata expects ${report.expectedFigures}`,
          );
          assert.ok(report.tables >= 1, "showed no table");
        });
      }
    } finally {
      await Deno.remove(jupyterPath.replace(/\/jupyter$/, ""), {
        recursive: true,
      });
    }
  },
});
