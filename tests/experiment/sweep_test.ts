import assert from "node:assert/strict";
import { expandSweep, parseScenario } from "../../lib/experiment/scenario.ts";
import {
  fromWorkerError,
  progressReporter,
  runSweep,
  runSweepMixed,
  runSweepWithSeries,
  SweepPool,
  type SweepProgress,
  toWorkerError,
} from "../../lib/experiment/sweep.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

import * as fakeRunner from "./_fake_run.ts";

/** The stand-in runner: on the calling thread, and in its own worker script. */
const runner = {
  runner: fakeRunner,
  worker: new URL("./_fake_worker.ts", import.meta.url),
};

function points(extra: Record<string, unknown> = {}) {
  return expandSweep(parseScenario({
    name: "sw",
    ...extra,
    sweep: { seed: [1, 2, 3, 4, 5], "vm.memory": ["1GiB", "2GiB"] },
  }));
}

Deno.test("runSweep returns results in sweep order, whatever the worker count", async () => {
  const scenarios = points();
  const inline = await runSweep(scenarios, { workers: 0, ...runner });
  assert.deepEqual(inline.map((m) => m.name), scenarios.map((s) => s.name));
  for (const workers of [1, 2, 3]) {
    const progress: SweepProgress[] = [];
    const got = await runSweep(scenarios, {
      workers,
      ...runner,
      onProgress: (p) => progress.push(p),
    });
    assert.deepEqual(got, inline, `workers: ${workers}`);
    assert.deepEqual(progress.map((p) => p.done), [
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      10,
    ]);
    assert.deepEqual(progress.map((p) => p.index).sort((a, b) => a - b), [
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
    ]);
    assert.ok(
      progress.every((p) =>
        p.total === 10 && p.name === scenarios[p.index]!.name
      ),
    );
  }
  assert.deepEqual(inline[3]!.sweepPoint, { seed: 2, "vm.memory": "2GiB" });
});

Deno.test("runSweepWithSeries returns metrics and series", async () => {
  const scenarios = points().slice(0, 3);
  const results = await runSweepWithSeries(scenarios, {
    workers: 2,
    ...runner,
  });
  assert.equal(results.length, 3);
  assert.equal(results[2]!.metrics.name, scenarios[2]!.name);
  assert.equal(results[2]!.series.length, 2);
  assert.deepEqual(await runSweep([], { ...runner }), []);
});

Deno.test("runSweepMixed gives each point's series only where its flag asks, on workers and on this thread", async () => {
  const scenarios = points().slice(0, 4);
  const flags = [true, false, false, true];
  for (const workers of [0, 2]) {
    const results = await runSweepMixed(scenarios, flags, {
      workers,
      ...runner,
    });
    assert.deepEqual(results.map((r) => "series" in r), flags, `${workers}`);
    assert.deepEqual(
      results.map((r) => ("metrics" in r ? r.metrics : r).name),
      scenarios.map((s) => s.name),
    );
  }
  await assert.rejects(
    runSweepMixed(scenarios, [true], { ...runner }),
    (e) => e instanceof IopfLabError && e.code === "EINVAL",
  );
});

Deno.test("an error inside a worker comes back as an IopfLabError with its code", async () => {
  const scenarios = points();
  // Make points 3 and 7 fail; the first in sweep order is reported.
  const failing = scenarios.map((s, i) =>
    i === 3 || i === 7 ? { ...s, costs: { "mm.ioctl": 13 } } : s
  );
  for (const workers of [0, 1, 2]) {
    await assert.rejects(
      runSweep(failing, { workers, ...runner }),
      (e: unknown) => {
        assert.ok(e instanceof IopfLabError, String(e));
        assert.equal(e.code, "ENOMEM");
        assert.equal(
          e.message,
          `Cannot pin guest RAM of ${
            scenarios[3]!.name
          }: over the memlock limit (ENOMEM)`,
        );
        return true;
      },
    );
  }
});

Deno.test("the error of a failed sweep point says which point, its field kept", async () => {
  const scenarios = points();
  const failing = scenarios.map((s, i) =>
    i === 2 ? { ...s, costs: { "mm.ioctl": 15 } } : s
  );
  for (const workers of [0, 1, 2]) {
    await assert.rejects(
      runSweep(failing, { workers, ...runner }),
      (e: unknown) => {
        assert.ok(e instanceof IopfLabError, String(e));
        assert.equal(e.code, "EINVAL");
        assert.equal(e.where, "vm.memory");
        assert.equal(
          e.message,
          "sweep point sw[seed=2,vm.memory=1GiB]: vm.memory: too small (EINVAL)",
        );
        return true;
      },
    );
  }
  // A single run (no sweep point) keeps its message as it is.
  const single = parseScenario({ costs: { "mm.ioctl": 15 } });
  await assert.rejects(
    runSweep([single], { workers: 0, ...runner }),
    /^IopfLabError: vm\.memory: too small \(EINVAL\)$/,
  );
});

Deno.test("other errors in a worker name the scenario", async () => {
  const [s] = points();
  await assert.rejects(
    runSweep([{ ...s!, costs: { "mm.ioctl": 14 } }], { workers: 1, ...runner }),
    (e: Error) => {
      assert.ok(!(e instanceof IopfLabError));
      assert.match(
        e.message,
        /^Cannot run scenario "sw\[seed=1,vm\.memory=1GiB\]": TypeError: boom$/,
      );
      return true;
    },
  );
});

