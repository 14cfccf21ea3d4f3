import assert from "node:assert/strict";
import fc from "fast-check";
import { SmmuQueue } from "../../lib/smmu/mod.ts";

Deno.test("queue indexes carry a wrap bit: empty when equal, full when only the wrap differs", () => {
  const q = new SmmuQueue({ log2Size: 2, entryWords: 4 });
  const e = new Uint32Array(4);
  assert.ok(q.isEmpty && !q.isFull);
  for (let i = 0; i < 4; i++) assert.ok(q.push(e.fill(i)));
  assert.ok(q.isFull);
  assert.equal(q.prod, 4); // WR index 0, WR_WRAP (bit 2) set
  assert.equal(q.cons, 0);
  assert.ok(!q.push(e));
  const out = new Uint32Array(4);
  assert.ok(q.pop(out) && out[0] === 0);
  assert.ok(q.push(e.fill(9))); // slot 0 again
  assert.equal(q.prod, 5); // index 1, wrap set
  for (const want of [1, 2, 3, 9]) {
    assert.ok(q.pop(out));
    assert.equal(out[0], want);
  }
  assert.ok(q.isEmpty);
  assert.equal(q.cons, 5);
});

Deno.test("the overflow flag toggles once per condition and is acknowledged by the consumer", () => {
  const q = new SmmuQueue({ log2Size: 0, entryWords: 8 });
  assert.ok(q.push(new Uint32Array(8)));
  assert.ok(q.noteOverflow()); // enters the condition
  assert.ok(q.overflowPending);
  assert.equal(q.prod >>> 31, 1); // OVFLG
  assert.ok(!q.noteOverflow()); // already present: no toggle
  assert.equal(q.lost, 2);
  assert.equal(q.overflows, 1);
  q.ackOverflow();
  assert.ok(!q.overflowPending);
  assert.equal(q.cons >>> 31, 1); // OVACKFLG copied
  assert.ok(q.noteOverflow()); // a new condition toggles OVFLG back
  assert.equal(q.prod >>> 31, 0);
  assert.ok(q.overflowPending);
});

Deno.test("queue sizes are powers of two up to 2^19", () => {
  assert.throws(() => new SmmuQueue({ log2Size: 20, entryWords: 4 }), /EINVAL/);
  assert.throws(() => new SmmuQueue({ log2Size: -1, entryWords: 4 }), /EINVAL/);
  assert.equal(new SmmuQueue({ log2Size: 19, entryWords: 1 }).entries, 2 ** 19);
});

Deno.test("a queue behaves as a bounded FIFO under any push/pop sequence", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 4 }),
    fc.array(fc.boolean(), { maxLength: 200 }),
    (log2, ops) => {
      const q = new SmmuQueue({ log2Size: log2, entryWords: 2 });
      const model: number[] = [];
      let next = 0;
      const out = new Uint32Array(2);
      for (const push of ops) {
        if (push) {
          const ok = q.push(new Uint32Array([next, ~next >>> 0]));
          assert.equal(ok, model.length < q.entries);
          if (ok) model.push(next);
          next++;
        } else {
          const ok = q.pop(out);
          assert.equal(ok, model.length > 0);
          if (ok) assert.equal(out[0], model.shift());
        }
        assert.equal(q.length, model.length);
        assert.equal(q.isFull, model.length === q.entries);
      }
    },
  ));
});
