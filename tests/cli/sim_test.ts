import assert from "node:assert/strict";
import { renderOutput, writeCsvFile } from "../../cli/sim.ts";
import { runSim as sim } from "./_run.ts";
import { parseSimArgs } from "../../cli/_args.ts";
import { metricsFromCsv } from "../../lib/experiment/csv.ts";
import { sampleMetrics } from "../experiment/_sample.ts";

/** Asserts exit 2 with exactly one line on stderr matching `pattern`, nothing on stdout. */
function assertUsageError(
  r: { code: number; stdout: string; stderr: string },
  pattern: RegExp,
): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.ok(r.stderr.endsWith("\n"), JSON.stringify(r.stderr));
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

Deno.test("parseSimArgs reads the path and options", () => {
  assert.deepEqual(parseSimArgs(["s.json"]), {
    help: false,
    file: "s.json",
    json: false,
    check: false,
    noLimit: false,
    all: false,
  });
  assert.deepEqual(
    parseSimArgs([
      "--json",
      "s.json",
      "--csv",
      "o.csv",
      "--check",
      "--workers=2",
      "--no-limit",
    ]),
    {
      help: false,
      file: "s.json",
      json: true,
      check: true,
      noLimit: true,
      all: false,
      csv: "o.csv",
      workers: 2,
    },
  );
  assert.deepEqual(parseSimArgs(["--csv=o.csv", "--", "-odd.json"]), {
    help: false,
    file: "-odd.json",
    json: false,
    check: false,
    noLimit: false,
    all: false,
    csv: "o.csv",
  });
  assert.deepEqual(parseSimArgs(["-h"]), { help: true });
});

