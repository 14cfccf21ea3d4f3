import assert from "node:assert/strict";
import fc from "fast-check";
import { Simulator } from "../../lib/sim/simulator.ts";

Deno.test("Simulator", async (t) => {
  await t.step(
    "runs events in time order, equal times in scheduling order",
    () => {
      const sim = new Simulator();
      const seen: string[] = [];
      sim.at(30, () => seen.push("c"));
      sim.at(10, () => seen.push("a1"));
      sim.at(10, () => seen.push("a2"));
      sim.at(20, () => seen.push("b"));
      sim.at(10, () => seen.push("a3"));
      sim.run();
      assert.deepEqual(seen, ["a1", "a2", "a3", "b", "c"]);
      assert.equal(sim.now, 30);
    },
  );

  await t.step("events scheduled from events run at the right time", () => {
    const sim = new Simulator();
    const times: number[] = [];
    sim.after(5, () => {
      times.push(sim.now);
      sim.after(0, () => times.push(sim.now));
      sim.after(7, () => times.push(sim.now));
    });
    sim.run();
    assert.deepEqual(times, [5, 5, 12]);
  });

  await t.step("cancel removes an event once", () => {
    const sim = new Simulator();
    let ran = 0;
    const id = sim.after(10, () => ran++);
    sim.after(20, () => ran += 10);
    assert.equal(sim.cancel(id), true);
    assert.equal(sim.cancel(id), false);
    assert.equal(sim.pending, 1);
    sim.run();
    assert.equal(ran, 10);
  });

  await t.step(
    "a cancelled id does not cancel a later event in the same slot",
    () => {
      const sim = new Simulator();
      let ran = 0;
      const id = sim.after(1, () => ran++);
      sim.run();
      sim.after(1, () => ran++);
      assert.equal(sim.cancel(id), false);
      sim.run();
      assert.equal(ran, 2);
    },
  );

  await t.step(
    "run until stops before later events and advances the clock",
    () => {
      const sim = new Simulator();
      let ran = 0;
      sim.at(100, () => ran++);
      sim.at(300, () => ran++);
      assert.equal(sim.run({ until: 200 }), 1);
      assert.equal(sim.now, 200);
      assert.equal(sim.pending, 1);
      sim.run();
      assert.equal(ran, 2);
    },
  );

  await t.step("scheduling in the past is an EINVAL error", () => {
    const sim = new Simulator();
    sim.at(50, () => {});
    sim.run();
    assert.throws(() => sim.at(10, () => {}), { code: "EINVAL" });
  });

  await t.step("property: events come out sorted by (time, insertion)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }),
        (ts) => {
          const sim = new Simulator();
          const out: Array<[number, number]> = [];
          ts.forEach((time, i) => sim.at(time, () => out.push([time, i])));
          sim.run();
          const expected = ts.map((time, i) => [time, i] as [number, number])
            .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          assert.deepEqual(out, expected);
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });
});
