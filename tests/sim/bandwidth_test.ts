import assert from "node:assert/strict";
import { SharedBandwidth } from "../../lib/sim/bandwidth.ts";
import { Simulator } from "../../lib/sim/simulator.ts";

/** A bandwidth of `total` B/ns whose streams are capped at `stream` B/ns. */
function make(stream: number, total: number) {
  const sim = new Simulator();
  const bw = new SharedBandwidth(sim, {
    name: "dram",
    streamNsPerUnit: 1 / stream,
    totalNsPerUnit: total === Infinity ? 0 : 1 / total,
  });
  return { sim, bw };
}

Deno.test("SharedBandwidth", async (t) => {
  await t.step("one stream runs at the rate of one core", () => {
    const { sim, bw } = make(2, 10);
    let end = -1;
    bw.transfer(1000, () => end = sim.now);
    sim.run();
    assert.equal(end, 500);
  });

  await t.step("two streams sharing bandwidth B each get B/2", () => {
    // each could do 10 B/ns alone; the host has 8: 4 each
    const { sim, bw } = make(10, 8);
    const ends: number[] = [];
    bw.transfer(400, () => ends.push(sim.now));
    bw.transfer(400, () => ends.push(sim.now));
    assert.equal(bw.elasticRate, 4);
    sim.run();
    assert.deepEqual(ends, [100, 100]);
    assert.equal(bw.bytesMoved, 800);
    assert.equal(bw.maxStreams, 2);
  });

  await t.step("thread scaling is linear up to the ceiling, then flat", () => {
    // 1 B/ns per core, 4 B/ns for the host; 1200 bytes split over n threads
    const wall = (n: number) => {
      const { sim, bw } = make(1, 4);
      let last = 0;
      for (let i = 0; i < n; i++) {
        bw.transfer(1200 / n, () => last = sim.now);
      }
      sim.run();
      return last;
    };
    assert.deepEqual([1, 2, 3, 4, 6, 8, 12].map(wall), [
      1200,
      600,
      400,
      300,
      300,
      300,
      300,
    ]);
  });

  await t.step("a stream that ends gives its share to the others", () => {
    // 3 B/ns total, 2 B/ns per core: 1.5 each while both run
    const { sim, bw } = make(2, 3);
    const ends: Record<string, number> = {};
    bw.transfer(150, () => ends.short = sim.now); // 150 / 1.5 = 100
    bw.transfer(350, () => ends.long = sim.now); // 150 by 100, 200 at 2 -> 200
    sim.run();
    assert.deepEqual(ends, { short: 100, long: 200 });
  });

  await t.step("a late stream slows the one in flight", () => {
    const { sim, bw } = make(4, 4);
    const ends: Record<string, number> = {};
    bw.transfer(800, () => ends.a = sim.now); // 4 B/ns alone
    sim.at(100, () => bw.transfer(200, () => ends.b = sim.now));
    // at 100: a has 400 left; both at 2 B/ns: b done at 200, a has 200 left
    // then a alone at 4 B/ns: done at 250
    sim.run();
    assert.deepEqual(ends, { a: 250, b: 200 });
  });

  await t.step(
    "a reservation gets its fair share and the elastic streams what is left",
    () => {
      const { sim, bw } = make(4, 6);
      let end = -1;
      bw.transfer(600, () => end = sim.now); // alone: 4 B/ns
      // a synchronous path at 0: fair share of 6 B/ns among 2 = 3 B/ns
      assert.equal(bw.reserve(300), 100);
      assert.equal(bw.elasticRate, 3);
      // elastic: 3 B/ns until 100 (300 moved), then 4 B/ns: 300 / 4 = 75 more
      sim.run();
      assert.equal(end, 175);
      assert.equal(bw.streams, 0);
    },
  );

  await t.step("synchronous paths do not slow each other", () => {
    const { bw } = make(10, 10);
    // one kernel call pricing its pieces one after another: each alone
    assert.equal(bw.reserve(1000), 100);
    assert.equal(bw.reserve(500), 50);
    assert.equal(bw.streams, 0);
    assert.equal(bw.nsPerUnitOf(4), 0.4);
  });

  await t.step("reservations share against the elastic streams", () => {
    const { sim, bw } = make(10, 10);
    let end = -1;
    bw.transfer(100_000, () => end = sim.now);
    // fair share against one elastic stream: 5 B/ns each
    assert.equal(bw.reserve(1000), 200);
    // the second: its fair share too (5 B/ns), all that the first leaves
    assert.equal(bw.reserve(1000), 200);
    assert.equal(bw.elasticRate, 0);
    // the elastic stream waits until both end, then moves alone
    sim.run();
    assert.equal(end, 200 + 100_000 / 10);
  });

  await t.step("no ceiling: every stream at the rate of one core", () => {
    const { sim, bw } = make(2, Infinity);
    const ends: number[] = [];
    for (let i = 0; i < 5; i++) bw.transfer(100, () => ends.push(sim.now));
    sim.run();
    assert.deepEqual(ends, [50, 50, 50, 50, 50]);
  });

  await t.step(
    "zero bytes finish at once; bad sizes and rates are EINVAL",
    () => {
      const { sim, bw } = make(1, 1);
      let done = false;
      bw.transfer(0, () => done = true);
      assert.ok(done);
      assert.equal(bw.reserve(0), 0);
      assert.throws(() => bw.transfer(-1, () => {}), { code: "EINVAL" });
      assert.throws(() => bw.reserve(NaN), { code: "EINVAL" });
      assert.throws(
        () =>
          new SharedBandwidth(sim, {
            name: "x",
            streamNsPerUnit: 0,
            totalNsPerUnit: 1,
          }),
        { code: "EINVAL" },
      );
      assert.throws(
        () =>
          new SharedBandwidth(sim, {
            name: "x",
            streamNsPerUnit: 1,
            totalNsPerUnit: -1,
          }),
        { code: "EINVAL" },
      );
    },
  );
});
