import assert from "node:assert/strict";
import { runSweep } from "../../lib/experiment/mod.ts";
import { ResultsDb, runStored } from "../../lib/results/mod.ts";
import { tinyPoints } from "./_tiny.ts";

Deno.test("runStored runs what is missing, then reuses it; --fresh reruns", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const points = tinyPoints();
    const direct = await runSweep(points, { workers: 0 });
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    const some = await runStored(points.slice(0, 2), { db, workers: 0 });
    assert.deepEqual([some.ran, some.reused], [2, 0]);
    const seen: number[] = [];
    const all = await runStored(points, {
      db,
      workers: 0,
      onResult: (i) => void seen.push(i),
    });
    assert.deepEqual([all.ran, all.reused], [2, 2]);
    assert.deepEqual(seen.sort(), [2, 3]);
    assert.equal(
      JSON.stringify(all.results.map((r) => r.metrics)),
      JSON.stringify(direct),
    );
    const fresh = await runStored(points, { db, workers: 0, fresh: true });
    assert.deepEqual([fresh.ran, fresh.reused], [4, 0]);
    assert.equal(db.count(), 4);
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runStored with series stores and gives back the time series", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const points = tinyPoints().slice(1, 2);
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    await runStored(points, { db, workers: 0 });
    const first = await runStored(points, { db, workers: 0, series: true });
    assert.equal(first.ran, 1, "a stored run without series does not count");
    assert.ok(first.results[0]!.series.length > 0);
    const again = await runStored(points, { db, workers: 0, series: true });
    assert.equal(again.reused, 1);
    assert.equal(
      JSON.stringify(again.results[0]!.series),
      JSON.stringify(first.results[0]!.series),
    );
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runStored without a database runs everything", async () => {
  const r = await runStored(tinyPoints().slice(0, 1), { workers: 0 });
  assert.deepEqual([r.ran, r.reused], [1, 0]);
});

Deno.test("runStored with a series flag per point: each point as asked, stored ones reported first", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const points = tinyPoints();
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    // Point 0 stored with metrics only, point 1 with its series.
    await runStored(points.slice(0, 1), { db, workers: 0 });
    await runStored(points.slice(1, 2), { db, workers: 0, series: true });
    const flags = [false, true, true, false];
    const seen: [number, boolean][] = [];
    const mixed = await runStored(points, {
      db,
      workers: 0,
      series: flags,
      onStored: (i, r, stored) => {
        assert.equal(r.series.length > 0, flags[i]);
        seen.push([i, stored]);
      },
    });
    assert.deepEqual([mixed.ran, mixed.reused], [2, 2]);
    // The stored ones at once, then the others as they ran.
    assert.deepEqual(seen, [[0, true], [1, true], [2, false], [3, false]]);
    assert.deepEqual(
      mixed.results.map((r) => r.series.length > 0),
      flags,
    );
    // Metrics are those of a run of each point alone.
    const alone = await runSweep(points, { workers: 0 });
    assert.equal(
      JSON.stringify(mixed.results.map((r) => r.metrics)),
      JSON.stringify(alone),
    );
    await assert.rejects(
      runStored(points, { workers: 0, series: [true] }),
      /1 series flags for 4 points/,
    );
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
