import assert from "node:assert/strict";
import { runSweep } from "../../lib/experiment/mod.ts";
import {
  mergeShards,
  type ModelVersion,
  modelVersion,
  parseShard,
  resolveShard,
  type Shard,
  shardFileName,
  shardFileText,
  shardIndices,
  type ShardSource,
} from "../../lib/results/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { parseScenario } from "../../lib/experiment/mod.ts";
import { TINY_SWEEP, tinyPoints, tinySweep } from "./_tiny.ts";

function einval(pattern: RegExp) {
  return (e: unknown) =>
    e instanceof IopfLabError && e.code === "EINVAL" && pattern.test(e.message);
}

Deno.test("parseShard reads K/N with K from 1", () => {
  assert.deepEqual(parseShard("1/1"), { index: 1, count: 1 });
  assert.deepEqual(parseShard("3/4"), { index: 3, count: 4 });
});

Deno.test("parseShard refuses K>N, K<1, N<1, non-numbers and other shapes", () => {
  assert.throws(() => parseShard("5/4"), einval(/K must be from 1 to N.*5\/4/));
  assert.throws(() => parseShard("0/4"), einval(/K must be from 1 to N.*0\/4/));
  assert.throws(() => parseShard("1/0"), einval(/N must be from 1/));
  assert.throws(
    () => parseShard("-1/4"),
    einval(/--shard K: expected a whole number, got "-1"/),
  );
  assert.throws(
    () => parseShard("a/4"),
    einval(/--shard K: expected a whole number/),
  );
  assert.throws(
    () => parseShard("1/x"),
    einval(/--shard N: expected a whole number/),
  );
  assert.throws(() => parseShard("1.5/4"), einval(/expected a whole number/));
  assert.throws(() => parseShard("3"), einval(/expected K\/N/));
  assert.throws(() => parseShard("1/2/3"), einval(/expected K\/N/));
  assert.throws(
    () => parseShard("1/20000"),
    einval(/N must be from 1 to 10000/),
  );
});

Deno.test("resolveShard reads a Slurm job array", () => {
  // --array=0-3: ids 0..3, K = id - min + 1.
  assert.deepEqual(
    resolveShard("auto", {
      SLURM_ARRAY_TASK_ID: "2",
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_COUNT: "4",
    }),
    { index: 3, count: 4 },
  );
  // --array=1-4
  assert.deepEqual(
    resolveShard("auto", {
      SLURM_ARRAY_TASK_ID: "4",
      SLURM_ARRAY_TASK_MIN: "1",
      SLURM_ARRAY_TASK_COUNT: "4",
    }),
    { index: 4, count: 4 },
  );
  assert.throws(
    () =>
      resolveShard("auto/5", {
        SLURM_ARRAY_TASK_ID: "1",
        SLURM_ARRAY_TASK_COUNT: "4",
      }),
    einval(/SLURM_ARRAY_TASK_COUNT is 4, not 5/),
  );
  assert.throws(
    () =>
      resolveShard("auto", {
        SLURM_ARRAY_TASK_ID: "x",
        SLURM_ARRAY_TASK_COUNT: "4",
      }),
    einval(/SLURM_ARRAY_TASK_ID: expected a whole number, got "x"/),
  );
});

Deno.test("resolveShard reads a Kubernetes Indexed Job's index, N given", () => {
  assert.deepEqual(
    resolveShard("auto/3", { JOB_COMPLETION_INDEX: "0" }),
    { index: 1, count: 3 },
  );
  assert.deepEqual(
    resolveShard("auto/3", { JOB_COMPLETION_INDEX: "2" }),
    { index: 3, count: 3 },
  );
  assert.throws(
    () => resolveShard("auto/3", { JOB_COMPLETION_INDEX: "3" }),
    einval(/K from JOB_COMPLETION_INDEX\): K must be from 1 to N/),
  );
  assert.throws(
    () => resolveShard("auto", { JOB_COMPLETION_INDEX: "0" }),
    einval(/give the count as --shard auto\/N/),
  );
  assert.throws(
    () => resolveShard("auto/3", {}),
    einval(/neither SLURM_ARRAY_TASK_ID/),
  );
});

