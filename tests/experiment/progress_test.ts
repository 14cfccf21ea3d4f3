import assert from "node:assert/strict";
import {
  type RunProgress,
  runScenarioWithSeries,
} from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import { runSweep } from "../../lib/experiment/sweep.ts";

function progressOf(json: Record<string, unknown>, baseDir?: string) {
  const s = parseScenario(json, baseDir === undefined ? {} : { baseDir });
  const seen: RunProgress[] = [];
  const withProgress = runScenarioWithSeries(s, {
    onProgress: (p) => seen.push(p),
  });
  // Reporting progress changes nothing the model computes.
  assert.deepEqual(withProgress, runScenarioWithSeries(s));
  return seen;
}

function assertMonotone(seen: readonly RunProgress[]): void {
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1]!, b = seen[i]!;
    assert.ok(b.simNs >= a.simNs);
    if (a.phase === b.phase) assert.ok(b.done >= a.done);
    else assert.equal(b.phase, "run");
  }
}

Deno.test("a run reports the bytes its workload moved of its total", () => {
  const seen = progressOf({
    vm: { memory: "256MiB" },
    dma: { mode: "iopf" },
    workload: { kind: "accelerator", messageSize: "64KiB", messages: 64 },
  });
  assertMonotone(seen);
  const run = seen.filter((p) => p.phase === "run");
  assert.ok(run.length > 2);
  assert.equal(run[0]!.unit, "bytes moved");
  assert.equal(run.at(-1)!.total, 2 * 64 * 65536);
  assert.equal(run.at(-1)!.fraction, 1);
  assert.ok(run.some((p) => p.fraction > 0 && p.fraction < 1));
});

Deno.test("a static pin reports pages pinned while the VM starts", () => {
  const seen = progressOf({
    vm: { memory: "256MiB" },
    dma: { mode: "static-pin" },
    workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
  });
  assertMonotone(seen);
  const setup = seen.filter((p) => p.phase === "setup");
  assert.ok(setup.length > 0);
  assert.equal(setup[0]!.unit, "pages pinned");
  assert.equal(setup[0]!.total, 65536);
});

Deno.test("a trace replay reports rows replayed", () => {
  const dir = Deno.makeTempDirSync();
  try {
    let text = "time_ns,stream,op,iova,size\n";
    for (let i = 0; i < 200; i++) {
      text += `${i * 1000},${i % 3},w,${(i % 50) * 4096},4096\n`;
    }
    Deno.writeTextFileSync(`${dir}/t.csv`, text);
    const seen = progressOf({
      vm: { memory: "256MiB" },
      dma: { mode: "iopf" },
      workload: { kind: "trace", file: "t.csv" },
    }, dir);
    assertMonotone(seen);
    const last = seen.at(-1)!;
    assert.deepEqual([last.unit, last.done, last.total, last.fraction], [
      "rows replayed",
      200,
      200,
      1,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const SMALL = {
  vm: { memory: "256MiB" },
  dma: { mode: "iopf" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 16 },
};

Deno.test("a sweep passes each point's progress and result out of its worker", async () => {
  const s = parseScenario(SMALL);
  const progress: number[] = [];
  const results: number[] = [];
  const [m] = await runSweep([s], {
    workers: 1,
    onRunProgress: (i, p) => void progress.push(p.simNs >= 0 ? i : -1),
    onResult: (i) => results.push(i),
  });
  assert.ok(progress.length > 2 && progress.every((i) => i === 0));
  assert.deepEqual(results, [0]);
  assert.deepEqual(m, runScenarioWithSeries(s).metrics);
});

Deno.test("an aborted sweep stops and rejects with the signal's reason", async () => {
  const s = parseScenario(SMALL);
  for (const workers of [0, 1]) {
    const ac = new AbortController();
    const done: number[] = [];
    await assert.rejects(
      runSweep([s, s, s], {
        workers,
        signal: ac.signal,
        onResult: (i) => {
          done.push(i);
          ac.abort(new Error("stop"));
        },
      }),
      /stop/,
    );
    assert.deepEqual(done, [0]);
  }
});
