import assert from "node:assert/strict";
import fc from "fast-check";
import {
  countBits,
  fillBits,
  newBitmap,
  nextClear,
  nextSet,
  testBit,
} from "../../lib/vfio/_bitmap.ts";

Deno.test("iopf bitmap operations agree with a plain boolean array", () => {
  const N = 200;
  const range = fc.tuple(fc.nat(N), fc.nat(N)).map(([a, b]) =>
    a <= b ? [a, b] as const : [b, a] as const
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(range, fc.boolean()), { maxLength: 20 }),
      range,
      (fills, [from, to]) => {
        const bits = newBitmap(N);
        const ref = new Array<boolean>(N).fill(false);
        for (const [[a, b], v] of fills) {
          fillBits(bits, a, b, v);
          for (let i = a; i < b; i++) ref[i] = v;
        }
        for (let i = 0; i < N; i++) assert.equal(testBit(bits, i), ref[i]);
        const firstSet = ref.findIndex((v, i) => i >= from && i < to && v);
        const firstClear = ref.findIndex((v, i) => i >= from && i < to && !v);
        assert.equal(nextSet(bits, from, to), firstSet < 0 ? to : firstSet);
        assert.equal(
          nextClear(bits, from, to),
          firstClear < 0 ? to : firstClear,
        );
        assert.equal(
          countBits(bits, from, to),
          ref.slice(from, to).filter((v) => v).length,
        );
      },
    ),
    { numRuns: 300 },
  );
});
