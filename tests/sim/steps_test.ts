import assert from "node:assert/strict";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { runSteps, stepBytes } from "../../lib/sim/steps.ts";

const MiB = 2 ** 20, GiB = 2 ** 30;

Deno.test("stepBytes: 64 steps of whole 2 MiB blocks, at most 1 GiB, never splitting the page", () => {
  assert.equal(stepBytes(256 * MiB), 4 * MiB);
  assert.equal(stepBytes(64 * MiB), 2 * MiB); // 32 steps: the 2 MiB floor
  assert.equal(stepBytes(3 * MiB), 2 * MiB);
  assert.equal(stepBytes(1024 * GiB), GiB); // a 1 TiB guest: 1024 steps
  assert.equal(stepBytes(4 * GiB, GiB), GiB); // hugetlb-1g: whole pages
  assert.equal(stepBytes(100 * MiB, 4096), 2 * MiB);
});

Deno.test("runSteps: each part runs after the time the previous one cost; done after the last", () => {
  const sim = new Simulator();
  const seen: [number, number, number][] = [];
  let end: [IopfLabError | undefined, number, number] | undefined;
  runSteps(sim, {
    total: 10 * MiB,
    step: 4 * MiB,
    run: (off, bytes) => {
      seen.push([sim.now, off, bytes]);
      return bytes / MiB * 100; // 100 ns per MiB
    },
    done: (e, ns) => (end = [e, ns, sim.now]),
  });
  assert.deepEqual(seen, [[0, 0, 4 * MiB]]); // the first part runs at once
  sim.run();
  assert.deepEqual(seen, [
    [0, 0, 4 * MiB],
    [400, 4 * MiB, 4 * MiB],
    [800, 8 * MiB, 2 * MiB],
  ]);
  assert.deepEqual(end, [undefined, 1000, 1000]);
});

Deno.test("runSteps: an error stops the operation at once and reaches done", () => {
  const sim = new Simulator();
  let parts = 0;
  let got: IopfLabError | undefined;
  let at = -1;
  runSteps(sim, {
    total: 8 * MiB,
    step: 2 * MiB,
    run: () => {
      if (++parts === 3) throw new IopfLabError("ENOMEM", "out of memory");
      return 10;
    },
    done: (e, ns) => {
      got = e;
      at = ns;
    },
  });
  sim.run();
  assert.equal(parts, 3);
  assert.equal(got?.code, "ENOMEM");
  assert.equal(at, 20);
  assert.equal(sim.now, 20);
  assert.throws(
    () => runSteps(sim, { total: 1, step: 0, run: () => 0, done: () => {} }),
    (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
  );
});
