/**
 * Shards for real: `deno task sim FILE --shard K/N --out DIR` run as
 * separate processes under GNU parallel (as a Slurm array or a Kubernetes
 * Indexed Job would run them), then `deno task merge`; the merged JSON, CSV
 * and results database are byte for byte those of one run on one machine.
 * GNU parallel is the Debian package `parallel` (.ci/run installs it);
 * without it this test is skipped with a loud warning, unless
 * IOPF_LAB_REQUIRE_PARALLEL=1 (CI), where it fails.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath as fromFileUrl } from "node:url";
import { writeScenario } from "./_shard_scenario.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const REQUIRE = Deno.env.get("IOPF_LAB_REQUIRE_PARALLEL") === "1";
const DENO = Deno.execPath();
const PERMS = ["--allow-read", "--allow-write", "--allow-env"];

async function hasParallel(): Promise<boolean> {
  try {
    const o = await new Deno.Command("parallel", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return o.success &&
      new TextDecoder().decode(o.stdout).startsWith("GNU parallel");
  } catch {
    return false;
  }
}

const PARALLEL = await hasParallel();
if (!PARALLEL) {
  console.warn(
    [
      "",
      "!!! GNU parallel is not installed: the shard test cannot run its shards.",
      REQUIRE
        ? "!!! IOPF_LAB_REQUIRE_PARALLEL=1, so this is a test FAILURE."
        : '!!! The test "shards under GNU parallel" is SKIPPED.',
      "!!! Install it from Debian: sudo apt-get install -y parallel",
      "",
    ].join("\n"),
  );
}

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
) {
  const o = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return {
    code: o.code,
    stdout: dec.decode(o.stdout),
    stderr: dec.decode(o.stderr),
  };
}

/** The runs table without its row ids and timestamps, and the metrics table by key. */
function dump(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const runs = db.prepare(
      `SELECT scenario_key, model_version, name, seed, scenario, metrics, series, vms,
              commit_id, cost_profile_sha256, runtime FROM runs ORDER BY scenario_key`,
    ).all();
    const metrics = db.prepare(
      `SELECT scenario_key, key, value, text FROM metrics JOIN runs ON runs.id = run_id
        ORDER BY scenario_key, key`,
    ).all();
    return JSON.stringify({ runs, metrics });
  } finally {
    db.close();
  }
}

Deno.test({
  name:
    "shards under GNU parallel merge into exactly one machine's JSON, CSV and database",
  ignore: !PARALLEL && !REQUIRE,
  async fn() {
    assert.ok(
      PARALLEL,
      "GNU parallel is required (IOPF_LAB_REQUIRE_PARALLEL=1): apt-get install -y parallel",
    );
    const dir = Deno.makeTempDirSync({ prefix: "iopf-parallel-" });
    try {
      const file = writeScenario(dir);
      const sim = [DENO, "run", ...PERMS, "cli/sim.ts", file];
      const merge = [DENO, "run", ...PERMS, "cli/merge.ts"];

      const one = await run(sim[0]!, [
        ...sim.slice(1),
        "--json",
        "--csv",
        `${dir}/one.csv`,
        "--db",
        `${dir}/one.sqlite`,
      ]);
      assert.equal(one.code, 0, one.stderr);

      // Three shards, each its own process, two at a time.
      const shards = await run("parallel", [
        "--jobs",
        "2",
        "--halt",
        "now,fail=1",
        ...sim,
        "--shard",
        "{}/3",
        "--out",
        `${dir}/shards`,
        ":::",
        "1",
        "2",
        "3",
      ]);
      assert.equal(shards.code, 0, shards.stderr);
      assert.deepEqual(
        [...Deno.readDirSync(`${dir}/shards`)].map((e) => e.name).sort(),
        ["shard-1-of-3.json", "shard-2-of-3.json", "shard-3-of-3.json"],
      );
      const m = await run(merge[0]!, [
        ...merge.slice(1),
        `${dir}/shards`,
        "--json",
        "--csv",
        `${dir}/m.csv`,
        "--db",
        `${dir}/m.sqlite`,
      ]);
      assert.equal(m.code, 0, m.stderr);
      assert.equal(m.stdout, one.stdout, "merged --json");
      assert.ok(JSON.parse(m.stdout).length === 6);
      assert.equal(
        Deno.readTextFileSync(`${dir}/m.csv`),
        Deno.readTextFileSync(`${dir}/one.csv`),
        "merged --csv",
      );
      assert.equal(
        dump(`${dir}/m.sqlite`),
        dump(`${dir}/one.sqlite`),
        "merged --db",
      );
      assert.equal(JSON.parse(dump(`${dir}/one.sqlite`)).runs.length, 6);

      // The same as a Kubernetes Indexed Job's pods: K from JOB_COMPLETION_INDEX (0-based), N given.
      const k8s = await run("parallel", [
        "--jobs",
        "2",
        "--halt",
        "now,fail=1",
        `JOB_COMPLETION_INDEX={} ${
          sim.join(" ")
        } --shard auto/2 --out ${dir}/k8s`,
        ":::",
        "0",
        "1",
      ]);
      assert.equal(k8s.code, 0, k8s.stderr);
      const mk = await run(merge[0]!, [
        ...merge.slice(1),
        `${dir}/k8s`,
        "--json",
      ]);
      assert.equal(
        mk.stdout,
        one.stdout,
        "merged from JOB_COMPLETION_INDEX shards",
      );

      // A missing shard: exit 2, one line naming it.
      Deno.removeSync(`${dir}/shards/shard-2-of-3.json`);
      const missing = await run(merge[0]!, [
        ...merge.slice(1),
        `${dir}/shards`,
        "--json",
      ]);
      assert.equal(missing.code, 2);
      assert.equal(missing.stdout, "");
      assert.match(
        missing.stderr,
        /^merge: Cannot merge the shards: missing shard 2 of 3 \(found 2\)/,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
