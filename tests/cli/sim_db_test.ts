/** `deno task sim FILE --db FILE [--fresh]`: stores every point, reuses it, output unchanged. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { runSim } from "./_run.ts";
import { ResultsDb } from "../../lib/results/mod.ts";
import { writeScenario } from "./_shard_scenario.ts";

/** On the calling thread: no worker to start per test. */
const run = (args: string[]) => runSim([...args, "--workers", "0"]);

Deno.test("sim --db stores every point and a second run reads them back with the same output", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-simdb-" });
  try {
    const file = writeScenario(dir);
    const db = `${dir}/r.sqlite`;
    const plain = await run([file, "--json", "--csv", `${dir}/plain.csv`]);
    const first = await run([file, "--json", "--db", db]);
    assert.equal(first.code, 0, first.stderr);
    const raw = ResultsDb.open(db);
    assert.equal(raw.count(), 6);
    raw.close();
    const second = await run([
      file,
      "--json",
      "--db",
      db,
      "--csv",
      `${dir}/second.csv`,
    ]);
    assert.equal(second.stdout, plain.stdout);
    assert.equal(first.stdout, plain.stdout);
    assert.equal(
      Deno.readTextFileSync(`${dir}/second.csv`),
      Deno.readTextFileSync(`${dir}/plain.csv`),
    );
    // The stored rows stand for the runs: tamper with one and it shows...
    const edit = new DatabaseSync(db);
    edit.exec(
      `UPDATE runs SET metrics = json_set(metrics, '$.runNs', 12345) WHERE id = (SELECT min(id) FROM runs)`,
    );
    edit.close();
    const tampered = await run([file, "--json", "--db", db]);
    assert.notEqual(tampered.stdout, plain.stdout);
    assert.match(tampered.stdout, /"runNs": 12345/);
    // ...until --fresh runs everything again and replaces it.
    const fresh = await run([file, "--json", "--db", db, "--fresh"]);
    assert.equal(fresh.stdout, plain.stdout);
    assert.equal(
      (await run([file, "--json", "--db", db])).stdout,
      plain.stdout,
    );

    const bad = await run([file, "--fresh"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--fresh needs --db FILE/);
    Deno.writeTextFileSync(`${dir}/junk.sqlite`, "junk ".repeat(100));
    const junk = await run([file, "--db", `${dir}/junk.sqlite`]);
    assert.equal(junk.code, 2);
    assert.match(
      junk.stderr,
      /^sim: Cannot open the results database .*junk\.sqlite/,
    );
    const nodir = await run([file, "--db", `${dir}/no/r.sqlite`]);
    assert.equal(nodir.code, 2);
    assert.match(nodir.stderr, /--db .*does not exist/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
