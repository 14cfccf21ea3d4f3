import assert from "node:assert/strict";
import {
  executeNotebook,
  formatNotebook,
  inspectNotebook,
  type Notebook,
  stripNotebook,
} from "../../cli/_jupyter.ts";

const executed = (): Notebook => ({
  cells: [
    { cell_type: "markdown", source: "# t" },
    {
      cell_type: "code",
      source: "x",
      execution_count: 3,
      outputs: [
        { output_type: "display_data", data: { "image/svg+xml": "<svg/>" } },
        {
          output_type: "display_data",
          data: { "text/html": ["<table>", "</table>"] },
        },
        { output_type: "error", ename: "Error", evalue: "boom" },
      ],
    },
  ],
  metadata: { iopf_lab: { expects_figures: 2 } },
  nbformat: 4,
  nbformat_minor: 5,
});

Deno.test("inspectNotebook counts figures, tables and errors", () => {
  const r = inspectNotebook("t.ipynb", executed());
  assert.equal(r.figures, 1);
  assert.equal(r.tables, 1);
  assert.deepEqual(r.errors, ["Error: boom"]);
  assert.equal(r.expectedFigures, 2);
  assert.equal(r.attempts, 1);
});

Deno.test("executeNotebook refuses fewer than one attempt", async () => {
  await assert.rejects(
    executeNotebook("x.ipynb", { jupyterPath: "/nonexistent", attempts: 0 }),
    /attempts must be a whole number >= 1.*EINVAL/,
  );
});

Deno.test("stripNotebook drops outputs and counts; formatNotebook writes 1-space JSON", () => {
  const nb = stripNotebook(executed());
  assert.deepEqual(nb.cells[1]!.outputs, []);
  assert.equal(nb.cells[1]!.execution_count, null);
  assert.equal(nb.cells[0]!.outputs, undefined, "markdown cells untouched");
  const text = formatNotebook(nb);
  assert.ok(text.startsWith('{\n "cells": [') && text.endsWith("}\n"));
  assert.deepEqual(JSON.parse(text), nb);
});