Deno.test("a run estimated above the work or memory limit exits 2 naming the field; --no-limit runs it", async (t) => {
  const dir = Deno.makeTempDirSync();
  const run = async (
    scenario: unknown,
    args: string[] = [],
    limits?: { cpuSeconds: number; memoryBytes: number },
  ) => {
    const file = `${dir}/s.json`;
    Deno.writeTextFileSync(file, JSON.stringify(scenario));
    const r = await sim([file, ...args], limits ? { limits } : {});
    return { code: r.code, err: r.stderr, out: r.stdout };
  };
  const cases: [string, unknown, RegExp][] = [
    [
      "CPU time",
      {
        vm: { memory: "1GiB" },
        dma: { mode: "iopf" },
        workload: { kind: "random", workingSet: "512MiB", accesses: 1e9 },
      },
      /^.*s\.json: workload\.accesses: this run would take about [0-9.]+ min of CPU \(1\.00e\+9 pages of random accesses\), above the limit of about 10\.0 min; make it smaller, or pass --no-limit to run it anyway\n$/,
    ],
    [
      "a PRI retry storm",
      {
        host: { memory: "16GiB" },
        vm: { memory: "8GiB" },
        device: { fault: "pri", dmaSlots: 512, priCapacity: 256 },
        smmu: { priqEntries: 4 },
        dma: { mode: "iopf" },
        workload: {
          kind: "random",
          workingSet: "4GiB",
          accesses: 2e6,
          queueDepth: 512,
        },
      },
      /^.*s\.json: smmu\.priqEntries: this run would take about [0-9.]+ min of CPU \(6\.47e\+8 automatic PRI responses \(PRI queue overflow\)\), above the limit of about 10\.0 min; raise it to 256 \(the device can have 256 page requests outstanding\) or lower device\.priCapacity, or pass --no-limit to run it anyway\n$/,
    ],
    [
      "model memory",
      {
        host: { memory: "16TiB" },
        vm: { memory: "16TiB" },
        dma: { mode: "static-pin" },
      },
      /^.*s\.json: vm\.memory: this run would need about [0-9.]+ GiB of memory for the model's state \(4\.29e\+9 guest pages pinned at 4 KiB\), more than the [0-9.]+ GiB allowed/,
    ],
  ];
  try {
    for (const [what, scenario, pattern] of cases) {
      await t.step(what, async () => {
        const r = await run(scenario);
        assert.equal(r.code, 2);
        assert.match(r.err, pattern);
        assert.equal(r.err.trimEnd().split("\n").length, 1);
      });
    }
    await t.step(
      "--no-limit runs a scenario that is over the limits",
      async () => {
        const small = {
          vm: { memory: "256MiB" },
          workload: { kind: "accelerator", messageSize: "64KiB", messages: 2 },
        };
        const tiny = { cpuSeconds: 1e-9, memoryBytes: 1 };
        const refused = await run(small, ["--json"], tiny);
        assert.equal(refused.code, 2);
        assert.match(refused.err, /vm\.memory: this run would need/);
        const ran = await run(small, ["--json", "--no-limit"], tiny);
        assert.equal(ran.code, 0, ran.err);
        assert.equal(JSON.parse(ran.out).dmaBytes, 2 * 2 * 64 * 1024);
      },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bad arguments exit 2 with one line on stderr", async (t) => {
  const cases: [string, string[], RegExp][] = [
    [
      "no arguments",
      [],
      /^sim: missing the scenario file \(usage: deno task sim/,
    ],
    [
      "unknown option",
      ["s.json", "--frobnicate"],
      /^sim: unknown option "--frobnicate"/,
    ],
    [
      "option without its value",
      ["s.json", "--csv"],
      /^sim: --csv needs a value/,
    ],
    [
      "option value that is an option",
      ["s.json", "--csv", "--json"],
      /^sim: --csv needs a value/,
    ],
    [
      "flag with a value",
      ["s.json", "--json=yes"],
      /^sim: --json takes no value/,
    ],
    [
      "two files",
      ["a.json", "b.json"],
      /^sim: expected one scenario file, got 2: "a.json" "b.json"/,
    ],
    [
      "bad worker count",
      ["s.json", "--workers", "many"],
      /^sim: --workers: expected a whole number from 0 to 256, got "many"/,
    ],
    [
      "csv into a missing directory",
      ["s.json", "--csv", "/nonexistent/dir/o.csv"],
      /^sim: --csv \/nonexistent\/dir\/o\.csv: the directory \/nonexistent\/dir does not exist/,
    ],
  ];
  for (const [what, args, pattern] of cases) {
    await t.step(what, async () => assertUsageError(await sim(args), pattern));
  }
});

Deno.test("--help prints the usage and exits 0", async () => {
  const r = await sim(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^usage: deno task sim <scenario\.json>/);
});

Deno.test("bad scenario files exit 2, name the field, and write no CSV", async (t) => {
  const dir = Deno.makeTempDirSync();
  const csv = `${dir}/out.csv`;
  const write = (name: string, text: string) => {
    Deno.writeTextFileSync(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const cases: [string, () => string, RegExp][] = [
    [
      "missing file",
      () => `${dir}/none.json`,
      /none\.json: cannot read the scenario file: no such file \(ENOENT\)\n$/,
    ],
    ["a directory", () => dir, /cannot read the scenario file/],
    [
      "bad JSON",
      () =>
        write("syntax.json", '{\n  "vm": {"memory": "4GiB"},\n  "seed": \n}'),
      /syntax\.json:4:1: invalid JSON: unexpected character "}" \(EINVAL\)\n$/,
    ],
    [
      "not an object",
      () => write("array.json", "[]"),
      /array\.json: scenario: expected an object, got an array/,
    ],
    [
      "unknown field",
      () => write("unknown.json", '{"vm": {"memroy": "4GiB"}}'),
      /unknown\.json: vm\.memroy: unknown field \(known: memory, count\)/,
    ],
    [
      "bad size",
      () =>
        write(
          "size.json",
          '{"workload": {"kind": "accelerator", "messageSize": "1 MB?"}}',
        ),
      /size\.json: workload\.messageSize: expected a size like "1MiB", got "1 MB\?"/,
    ],
    [
      "bad sweep value",
      () => write("sweep.json", '{"sweep": {"vm.memory": ["4GiB", "lots"]}}'),
      /sweep\.json: sweep\.vm\.memory\[1\]: expected a size/,
    ],
    [
      "bad trace",
      () => {
        write(
          "t.csv",
          "time_ns,stream,op,iova,size\n0,0,w,0,4096\n1,0,q,0,4096\n",
        );
        return write(
          "trace.json",
          '{"workload": {"kind": "trace", "file": "t.csv"}}',
        );
      },
      /trace\.json: t\.csv:3: op: expected "r", "w", "read" or "write", got "q"/,
    ],
  ];
  try {
    for (const [what, file, pattern] of cases) {
      await t.step(what, async () => {
        for (const extra of [[], ["--json"], ["--csv", csv]]) {
          const r = await sim([file(), ...extra]);
          assertUsageError(r, pattern);
          assert.throws(() => Deno.statSync(csv), Deno.errors.NotFound);
        }
      });
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes("tmp")
      ),
      [],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("renderOutput prints JSON objects, arrays for sweeps, or a table", () => {
  const one = sampleMetrics("one");
  const json = renderOutput(one, { json: true });
  assert.deepEqual(JSON.parse(json), one);
  assert.ok(json.endsWith("}\n"));
  const two = [sampleMetrics("a"), sampleMetrics("b")];
  assert.deepEqual(JSON.parse(renderOutput(two, { json: true })), two);
  const table = renderOutput(two, { json: false });
  assert.match(table, /^name +a +b\n/);
  assert.match(table, /\nfaults\.total +1,024 +1,024\n/);
});

Deno.test("writeCsvFile writes the whole file and leaves no temporary", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const rows = [sampleMetrics("a"), sampleMetrics("b", 2)];
    writeCsvFile(`${dir}/m.csv`, rows);
    assert.deepEqual(
      metricsFromCsv(Deno.readTextFileSync(`${dir}/m.csv`)),
      rows,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.csv"]);
    assert.throws(() => writeCsvFile(`${dir}/no/m.csv`, rows));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.csv"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the command exits 2 through Deno.exit with one stderr line", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/bad.json`, '{"host": {"backing": "2m"}}');
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        new URL("../../cli/sim.ts", import.meta.url).pathname,
        `${dir}/bad.json`,
        "--csv",
        `${dir}/out.csv`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.equal(new TextDecoder().decode(out.stdout), "");
    assert.equal(
      stderr,
      `${dir}/bad.json: host.backing: expected one of "4k", "thp", "hugetlb-2m", "hugetlb-1g", got "2m" (EINVAL)\n`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "bad.json",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
