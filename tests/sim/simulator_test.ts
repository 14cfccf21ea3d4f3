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
  await t.step(
    "property: events scheduled from events, with few delays (lanes), some cancelled, run in (time, scheduling) order",
    () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              delay: fc.constantFrom(0, 1, 2.5, 7, 600, 1205.5),
              at: fc.boolean(),
              children: fc.integer({ min: 0, max: 3 }),
              cancel: fc.boolean(),
            }),
            { minLength: 1, maxLength: 60 },
          ),
          (ops) => {
            // A reference: every event with its (time, scheduling number),
            // run in sorted order by a plain list.
            const sim = new Simulator();
            const out: string[] = [];
            const ref: Array<{ t: number; n: number; name: string }> = [];
            let n = 0, budget = 4000;
            const ids: number[] = [];
            const schedule = (depth: number, k: number, now: number) => {
              const op = ops[k % ops.length]!;
              const name = `${depth}.${k}.${n}`;
              const t = now + op.delay;
              const fn = () => {
                out.push(name);
                for (let c = 0; c < op.children && budget > 0; c++) {
                  budget--;
                  schedule(depth + 1, k * 3 + c + 1, sim.now);
                }
              };
              const id = op.at ? sim.at(t, fn) : sim.after(op.delay, fn);
              ref.push({ t, n: n++, name });
              ids.push(id);
            };
            for (let k = 0; k < 200; k++) schedule(0, k, 0);
            // Cancel some of the first events (before anything ran).
            const gone = new Set<string>();
            ops.forEach((op, k) => {
              if (op.cancel && k < ids.length) {
                assert.equal(sim.cancel(ids[k]!), true);
                gone.add(ref[k]!.name);
              }
            });
            sim.run();
            assert.equal(sim.pending, 0);
            // Times of every event ran: check the order by time then number.
            const byName = new Map(ref.map((r) => [r.name, r]));
            for (let i = 1; i < out.length; i++) {
              const a = byName.get(out[i - 1]!)!, b = byName.get(out[i]!)!;
              assert(a.t < b.t || (a.t === b.t && a.n < b.n));
            }
            for (const g of gone) assert(!out.includes(g));
            assert.equal(out.length + gone.size, ref.length);
          },
        ),
        { seed: 11, numRuns: 100 },
      );
    },
  );
});
