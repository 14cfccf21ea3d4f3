import assert from "node:assert/strict";
import fc from "fast-check";
import { brokenAxis, niceTicks } from "../../lib/plot/_breaks.ts";

const busy = (key: string, from: number, to: number, end = 350) => {
  const out = [];
  for (let x = 0; x <= end; x++) {
    out.push({ key, x, y: x >= from && x <= to ? x % 3 + 1 : 0 });
  }
  return out;
};

Deno.test("brokenAxis cuts the quiet stretches, keeps the busy ones linear", () => {
  const axis = brokenAxis([...busy("a", 140, 170), ...busy("b", 340, 350)]);
  assert.equal(axis.cuts.length, 2);
  const [first, second] = axis.cuts;
  assert.equal(first![0], 0);
  assert.ok(first![1] > 130 && first![1] < 140, String(first));
  assert.ok(second![0] > 170 && second![0] < 180, String(second));
  assert.ok(second![1] > 330 && second![1] < 340, String(second));
  // Linear inside a kept stretch, compressed in a cut, monotonic throughout.
  assert.equal(axis.map(160) - axis.map(150), 10);
  assert.ok(axis.map(100) - axis.map(50) < 10);
  for (const t of axis.ticks) {
    const x = axis.unmap(t);
    assert.ok(!axis.cuts.some(([a, b]) => x > a && x < b), `tick ${x}`);
  }
  assert.equal(axis.marks.length, 2);
});

Deno.test("brokenAxis: map and unmap are inverse and increasing", () => {
  const axis = brokenAxis([...busy("a", 140, 170), ...busy("b", 340, 350)]);
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 350, noNaN: true }),
      fc.double({ min: 0, max: 350, noNaN: true }),
      (p, q) => {
        assert.ok(Math.abs(axis.unmap(axis.map(p)) - p) < 1e-6);
        if (q - p > 1e-6) assert.ok(axis.map(p) < axis.map(q));
      },
    ),
  );
});

Deno.test("brokenAxis leaves an axis alone when something changes everywhere", () => {
  const ramp = [...Array(100).keys()].map((x) => ({ key: "a", x, y: x }));
  const axis = brokenAxis(ramp);
  assert.deepEqual(axis.cuts, []);
  assert.equal(axis.map(42), 42);
  assert.deepEqual(brokenAxis([{ key: "a", x: 1, y: 1 }]).cuts, []);
});

Deno.test("niceTicks: round values inside the range", () => {
  assert.deepEqual(niceTicks(134.7, 175.3, 5), [140, 150, 160, 170]);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});
