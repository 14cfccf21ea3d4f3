/**
 * The accelerator calibration against the RFC v2 1 MiB table (the
 * `rfc-v2-*` rows of data/calibration.json, shown with the model's values
 * in docs/CALIBRATION.md, which tests/cli/calibration_test.ts keeps
 * current): the two fitted rows must come out at their published speed,
 * and the validated speeds keep the shape the hardware shows.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CalibrationResult,
  loadCalibration,
  runCalibration,
} from "../../lib/analysis/calibration.ts";

const table = loadCalibration();
const ids = table.rows.filter((r) => r.id.startsWith("rfc-v2-1m-")).map((
  r,
) => r.id);

Deno.test("accelerator calibration: the fitted RFC v2 rows and the shape of the rest", () => {
  const results = runCalibration(table, {
    ids: ids.filter((id) => !id.endsWith("-faults")),
  });
  const byId = new Map<string, CalibrationResult>(
    results.map((r) => [r.row.id, r]),
  );
  const fitted = results.filter((r) => r.row.role === "fitted");
  assert.deepEqual(fitted.map((r) => r.row.fits).sort(), [
    "accel.enginePer4k",
    "accel.firstMessage",
  ]);
  for (const r of fitted) {
    assert.ok(
      Math.abs(r.error) < 0.002,
      `${r.row.id}: fitted row ${r.model} vs published ${r.row.published}`,
    );
  }
  // The shape the hardware shows: IOPF costs most at one message and
  // fades as the buffer is reused (the faults are paid once).
  const times = [1, 100, 1000, 5000];
  const ratio = times.map((t) =>
    byId.get(`rfc-v2-1m-t${t}-iopf`)!.model /
    byId.get(`rfc-v2-1m-t${t}-static`)!.model
  );
  for (let i = 1; i < ratio.length; i++) assert.ok(ratio[i]! > ratio[i - 1]!);
  // From 100 messages on, the validated speeds are within 10 %.
  for (const t of times.slice(1)) {
    for (const mode of ["static", "iopf"]) {
      const r = byId.get(`rfc-v2-1m-t${t}-${mode}`)!;
      assert.ok(Math.abs(r.error) < 0.1, `${r.row.id}: error ${r.error}`);
    }
  }
});

Deno.test("accelerator calibration: one message buffer pair faults each page once", () => {
  for (const r of runCalibration(table, { ids: ["rfc-v2-1m-t1-faults"] })) {
    assert.equal(r.model, 512, "two 1 MiB buffers of 4 KiB pages");
  }
});
