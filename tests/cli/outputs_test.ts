/**
 * Outputs never overwrite inputs, and the commands end cleanly at the
 * edges of the shell: a closed pipe, an output path that is a file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../../cli/sim.ts";
import { main as reportMain } from "../../cli/report.ts";
import { sameFile, writeFileAtomic } from "../../cli/_paths.ts";

const root = new URL("../..", import.meta.url).pathname;

function capture() {
  let out = "", err = "";
  return {
    io: {
      stdout: (t: string) => void (out += t),
      stderr: (t: string) => void (err += t),
      progress: false,
    },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

const SCENARIO = JSON.stringify({
  vm: { memory: "256MiB" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 2 },
});

Deno.test("sim --csv refuses every spelling of an input file and leaves it intact", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const s = join(dir, "s.json");
    Deno.writeTextFileSync(s, SCENARIO);
    Deno.symlinkSync(s, join(dir, "link.json"));
    Deno.linkSync(s, join(dir, "hard.json"));
    Deno.mkdirSync(join(dir, "sub"));
    const trace = join(dir, "t.csv");
    Deno.copyFileSync(
      join(root, "data/traces/accelerator_two_phase.csv"),
      trace,
    );
    const t = join(dir, "t.json");
    Deno.writeTextFileSync(
      t,
      JSON.stringify({
        vm: { memory: "1GiB" },
        workload: { kind: "trace", file: "t.csv" },
      }),
    );
    const cases: [string, string][] = [
      [s, s],
      [s, join(dir, "sub/../s.json")],
      [s, join(dir, "link.json")],
      [s, join(dir, "hard.json")],
      [t, trace],
    ];
    for (const [scenario, csv] of cases) {
      const before = Deno.readTextFileSync(csv);
      const c = capture();
      const rc = await main([scenario, "--csv", csv], c.io);
      assert.equal(rc, 2, `${csv}: ${c.err}`);
      assert.match(
        c.err,
        /^sim: --csv .*which this run reads; refusing to overwrite an input\n$/,
      );
      assert.equal(Deno.readTextFileSync(csv), before);
    }
    // A fresh target works, and no temporary file is left behind.
    const c = capture();
    assert.equal(await main([s, "--csv", join(dir, "out.csv")], c.io), 0);
    assert(Deno.readTextFileSync(join(dir, "out.csv")).startsWith("name,"));
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes(".tmp-")
      ),
      [],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("sameFile sees through symlinks and hard links; writeFileAtomic replaces whole", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const a = join(dir, "a");
    writeFileAtomic(a, "one");
    Deno.symlinkSync(a, join(dir, "b"));
    Deno.linkSync(a, join(dir, "c"));
    writeFileAtomic(join(dir, "d"), new Uint8Array([1, 2]));
    assert(sameFile(a, join(dir, "b")) && sameFile(a, join(dir, "c")));
    assert(!sameFile(a, join(dir, "d")) && !sameFile(a, join(dir, "nope")));
    writeFileAtomic(a, "two");
    assert.equal(Deno.readTextFileSync(a), "two");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("sim on a closed pipe (| head) ends with status 0 and no stack trace", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const s = join(dir, "big.json");
    Deno.writeTextFileSync(
      s,
      JSON.stringify({
        vm: { memory: "256MiB" },
        workload: { kind: "accelerator", messageSize: "64KiB", messages: 2 },
        sweep: { seed: Array.from({ length: 40 }, (_, i) => i + 1) },
      }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(root, "cli/sim.ts"),
        s,
        "--json",
        "--workers",
        "0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await child.stdout.cancel(); // the reader goes away at once
    const [status, err] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assert.equal(status.code, 0, err);
    assert.doesNotMatch(err, /BrokenPipe|internal error|at /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("report --out refuses a file and a directory holding its inputs (exit 2)", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = join(dir, "file");
    Deno.writeTextFileSync(file, "keep");
    for (const out of [file, join(root, "data/traces")]) {
      const c = capture();
      const rc = await reportMain(["--quick", "--out", out], c.io);
      assert.equal(rc, 2, c.err);
      assert.match(
        c.err,
        /^report: --out .*(is a file|holds .*which this run reads)/,
      );
    }
    assert.equal(Deno.readTextFileSync(file), "keep");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
