/**
 * The report through the results database: a second run reuses every
 * stored run and writes the same CSV files byte for byte; `fresh` reruns.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main, type ReportIo } from "../../cli/report.ts";
import {
  type Experiment,
  reportSuite,
  runReport,
  type RunReportOptions,
} from "../../lib/report/mod.ts";
import { ResultsDb } from "../../lib/results/mod.ts";

/** A tiny experiment that records series and tabulates them. */
const SERIES: Experiment = {
  id: "tiny-series",
  title: "Tiny",
  question: "Do stored series come back?",
  shows: "A table of series rows.",
  series: true,
  sets: [{
    json: {
      name: "tiny",
      vm: { memory: "32MiB" },
      dma: { mode: "iopf" },
      workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
      sweep: { "dma.premapPages": [1, 16] },
    },
  }],
  analyse: (runs) => ({
    figures: [],
    tables: [{
      id: "tiny-series-rows",
      title: "Series",
      rows: runs.flatMap((r) => r.series.map((row) => ({ ...row }))),
    }],
    findings: [],
  }),
};

function csvFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.endsWith(".csv")) {
      out.set(e.name, Deno.readTextFileSync(join(dir, e.name)));
    }
  }
  return out;
}

Deno.test("runReport with a results database reuses stored runs; the CSVs stay byte-identical", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-report-db-" });
  try {
    const db = ResultsDb.open(join(dir, "r.sqlite"));
    const base: RunReportOptions = {
      experiments: [
        reportSuite({ quick: true }).find((e) => e.id === "fault-latency")!,
        SERIES,
      ],
      workers: 0,
      log: () => {},
      progress: false,
    };
    const plain = await runReport({ ...base, out: join(dir, "plain") });
    const first = await runReport({ ...base, out: join(dir, "a"), db });
    const second = await runReport({ ...base, out: join(dir, "b"), db });
    const fresh = await runReport({
      ...base,
      out: join(dir, "c"),
      db,
      fresh: true,
    });
    assert.equal(plain.reused, 0);
    assert.equal(first.reused, 0);
    assert.ok(second.runs > 0);
    assert.equal(second.reused, second.runs);
    assert.equal(fresh.reused, 0);
    assert.equal(db.count(), first.runs);
    const want = csvFiles(join(dir, "plain"));
    assert.ok(want.size >= 4);
    assert.ok(want.get("tiny-series-rows.csv")!.split("\n").length > 3);
    for (const d of ["a", "b", "c"]) {
      assert.deepEqual(csvFiles(join(dir, d)), want, d);
    }
    // The SVG figures come out the same from stored series too.
    for (const f of second.figures) {
      assert.equal(
        Deno.readTextFileSync(f.svg),
        Deno.readTextFileSync(f.svg.replace(`${dir}/b/`, `${dir}/plain/`)),
        f.id,
      );
    }
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("deno task report --db refuses a file that is not a results database (exit 2)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-report-db-" });
  try {
    const junk = join(dir, "junk.sqlite");
    Deno.writeTextFileSync(junk, "this is not a database\n".repeat(10));
    let stderr = "";
    const io: ReportIo = {
      stdout: () => {},
      stderr: (t) => void (stderr += t),
      progress: false,
    };
    const rc = await main(
      ["--quick", "--out", join(dir, "o"), "--db", junk],
      io,
    );
    assert.equal(rc, 2, stderr);
    assert.match(
      stderr,
      /^report: Cannot open the results database .*junk\.sqlite/,
    );
    assert.equal(stderr.trimEnd().split("\n").length, 1);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
