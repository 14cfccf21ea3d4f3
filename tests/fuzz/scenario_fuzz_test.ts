/**
 * Random small scenarios over every knob (tests/fuzz/_gen.ts): every
 * workload kind, static pinning, IOPF and the comparison modes, stall and
 * PRI, stage 1, stage 2 and nested, strict and lazy invalidation, queues
 * down to 2 entries, memlock limits down to one page, PRI capacity down to
 * 1, 1 to 8 fault workers, pre-map 1 to 1024 pages, the MMU notifier on or
 * off, 1 to 3 VMs. Each runs with `check: true`. It must either complete
 * with every invariant holding (and no isolation violation in strict mode,
 * and the same metrics when run again), or fail cleanly: an IopfLabError
 * EINVAL naming the field, or ETIMEDOUT when the runner finds the run
 * livelocked (thrashing). A crash (TypeError...), a runaway simulation or
 * any other error fails the property.
 *
 * FUZZ_RUNS=<n> runs n cases per property instead of the CI default, and
 * FUZZ_SEED=<s> changes the seed: `FUZZ_RUNS=2000 deno test -A tests/fuzz/`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Metrics,
  parseScenario,
  runScenario,
  type Scenario,
} from "../../lib/experiment/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  fuzzRuns,
  fuzzSeed,
  scenarioArb,
  traceCsv,
  withEventCap,
} from "./_gen.ts";

/** Every number in the metrics is finite (no NaN or Infinity leaks into the output). */
function assertFinite(v: unknown, path: string): void {
  if (typeof v === "number") {
    assert.ok(Number.isFinite(v), `${path} is ${v}`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => assertFinite(x, `${path}[${i}]`));
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) assertFinite(x, `${path}.${k}`);
  }
}

/** Parses a generated scenario, writing its trace file into `dir`. */
function resolveScenario(
  raw: Record<string, unknown>,
  dir: string,
): Scenario | IopfLabError {
  const json = structuredClone(raw) as Record<string, unknown>;
  const w = json.workload as Record<string, unknown>;
  if (w.kind === "trace") {
    const file = `trace-${crypto.randomUUID()}.csv`;
    Deno.writeTextFileSync(
      `${dir}/${file}`,
      traceCsv(w.rows as Parameters<typeof traceCsv>[0]),
    );
    json.workload = { kind: "trace", file };
  }
  try {
    return parseScenario(json, { baseDir: dir });
  } catch (e) {
    assert.ok(e instanceof IopfLabError, `parse crashed: ${e}`);
    return e;
  }
}

/** Runs a scenario; returns its metrics or the clean error it failed with. */
function run(s: Scenario): Metrics | IopfLabError {
  try {
    return withEventCap(5_000_000, () => runScenario(s));
  } catch (e) {
    if (e instanceof IopfLabError) return e;
    throw e;
  }
}

/** The property: complete with invariants holding, or fail with EINVAL naming a field. */
function checkScenario(raw: Record<string, unknown>, dir: string): void {
  const s = resolveScenario(raw, dir);
  if (s instanceof IopfLabError) {
    assert.equal(s.code, "EINVAL", s.message);
    assert.ok(s.where, `no field named: ${s.message}`);
    return;
  }
  const m = run(s);
  if (m instanceof IopfLabError) {
    if (m.code === "ETIMEDOUT") {
      // A livelock the runner detected (thrashing under overcommit).
      assert.match(m.message, /livelocked: no DMA progress/);
      return;
    }
    assert.equal(m.code, "EINVAL", m.message);
    assert.ok(m.where, `no field named: ${m.message}`);
    return;
  }
  assert.ok(m.invariants && m.invariants.checks > 0, "invariants not checked");
  assert.equal(m.invariants.violations, 0);
  if (s.smmu.invalidation === "strict") {
    assert.equal(
      m.isolationViolations,
      0,
      (m.violationExamples ?? []).join("; "),
    );
  }
  assertFinite(m, "metrics");
  assert.equal(
    JSON.stringify(run(s)),
    JSON.stringify(m),
    "a second run gave other metrics",
  );
}

Deno.test("random scenarios complete with invariants holding or fail cleanly", () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-fuzz-" });
  try {
    fc.assert(
      fc.property(scenarioArb, (raw) => checkScenario(raw, dir)),
      { numRuns: fuzzRuns(250), seed: fuzzSeed() },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
