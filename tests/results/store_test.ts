import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { runScenario } from "../../lib/experiment/mod.ts";
import {
  type ModelVersion,
  modelVersion,
  ResultsDb,
  scenarioKey,
} from "../../lib/results/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { tinyPoints } from "./_tiny.ts";

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = Deno.makeTempDirSync();
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

function otherVersion(): ModelVersion {
  return { ...modelVersion(), id: "model-other", commit: null };
}

Deno.test(
  "ResultsDb: a stored run comes back with the same metrics in the same key order",
  withDir((dir) => {
    const [s] = tinyPoints();
    const m = runScenario(s!);
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    assert.equal(db.get(s!), undefined);
    db.put(s!, { metrics: m });
    db.close();
    const again = ResultsDb.open(`${dir}/r.sqlite`);
    const got = again.get(s!);
    assert.equal(got?.key, scenarioKey(s!));
    assert.equal(JSON.stringify(got?.metrics), JSON.stringify(m));
    assert.equal(again.count(), 1);
    again.close();
  }),
);

Deno.test(
  "ResultsDb: a run of another model version is not reused, and both are kept",
  withDir((dir) => {
    const [s] = tinyPoints();
    const m = runScenario(s!);
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    db.put(s!, { metrics: m });
    db.close();
    const other = ResultsDb.open(`${dir}/r.sqlite`, {
      version: otherVersion(),
    });
    assert.equal(other.get(s!), undefined);
    other.put(s!, { metrics: { ...m, runNs: 1 } });
    assert.equal(other.get(s!)?.metrics.runNs, 1);
    const rows = other.query(
      "SELECT model_version, value FROM runs JOIN metrics ON run_id = runs.id WHERE key = 'runNs' ORDER BY model_version",
    );
    assert.equal(rows.length, 2);
    other.close();
  }),
);

Deno.test(
  "ResultsDb: metrics are tidy rows SQL can join with the scenario JSON",
  withDir((dir) => {
    const points = tinyPoints();
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    for (const p of points) db.put(p, { metrics: runScenario(p) });
    const rows = db.query(
      `SELECT json_extract(scenario, '$.dma.mode') AS mode,
              json_extract(scenario, '$.vm.memory') AS mem, value
         FROM runs JOIN metrics ON run_id = runs.id
        WHERE key = ? ORDER BY mode, mem`,
      "faults.total",
    );
    assert.deepEqual(rows.map((r) => [r.mode, r.mem]), [
      ["iopf", 32 * 2 ** 20],
      ["iopf", 64 * 2 ** 20],
      ["static-pin", 32 * 2 ** 20],
      ["static-pin", 64 * 2 ** 20],
    ]);
    // Static pinning takes no faults; IOPF does on this workload.
    assert.ok(rows.slice(2).every((r) => r.value === 0));
    assert.ok(rows.slice(0, 2).every((r) => Number(r.value) > 0));
    db.close();
  }),
);

Deno.test(
  "ResultsDb.query cannot change the file",
  withDir((dir) => {
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    assert.throws(
      () => db.query("DELETE FROM runs"),
      (e) => e instanceof IopfLabError && e.code === "EINVAL",
    );
    // ...and the connection still writes afterwards.
    const [s] = tinyPoints();
    db.put(s!, { metrics: runScenario(s!) });
    assert.equal(db.count(), 1);
    db.close();
  }),
);

Deno.test(
  "ResultsDb.open refuses a file that is not a results database",
  withDir((dir) => {
    Deno.writeTextFileSync(
      `${dir}/junk.sqlite`,
      "not sqlite at all ".repeat(20),
    );
    assert.throws(
      () => ResultsDb.open(`${dir}/junk.sqlite`),
      (e) =>
        e instanceof IopfLabError && e.code === "EINVAL" &&
        e.message.includes(`${dir}/junk.sqlite`),
    );
    const other = new DatabaseSync(`${dir}/other.sqlite`);
    other.exec("CREATE TABLE t (x)");
    other.close();
    assert.throws(
      () => ResultsDb.open(`${dir}/other.sqlite`),
      /SQLite file of something else \(tables t/,
    );
    const db = ResultsDb.open(`${dir}/old.sqlite`);
    db.close();
    const raw = new DatabaseSync(`${dir}/old.sqlite`);
    raw.exec("UPDATE meta SET value = '99' WHERE key = 'schema'");
    raw.close();
    assert.throws(
      () => ResultsDb.open(`${dir}/old.sqlite`),
      /schema is version 99/,
    );
  }),
);

Deno.test(
  "ResultsDb.put: a run without series does not replace one with",
  withDir((dir) => {
    const [s] = tinyPoints();
    const m = runScenario(s!);
    const db = ResultsDb.open(`${dir}/r.sqlite`);
    db.put(s!, { metrics: m });
    assert.equal(db.get(s!, { series: true }), undefined);
    db.put(s!, { metrics: m, series: [] });
    assert.ok(db.get(s!, { series: true }));
    db.put(s!, { metrics: m });
    assert.ok(db.get(s!, { series: true }));
    assert.equal(db.count(), 1);
    db.close();
  }),
);
