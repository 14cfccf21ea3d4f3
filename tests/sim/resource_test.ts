import assert from "node:assert/strict";
import { Resource } from "../../lib/sim/resource.ts";
import { Simulator } from "../../lib/sim/simulator.ts";

Deno.test("Resource", async (t) => {
  await t.step("one server serialises requests FIFO and records waits", () => {
    const sim = new Simulator();
    const lock = new Resource(sim, { name: "container lock" });
    const done: Array<[string, number]> = [];
    for (const n of ["a", "b", "c"]) {
      lock.request(100, () => done.push([n, sim.now]));
    }
    sim.run();
    assert.deepEqual(done, [["a", 100], ["b", 200], ["c", 300]]);
    assert.equal(lock.waits, 2);
    assert.equal(lock.totalWaitNs, 100 + 200);
    assert.equal(lock.maxQueue, 2);
    assert.equal(lock.busyNs, 300);
  });

  await t.step("N servers run N requests at once", () => {
    const sim = new Simulator();
    const workers = new Resource(sim, { name: "workers", servers: 3 });
    const ends: number[] = [];
    for (let i = 0; i < 7; i++) workers.request(10, () => ends.push(sim.now));
    sim.run();
    assert.deepEqual(ends, [10, 10, 10, 20, 20, 20, 30]);
    assert.equal(workers.utilisation(), 70 / 90);
  });

  await t.step(
    "acquire holds until release; double release is an error",
    () => {
      const sim = new Simulator();
      const r = new Resource(sim, { name: "r" });
      let second = -1;
      r.acquire((release) => {
        sim.after(50, () => {
          release();
          assert.throws(() => release(), { code: "EINVAL" });
        });
      });
      r.acquire((release) => {
        second = sim.now;
        release();
      });
      sim.run();
      assert.equal(second, 50);
      assert.equal(r.busy, 0);
    },
  );

  await t.step("a bad server count is EINVAL", () => {
    assert.throws(
      () => new Resource(new Simulator(), { name: "x", servers: 0 }),
      {
        code: "EINVAL",
      },
    );
  });
});
