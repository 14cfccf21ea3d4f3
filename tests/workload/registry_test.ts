import assert from "node:assert/strict";
import {
  createWorkload,
  WORKLOAD_KINDS,
  WORKLOADS,
} from "../../lib/workload/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";

const ENV = {
  vmMemory: 2 ** 30,
  baseDir: Deno.cwd(),
  traces: new Map(),
};

Deno.test("each workload kind resolves its own fields and builds its own workload", () => {
  const costs = loadCostProfile({});
  for (const kind of WORKLOAD_KINDS) {
    const spec = WORKLOADS[kind];
    assert.equal(spec.kind, kind);
    if (kind === "trace") continue; // needs a file (tests/experiment/trace_test.ts)
    const config = spec.resolve({ kind }, ENV);
    assert.equal(config.kind, kind);
    // The config holds exactly the kind's fields, defaults filled.
    assert.deepEqual(
      Object.keys(config).filter((k) => k !== "kind").sort(),
      Object.keys(spec.fields).sort(),
    );
    const w = createWorkload(config, { costs, ramBase: 0 });
    assert.equal(w.kind, kind);
  }
});

Deno.test("a workload resolver names workload.<field> in its errors", () => {
  assert.throws(
    () => WORKLOADS.accelerator.resolve({ messageSize: "1 MB?" }, ENV),
    /^IopfLabError: workload\.messageSize: expected a size like "1MiB"/,
  );
  assert.throws(
    () => WORKLOADS.storage.resolve({ blockSize: "2GiB" }, ENV),
    /workload\.blockSize: a block \(2 GiB\) must fit in vm\.memory \(1 GiB\)/,
  );
});
