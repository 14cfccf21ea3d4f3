import assert from "node:assert/strict";
import { calibrationFingerprint } from "../../cli/calibration.ts";
import {
  calibrationMarkdown,
  calibrationRowLine,
  fingerprintLine,
  loadCalibration,
  runCalibration,
} from "../../lib/analysis/calibration.ts";
import { describeCosts } from "../../lib/sim/costs.ts";

const DOC = new URL("../../docs/CALIBRATION.md", import.meta.url);

/** Rows cheap enough to rerun every time (about a second together). */
const SPOT_CHECK = [
  "qemu-prealloc-256g-1t",
  "populate-hugetlb-4g",
  "jordan-8167m-hugetlb-16g",
  "jordan-8167m-hugetlb-16g-prefaulted",
  "jordan-epyc-hugetlb-16g",
  "lizhe-map-hugetlb-16g",
  "rfc-v2-1m-t1-static",
  "rfc-v2-1m-t1-faults",
];

Deno.test("docs/CALIBRATION.md is what deno task calibration writes", async () => {
  const doc = Deno.readTextFileSync(DOC);
  const table = loadCalibration();
  const fp = await calibrationFingerprint();
  if (doc.includes(fingerprintLine(fp))) {
    // Written from exactly these inputs: rerun a few rows to check the
    // numbers are the command's.
    for (const r of runCalibration(table, { ids: SPOT_CHECK })) {
      assert.ok(
        doc.includes(calibrationRowLine(r) + "\n"),
        `row ${r.row.id} differs from the model: ${calibrationRowLine(r)}`,
      );
    }
    return;
  }
  // The inputs changed since: the whole table must still come out the same
  // (then only the fingerprint is stale: rewrite it to make this test fast).
  const fresh = calibrationMarkdown(runCalibration(table), table, fp);
  const strip = (s: string) =>
    s.replace(/<!-- calibration inputs: [0-9a-f]* -->/, "");
  assert.equal(
    strip(doc),
    strip(fresh),
    "docs/CALIBRATION.md is stale: run deno task calibration --write",
  );
});

Deno.test("every fitted parameter holds the value its figure implies", () => {
  // read from the doc, which the test above keeps current
  const doc = Deno.readTextFileSync(DOC);
  const fits = doc.split("## Fitted parameters")[1]!.split("## Machines")[0]!;
  let n = 0;
  for (const line of fits.split("\n")) {
    const m = /^\| `([\w.]+)` \| [^|]+ \| ([\w.-]+) \| ([\d.]+) \| ([\d.]+) \|/
      .exec(line);
    if (!m) continue;
    n++;
    const implied = Number(m[3]), used = Number(m[4]);
    assert.ok(
      Math.abs(used / implied - 1) < 0.01,
      `${m[1]} (row ${m[2]}): ${used} used, ${implied} implied`,
    );
  }
  const fitted = loadCalibration().rows.filter((r) => r.role === "fitted");
  assert.equal(n, fitted.length);
});

Deno.test("the default profile's prealloc row is within 35 %", () => {
  const [r] = runCalibration(loadCalibration(), {
    ids: ["qemu-prealloc-256g-1t"],
  });
  assert.ok(r && Math.abs(r.error) < 0.35, `error ${r?.error}`);
  // and it is a fit: the profile holds the value the figure implies
  assert.ok(Math.abs(r.fit!.used / r.fit!.implied - 1) < 0.01);
});

Deno.test("every fitted cost names a fitted row of the table, and back", () => {
  const table = loadCalibration();
  const costs = describeCosts();
  const rows = new Map(table.rows.map((r) => [r.id, r]));
  for (const [name, p] of Object.entries(costs)) {
    const m = /^fitted \(docs\/CALIBRATION\.md row ([\w.-]+)\)/.exec(p.source);
    if (!m) continue;
    const row = rows.get(m[1]!);
    assert.ok(row, `${name} names row ${m[1]}, which is not in the table`);
    assert.equal(row.role, "fitted", `${name}: row ${row.id}`);
    assert.equal(row.fits, name, `${name}: row ${row.id} fits ${row.fits}`);
  }
  for (const row of table.rows) {
    if (row.role !== "fitted") continue;
    const machine = row.machine ? table.machines[row.machine]! : undefined;
    if (machine && Object.hasOwn(machine.costs, row.fits!)) continue;
    const source = costs[row.fits as keyof typeof costs].source;
    assert.ok(
      source.startsWith(`fitted (docs/CALIBRATION.md row ${row.id})`),
      `row ${row.id} fits ${row.fits}, whose source does not say so: ${source}`,
    );
  }
});

Deno.test("a malformed row is EINVAL naming the row and field", () => {
  const t = loadCalibration();
  const row = t.rows[0]!;
  const bad = (patch: Record<string, unknown>) => ({
    ...t,
    rows: [{ ...row, ...patch }],
  });
  assert.throws(
    () => runCalibration(bad({ unit: "furlongs" }) as typeof t),
    /unit/,
  );
  assert.throws(
    () => runCalibration(bad({ unit: "KiB/s" }) as typeof t),
    /bytes/,
  );
  assert.throws(
    () => runCalibration(bad({ role: "validated" }) as typeof t),
    /fits/,
  );
  assert.throws(
    () => runCalibration(bad({ machine: "cray-1" }) as typeof t),
    /machine/,
  );
});
