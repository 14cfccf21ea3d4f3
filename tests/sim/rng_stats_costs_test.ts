import assert from "node:assert/strict";
import fc from "fast-check";
import { Rng } from "../../lib/sim/rng.ts";
import { Counters, Histogram } from "../../lib/sim/stats.ts";
import {
  COST_NAMES,
  describeCosts,
  loadCostProfile,
} from "../../lib/sim/costs.ts";
import { parseBandwidth, parseSize, parseTime } from "../../lib/sim/units.ts";

Deno.test("Rng", async (t) => {
  await t.step(
    "same seed, same sequence; different seed, different sequence",
    () => {
      const a = new Rng(1234), b = new Rng(1234), c = new Rng(1235);
      const sa = Array.from({ length: 100 }, () => a.nextU32());
      const sb = Array.from({ length: 100 }, () => b.nextU32());
      const sc = Array.from({ length: 100 }, () => c.nextU32());
      assert.deepEqual(sa, sb);
      assert.notDeepEqual(sa, sc);
    },
  );

  await t.step(
    "matches the xoshiro128** reference output for state {1,2,3,4}",
    () => {
      const r = Rng.fromState([1, 2, 3, 4]);
      assert.deepEqual(Array.from({ length: 4 }, () => r.nextU32()), [
        11520,
        0,
        5927040,
        70819200,
      ]);
    },
  );

  await t.step("float is in [0,1) and int(n) in [0,n), roughly uniform", () => {
    const r = new Rng(9);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const f = r.float();
      assert.ok(f >= 0 && f < 1);
      buckets[r.int(10)]++;
    }
    for (const b of buckets) assert.ok(b > 9_000 && b < 11_000, `bucket ${b}`);
    assert.ok(r.int(2 ** 40) < 2 ** 40);
  });
});

Deno.test("Histogram", async (t) => {
  await t.step("quantiles within 1 % of the exact ones", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 1e12, noNaN: true }), {
          minLength: 1,
          maxLength: 500,
        }),
        fc.constantFrom(0.5, 0.9, 0.99),
        (xs, q) => {
          const h = new Histogram();
          for (const x of xs) h.record(x);
          const sorted = [...xs].sort((a, b) => a - b);
          const exact = sorted[Math.max(0, Math.ceil(q * xs.length) - 1)]!;
          const got = h.quantile(q);
          assert.ok(
            Math.abs(got - exact) / exact <= 0.01,
            `q${q}: ${got} vs ${exact}`,
          );
          assert.equal(h.max, sorted[sorted.length - 1]);
          assert.equal(h.count, xs.length);
        },
      ),
      { seed: 3, numRuns: 200 },
    );
  });

  await t.step("mean is exact, empty is zero, bad samples are EINVAL", () => {
    const h = new Histogram();
    assert.deepEqual(h.summary(), {
      count: 0,
      mean: 0,
      p50: 0,
      p99: 0,
      max: 0,
    });
    h.record(0);
    h.record(10);
    assert.equal(h.mean, 5);
    assert.throws(() => h.record(NaN), { code: "EINVAL" });
    assert.throws(() => h.record(-1), { code: "EINVAL" });
  });

  await t.step("merge equals recording everything in one", () => {
    const a = new Histogram(), b = new Histogram(), all = new Histogram();
    for (let i = 1; i < 1000; i++) {
      (i % 2 ? a : b).record(i * 7), all.record(i * 7);
    }
    a.merge(b);
    assert.deepEqual(a.summary(), all.summary());
  });

  await t.step("counters", () => {
    const c = new Counters();
    c.add("b", 2);
    c.add("a");
    c.max("peak", 5);
    c.max("peak", 3);
    assert.deepEqual(c.toJSON(), { a: 1, b: 2, peak: 5 });
  });
});

Deno.test("cost profile", async (t) => {
  await t.step("every parameter has a unit and a source", () => {
    for (const [name, p] of Object.entries(describeCosts())) {
      assert.ok(p.unit.length > 0, name);
      // A published figure ("measured: ..."), a fit documented by its row
      // of docs/CALIBRATION.md, or an estimate with its argument; never a
      // value chosen so that a sum comes out.
      assert.ok(
        /^(estimate: .|measured: .|fitted \(docs\/CALIBRATION\.md row [\w.-]+\): .)/
          .test(p.source),
        `${name}: ${p.source}`,
      );
      assert.ok(
        !/chosen so|residual|so that the/i.test(p.source),
        `${name}: ${p.source}`,
      );
      assert.ok(Number.isFinite(p.value) && p.value >= 0, name);
    }
    assert.ok(COST_NAMES.length > 20);
  });

  await t.step(
    "overrides by name; unknown names and bad values are EINVAL",
    () => {
      const c = loadCostProfile({ "smmu.walkRead": 1 });
      assert.equal(c["smmu.walkRead"], 1);
      assert.throws(
        () => loadCostProfile({ "smmu.walkread": 1 }),
        (e: Error & { code: string }) => {
          assert.equal(e.code, "EINVAL");
          assert.match(
            e.message,
            /^costs\.smmu\.walkread: unknown cost parameter/,
          );
          return true;
        },
      );
      assert.throws(() => loadCostProfile({ "smmu.walkRead": -1 }), {
        code: "EINVAL",
      });
      assert.throws(() => loadCostProfile({ "smmu.walkRead": "1us" }), {
        code: "EINVAL",
      });
    },
  );
});

Deno.test("units", async (t) => {
  await t.step("sizes, times, bandwidths", () => {
    assert.equal(parseSize("4KiB"), 4096);
    assert.equal(parseSize("16GiB"), 16 * 2 ** 30);
    assert.equal(parseSize("1TiB"), 2 ** 40);
    assert.equal(parseSize(8192), 8192);
    assert.equal(parseTime("2us"), 2000);
    assert.equal(parseTime("1.5ms"), 1.5e6);
    assert.equal(parseBandwidth("8GB/s"), 8e9);
    assert.equal(parseBandwidth("10Gbps"), 1.25e9);
  });

  await t.step("bad values name the field", () => {
    for (
      const bad of [
        "1 MB?",
        "-4KiB",
        "1.5B",
        -1,
        NaN,
        Infinity,
        "2^53",
        null,
        {},
        "8PiB",
      ]
    ) {
      assert.throws(
        () => parseSize(bad, "workload.messageSize"),
        (e: Error & { code: string }) => {
          assert.equal(e.code, "EINVAL");
          assert.match(e.message, /^workload\.messageSize: /);
          return true;
        },
        String(bad),
      );
    }
    assert.throws(
      () => parseBandwidth("0GB/s", "device.dmaBandwidth"),
      /device\.dmaBandwidth/,
    );
    assert.throws(() => parseTime("3 fortnights", "x"), /expected a time/);
  });
});