Deno.test("shardIndices: the shards of N cover every point exactly once", () => {
  for (const n of [1, 2, 3, 7, 10]) {
    const all = Array.from(
      { length: n },
      (_, k) => shardIndices(7, { index: k + 1, count: n }),
    )
      .flat().sort((a, b) => a - b);
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6], `N=${n}`);
  }
  assert.deepEqual(shardIndices(7, { index: 2, count: 3 }), [1, 4]);
  assert.equal(shardFileName({ index: 2, count: 12 }), "shard-02-of-12.json");
});

async function shardSources(
  n: number,
  version: ModelVersion = modelVersion(),
  scenario = tinySweep(),
): Promise<ShardSource[]> {
  const points = tinyPoints();
  const out: ShardSource[] = [];
  for (let k = 1; k <= n; k++) {
    const shard: Shard = { index: k, count: n };
    const mine = shardIndices(points.length, shard).map((i) => points[i]!);
    const metrics = await runSweep(mine, { workers: 0 });
    out.push({
      path: `d/${shardFileName(shard)}`,
      text: shardFileText(scenario, points, shard, metrics, version),
    });
  }
  return out;
}

Deno.test("mergeShards gives every point in sweep order, as one run does", async () => {
  const whole = await runSweep(tinyPoints(), { workers: 0 });
  for (const n of [1, 3, 4]) {
    const merged = mergeShards((await shardSources(n)).reverse());
    assert.equal(merged.single, false);
    assert.equal(
      JSON.stringify(merged.points.map((p) => p.metrics)),
      JSON.stringify(whole),
      `N=${n}`,
    );
  }
});

Deno.test("mergeShards refuses a missing shard, another scenario, another model version", async () => {
  const three = await shardSources(3);
  assert.throws(
    () => mergeShards([three[0]!, three[2]!]),
    einval(/missing shard 2 of 3 \(found 2\)/),
  );
  assert.throws(() => mergeShards([]), einval(/no shard files given/));
  const other = await shardSources(3, { ...modelVersion(), id: "model-other" });
  assert.throws(
    () =>
      mergeShards([three[0]!, three[1]!, { ...other[2]!, path: "e/x.json" }]),
    einval(/e\/x\.json was run by another model version/),
  );
  const wider = parseScenario({ ...TINY_SWEEP, seed: 4 });
  const alien = await shardSources(3, modelVersion(), wider);
  assert.throws(
    () =>
      mergeShards([three[0]!, { ...alien[1]!, path: "f/y.json" }, three[2]!]),
    einval(/f\/y\.json is a shard of another scenario/),
  );
  const two = await shardSources(2);
  assert.throws(
    () => mergeShards([three[0]!, two[1]!]),
    einval(/is shard 2 of 2, but d\/shard-1-of-3\.json is of 3/),
  );
});

Deno.test("mergeShards refuses damaged or foreign files", async () => {
  const [one] = await shardSources(1);
  assert.throws(
    () => mergeShards([{ path: "cut.json", text: one!.text.slice(0, 100) }]),
    einval(/cut\.json is not JSON/),
  );
  assert.throws(
    () => mergeShards([{ path: "m.json", text: '{"runNs": 1}' }]),
    einval(/m\.json is not a shard file/),
  );
  const f = JSON.parse(one!.text);
  f.points[0].metrics.runNs += 1;
  f.points[1].scenario.seed = 99;
  assert.throws(
    () => mergeShards([{ path: "t.json", text: JSON.stringify(f) }]),
    einval(/t\.json: point 1 is damaged/),
  );
  f.points.pop();
  assert.throws(
    () => mergeShards([{ path: "p.json", text: JSON.stringify(f) }]),
    einval(/p\.json should hold points 0, 1, 2, 3/),
  );
});
