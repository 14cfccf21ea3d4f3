/**
 * `deno task sim --shard K/N --out DIR` and `deno task merge`, in process:
 * the merge of the shards is byte for byte the output of one run, and
 * every bad input exits 2 with one line saying what and where.
 */
import assert from "node:assert/strict";
import { type RunOut, runSim as simRun } from "./_run.ts";
import { main as merge, parseMergeArgs } from "../../cli/merge.ts";
import type { IopfLabError } from "../../lib/sim/errors.ts";
import { SHARD_SWEEP, writeScenario } from "./_shard_scenario.ts";

type Out = RunOut;

async function runSim(
  args: string[],
  env: Record<string, string> = {},
): Promise<Out> {
  // On the calling thread: no worker to start (and type-check) per test.
  return await simRun(
    args.includes("--workers") ? args : [...args, "--workers", "0"],
    { env },
  );
}

function runMerge(args: string[]): Out {
  let stdout = "", stderr = "";
  const code = merge(args, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

function assertUsage(r: Out, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-merge-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("shards merged give the JSON, CSV and table of one run, byte for byte", () =>
  withDir(async (dir) => {
    const file = writeScenario(dir);
    const one = await runSim([
      file,
      "--json",
      "--csv",
      `${dir}/one.csv`,
      "--workers",
      "0",
    ]);
    assert.equal(one.code, 0, one.stderr);
    const table = await runSim([file, "--workers", "0"]);
    for (const k of [1, 2, 3, 4]) {
      const r = await runSim([
        file,
        "--shard",
        `${k}/4`,
        "--out",
        `${dir}/sh`,
        "--workers",
        "0",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`shard-${k}-of-4\\.json: shard ${k} of 4, [12] of 6 points`),
      );
    }
    const m = runMerge([`${dir}/sh`, "--json", "--csv", `${dir}/m.csv`]);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.stdout, one.stdout);
    assert.equal(
      Deno.readTextFileSync(`${dir}/m.csv`),
      Deno.readTextFileSync(`${dir}/one.csv`),
    );
    assert.equal(runMerge([`${dir}/sh`]).stdout, table.stdout);
    // --all and --csv - as sim has them.
    const all = await runSim([file, "--workers", "0", "--all"]);
    assert.equal(runMerge([`${dir}/sh`, "--all"]).stdout, all.stdout);
    assert.notEqual(all.stdout, table.stdout);
    assert.equal(
      runMerge([`${dir}/sh`, "--csv", "-"]).stdout,
      Deno.readTextFileSync(`${dir}/one.csv`),
    );
  }));

Deno.test("a single run (no sweep) sharded and merged gives its JSON object", () =>
  withDir(async (dir) => {
    const { sweep: _, ...single } = SHARD_SWEEP;
    const file = writeScenario(dir, single);
    const one = await runSim([file, "--json"]);
    for (const k of [1, 2]) {
      const r = await runSim([file, "--shard", `${k}/2`, "--out", `${dir}/sh`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const m = runMerge([`${dir}/sh`, "--json"]);
    assert.equal(m.code, 0, m.stderr);
    assert.ok(m.stdout.startsWith("{"));
    assert.equal(m.stdout, one.stdout);
  }));

Deno.test("sim --shard: K>N, K<1, non-numbers, missing --out exit 2 naming the flag", () =>
  withDir(async (dir) => {
    const file = writeScenario(dir);
    const out = ["--out", `${dir}/o`];
    assertUsage(
      await runSim([file, "--shard", "5/4", ...out]),
      /^sim: --shard: K must be from 1 to N .*got 5\/4$/m,
    );
    assertUsage(
      await runSim([file, "--shard", "0/4", ...out]),
      /^sim: --shard: K must be from 1 to N .*got 0\/4$/m,
    );
    assertUsage(
      await runSim([file, "--shard", "x/4", ...out]),
      /^sim: --shard K: expected a whole number, got "x"$/m,
    );
    assertUsage(
      await runSim([file, "--shard", "1/four", ...out]),
      /^sim: --shard N: expected a whole number, got "four"$/m,
    );
    assertUsage(
      await runSim([file, "--shard", "2", ...out]),
      /^sim: --shard: expected K\/N/,
    );
    assertUsage(
      await runSim([file, "--shard", "1/2"]),
      /--shard needs --out DIR/,
    );
    assertUsage(
      await runSim([file, "--out", `${dir}/o`]),
      /--out DIR is for a shard's file/,
    );
    assertUsage(
      await runSim([file, "--shard", "1/2", ...out, "--json"]),
      /--json is for the merged sweep/,
    );
    Deno.writeTextFileSync(`${dir}/afile`, "");
    assertUsage(
      await runSim([file, "--shard", "1/2", "--out", `${dir}/afile`]),
      /--out .*afile: is a file, not a directory/,
    );
    assertUsage(
      await runSim([file, "--shard", "auto", ...out]),
      /neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX/,
    );
    assertUsage(
      await runSim([file, "--shard", "auto", ...out], {
        JOB_COMPLETION_INDEX: "1",
      }),
      /give the count as --shard auto\/N/,
    );
    assertUsage(
      await runSim([file, "--shard", "auto/2", ...out], {
        JOB_COMPLETION_INDEX: "2",
      }),
      /JOB_COMPLETION_INDEX\): K must be from 1 to N .*got 3\/2/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "afile",
      "s.json",
    ], "nothing written");
  }));

Deno.test("sim --shard auto reads a Slurm array and a Kubernetes Indexed Job", () =>
  withDir(async (dir) => {
    const file = writeScenario(dir);
    const slurm = await runSim([file, "--shard", "auto", "--out", `${dir}/a`], {
      SLURM_ARRAY_TASK_ID: "7",
      SLURM_ARRAY_TASK_MIN: "5",
      SLURM_ARRAY_TASK_COUNT: "3",
    });
    assert.equal(slurm.code, 0, slurm.stderr);
    assert.match(
      slurm.stdout,
      /shard-3-of-3\.json: shard 3 of 3, 2 of 6 points/,
    );
    const k8s = await runSim([file, "--shard", "auto/3", "--out", `${dir}/a`], {
      JOB_COMPLETION_INDEX: "0",
    });
    assert.match(k8s.stdout, /shard-1-of-3\.json: shard 1 of 3/);
  }));

Deno.test("merge refuses a missing shard, another scenario, another model version, an empty DIR (exit 2)", () =>
  withDir(async (dir) => {
    const file = writeScenario(dir);
    for (const k of [1, 2, 3]) {
      await runSim([file, "--shard", `${k}/3`, "--out", `${dir}/a`]);
    }
    Deno.mkdirSync(`${dir}/b`);
    Deno.renameSync(`${dir}/a/shard-2-of-3.json`, `${dir}/b/shard-2-of-3.json`);
    assertUsage(
      runMerge([`${dir}/a`]),
      /^merge: Cannot merge the shards: missing shard 2 of 3 \(found 2\)/,
    );
    assert.equal(
      runMerge([`${dir}/a`, `${dir}/b`, "--json"]).code,
      0,
      "shards from two directories",
    );

    const other = writeScenario(`${dir}/b`, { ...SHARD_SWEEP, seed: 6 });
    await runSim([other, "--shard", "3/3", "--out", `${dir}/c`]);
    assertUsage(
      runMerge([`${dir}/a`, `${dir}/b`, `${dir}/c`]),
      /c\/shard-3-of-3\.json is a shard of another scenario \(tiny-shards, key [0-9a-f]{12}\)/,
    );

    const path = `${dir}/b/shard-2-of-3.json`;
    const f = JSON.parse(Deno.readTextFileSync(path));
    f.model.id = "model-0000";
    f.model.commit = "0123456789abcdef0123456789abcdef01234567";
    Deno.writeTextFileSync(path, JSON.stringify(f));
    assertUsage(
      runMerge([`${dir}/a`, `${dir}/b`]),
      /b\/shard-2-of-3\.json was run by another model version \(model-0000, commit 0123456789ab/,
    );

    Deno.mkdirSync(`${dir}/empty`);
    assertUsage(
      runMerge([`${dir}/empty`]),
      /^merge: .*empty: holds no shard file \(shard-K-of-N\.json/,
    );
    assertUsage(
      runMerge([`${dir}/nope`]),
      /^merge: .*nope: cannot read the directory/,
    );
    assertUsage(
      runMerge([`${dir}/s.json`]),
      /s\.json: is a file, not a directory of shard files/,
    );
    assertUsage(runMerge([]), /missing the shard directories/);
    assertUsage(runMerge([`${dir}/a`, "--bogus"]), /unknown option "--bogus"/);
    assertUsage(
      runMerge([`${dir}/a`, `${dir}/b`, "--csv", `${dir}/none/x.csv`]),
      /--csv .*does not exist/,
    );
    assert.equal(runMerge(["--help"]).code, 0);
  }));

Deno.test("parseMergeArgs", () => {
  assert.deepEqual(
    parseMergeArgs(["a", "b", "--json", "--csv=x.csv", "--db", "r.sqlite"]),
    {
      help: false,
      dirs: ["a", "b"],
      json: true,
      all: false,
      csv: "x.csv",
      db: "r.sqlite",
    },
  );
  assert.deepEqual(parseMergeArgs(["--", "-d"]), {
    help: false,
    dirs: ["-d"],
    json: false,
    all: false,
  });
  assert.deepEqual(parseMergeArgs(["a", "--all", "--csv", "-"]), {
    help: false,
    dirs: ["a"],
    json: false,
    all: true,
    csv: "-",
  });
  assert.throws(
    () => parseMergeArgs(["a", "--csv", "-", "--json"]),
    (e: IopfLabError) =>
      e.code === "EINVAL" && /both write to stdout/.test(e.message),
  );
  assert.throws(
    () => parseMergeArgs(["a", "--all=yes"]),
    /--all takes no value/,
  );
});