Deno.test("a worker script that cannot load fails the sweep", async () => {
  const [s] = points();
  await assert.rejects(
    runSweep([s!], {
      workers: 1,
      worker: new URL("./_no_such_worker.ts", import.meta.url),
    }),
    /Cannot run scenario|a worker failed/,
  );
});

Deno.test("worker errors round-trip", () => {
  const e = new IopfLabError("EINVAL", "vm.memory: too big", "vm.memory");
  const back = fromWorkerError(
    structuredClone(toWorkerError(e)),
    "x",
  ) as IopfLabError;
  assert.ok(back instanceof IopfLabError);
  assert.equal(back.message, e.message);
  assert.equal(back.where, "vm.memory");
  assert.equal(back.code, "EINVAL");
  assert.equal(
    fromWorkerError(toWorkerError("weird"), "x").message,
    'Cannot run scenario "x": Error: weird',
  );
});

Deno.test("progressReporter writes lines, or a bar on a terminal, with an ETA", () => {
  let out = "";
  const write = (t: string) => void (out += t);
  const lines = progressReporter({ write, terminal: false });
  lines({
    done: 1,
    total: 2,
    index: 0,
    name: "a",
    elapsedMs: 1500,
    etaMs: 1500,
  });
  lines({ done: 2, total: 2, index: 1, name: "b", elapsedMs: 2500, etaMs: 0 });
  assert.equal(out, "[1/2] a (1.5 s, ETA 1.5 s)\n[2/2] b (2.5 s)\n");
  out = "";
  const bar = progressReporter({ write, terminal: true });
  bar({ done: 1, total: 2, index: 0, name: "a", elapsedMs: 0, etaMs: 200e3 });
  assert.equal(
    out,
    "\r[############------------] 1/2 0.0 s ETA 3.3 min a\x1b[K",
  );
  bar({ done: 2, total: 2, index: 1, name: "b", elapsedMs: 0, etaMs: 0 });
  assert.ok(out.endsWith("\r[########################] 2/2 0.0 s b\x1b[K\n"));
});

/** Workers that count the points they ran (a result's runNs). */
const counting = {
  worker: new URL("./_counting_worker.ts", import.meta.url),
};

Deno.test("a SweepPool keeps its workers from one sweep to the next", async () => {
  const scenarios = points().slice(0, 3);
  // Without a pool every sweep starts a fresh worker.
  for (let k = 0; k < 2; k++) {
    const got = await runSweep(scenarios, { workers: 1, ...counting });
    assert.deepEqual(got.map((m) => m.runNs), [1, 2, 3]);
  }
  const pool = new SweepPool({ size: 1, ...counting });
  try {
    const a = await runSweep(scenarios, { pool });
    const b = await runSweepWithSeries(scenarios, { pool });
    assert.deepEqual(a.map((m) => m.runNs), [1, 2, 3]);
    assert.deepEqual(b.map((r) => r.metrics.runNs), [4, 5, 6]);
    assert.deepEqual(
      b.map((r) => r.metrics.name),
      scenarios.map((s) => s.name),
    );
    // The thread path ignores the pool.
    const inline = await runSweep(scenarios, {
      pool,
      workers: 0,
      ...runner,
      worker: counting.worker,
    });
    assert.equal(inline.length, 3);
  } finally {
    pool.close();
  }
});

Deno.test("a SweepPool gives the same results as fresh workers, and replaces workers of an aborted sweep", async () => {
  const scenarios = points();
  const fresh = await runSweep(scenarios, { workers: 2, ...runner });
  const pool = new SweepPool({ size: 2, worker: runner.worker });
  const countingPool = new SweepPool({ size: 2, ...counting });
  try {
    assert.deepEqual(await runSweep(scenarios, { pool }), fresh);
    await runSweep(scenarios.slice(0, 2), { pool: countingPool, workers: 1 });
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await assert.rejects(
      runSweep(scenarios, { pool: countingPool, signal: ac.signal }),
      /stop/,
    );
    // Fresh workers after the abort: the counting runner starts over.
    const got = await runSweep(scenarios.slice(0, 2), {
      pool: countingPool,
      workers: 1,
    });
    assert.deepEqual(got.map((m) => m.runNs), [1, 2]);
    // A failed point leaves the workers usable.
    const failing = scenarios.map((s, i) =>
      i === 3 ? { ...s, costs: { "mm.ioctl": 13 } } : s
    );
    await assert.rejects(runSweep(failing, { pool }), IopfLabError);
    assert.deepEqual(await runSweep(scenarios, { pool }), fresh);
    // A sweep naming another worker script than the pool's is refused.
    await assert.rejects(
      runSweep(scenarios, { pool, ...counting }),
      (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
    );
  } finally {
    pool.close();
    countingPool.close();
  }
});

Deno.test("a SweepPool refuses a second sweep at once, more workers than it has, and use after close", async () => {
  assert.throws(() => new SweepPool({ size: 0 }), /whole number >= 1/);
  const pool = new SweepPool({ size: 1, worker: runner.worker });
  const scenarios = points().slice(0, 2);
  const first = runSweep(scenarios, { pool, ...runner });
  await assert.rejects(
    runSweep(scenarios, { pool, ...runner }),
    (e: unknown) => e instanceof IopfLabError && e.code === "EBUSY",
  );
  assert.equal((await first).length, 2);
  await assert.rejects(
    runSweep(scenarios, { pool, workers: 2, ...runner }),
    /the pool has 1/,
  );
  pool.close();
  await assert.rejects(runSweep(scenarios, { pool, ...runner }), /closed/);
});
