import assert from "node:assert/strict";
import { formatRunProgress } from "../../cli/sim.ts";

const SIM = new URL("../../cli/sim.ts", import.meta.url).pathname;

/**
 * Starts `deno task sim` on `args`, sends SIGINT once stderr shows `when`,
 * and returns its status and output.
 */
async function interrupt(args: string[], when: RegExp) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", SIM, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  let stderr = "";
  let sent = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (!sent && when.test(stderr)) {
      child.kill("SIGINT");
      sent = true;
    }
  }
  const status = await child.status;
  return { code: status.code, sent, stdout: await stdout, stderr };
}

const RANDOM = {
  vm: { memory: "256MiB" },
  dma: { mode: "iopf" },
  workload: {
    kind: "random",
    accesses: 1_000_000,
    accessSize: "4KiB",
    workingSet: "64MiB",
  },
};

Deno.test("Ctrl-C stops a sweep, keeping the finished points in the CSV", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/s.json`,
      JSON.stringify({
        ...RANDOM,
        name: "sw",
        sweep: { seed: [1, 2, 3, 4, 5, 6, 7, 8] },
      }),
    );
    const csv = `${dir}/out.csv`;
    const r = await interrupt(
      [`${dir}/s.json`, "--workers", "1", "--csv", csv],
      /\[1\/8\]/,
    );
    assert.ok(r.sent, r.stderr);
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stdout, "");
    const m = r.stderr.match(
      /sim: interrupted \(Ctrl-C\): wrote the (\d) of 8 points that had finished to .*out\.csv\n$/,
    );
    assert.ok(m, r.stderr);
    const n = Number(m[1]);
    assert.ok(n >= 1 && n < 8);
    const lines = Deno.readTextFileSync(csv).trim().split("\n");
    assert.equal(lines.length, 1 + n);
    assert.ok(lines[1]!.includes("sw[seed=1]"));
    // No temporary file is left behind.
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["out.csv", "s.json"],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a long single run shows progress on stderr and stops on Ctrl-C", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/s.json`,
      JSON.stringify({
        ...RANDOM,
        workload: { ...RANDOM.workload, accesses: 100_000_000 },
      }),
    );
    const r = await interrupt(
      [`${dir}/s.json`, "--no-limit", "--csv", `${dir}/out.csv`],
      /sim: running: \d+% \(.* of .* moved\), ETA .*, .* elapsed\n/,
    );
    assert.ok(r.sent, r.stderr);
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /sim: interrupted \(Ctrl-C\); nothing written\n$/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "s.json",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("formatRunProgress says what is done, of what, and an ETA", () => {
  assert.equal(
    formatRunProgress({
      phase: "run",
      done: 2.5e6,
      total: 1e7,
      unit: "rows replayed",
      fraction: 0.25,
      simNs: 0,
    }, 3000),
    "running: 25% (2.50e+6 of 1.00e+7 rows replayed), ETA 9.0 s",
  );
  assert.equal(
    formatRunProgress({
      phase: "setup",
      done: 0,
      total: 0,
      unit: "pages pinned",
      fraction: NaN,
      simNs: 0,
    }, 3000),
    "starting the VMs: 0 pages pinned",
  );
});
