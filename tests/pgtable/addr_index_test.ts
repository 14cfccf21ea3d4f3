/**
 * lib/pgtable/_addr_index.ts against a Map: random sets, deletes and
 * lookups of table page addresses (clustered, so that probe runs form and
 * deletion has to shift entries back), after every step the same answers.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AddrIndex } from "../../lib/pgtable/_addr_index.ts";

const op = fc.record({
  kind: fc.constantFrom("set", "delete", "get"),
  // A few clusters of consecutive frames, some above 2^32 frames (2^44 bytes).
  frame: fc.oneof(
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: 2 ** 35, max: 2 ** 35 + 300 }),
    fc.integer({ min: 0, max: 2 ** 36 - 1 }),
  ),
  value: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

Deno.test("AddrIndex: answers as a Map does under random sets, deletes and lookups", () => {
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 100, maxLength: 600, size: "max" }),
      (ops) => {
        const idx = new AddrIndex();
        const ref = new Map<number, number>();
        for (const o of ops) {
          const addr = o.frame * 4096;
          if (o.kind === "set") {
            idx.set(addr, o.value);
            ref.set(addr, o.value);
          } else if (o.kind === "delete") {
            idx.delete(addr);
            ref.delete(addr);
          }
          assert.equal(idx.get(addr), ref.get(addr) ?? -1);
          assert.equal(idx.has(addr), ref.has(addr));
          assert.equal(idx.size, ref.size);
        }
        for (const [a, v] of ref) assert.equal(idx.get(a), v);
      },
    ),
    { numRuns: 300 },
  );
});
