import assert from "node:assert/strict";
import fc from "fast-check";
import { CHUNK_PAGES, PfnStore } from "../../lib/mm/_vma.ts";

Deno.test("PfnStore returns what was set, narrow or wide", async (t) => {
  await t.step("values near the first stay narrow (2 bytes a page)", () => {
    const st = new PfnStore();
    const s = st.create(7);
    const first = 0x1234_5678;
    for (let i = 0; i < CHUNK_PAGES; i++) {
      st.set(s, i, first + ((i * 167) % 512) - 12_000 + i * 50);
    }
    for (let i = 0; i < CHUNK_PAGES; i++) {
      assert.equal(st.get(s, i), first + ((i * 167) % 512) - 12_000 + i * 50);
    }
    assert.equal(st.wideSlots, 0);
    assert.equal(st.slotOf(7), s);
    assert.equal(st.slotOf(8), -1);
  });
  await t.step(
    "a value outside the window widens the slot, keeping all",
    () => {
      for (const far of [1, 0x10_0000, 0xffff_ffff]) {
        const st = new PfnStore();
        const s = st.create(0, CHUNK_PAGES);
        st.set(s, 0, 0x4_0000);
        st.set(s, 5, 0x4_0001);
        st.set(s, 9, far);
        assert.equal(st.wideSlots, 1);
        assert.deepEqual(
          [st.get(s, 0), st.get(s, 5), st.get(s, 9), st.get(s, 1)],
          [0x4_0000, 0x4_0001, far, 0],
        );
        st.set(s, 5, 0);
        assert.equal(st.get(s, 5), 0);
      }
    },
  );
  await t.step("small first values: the base is 0", () => {
    const st = new PfnStore();
    const s = st.create(0, CHUNK_PAGES);
    st.set(s, 0, 1);
    st.set(s, 1, 0xffff);
    assert.deepEqual([st.get(s, 0), st.get(s, 1)], [1, 0xffff]);
    assert.equal(st.wideSlots, 0);
  });
  await t.step(
    "a slot of a few pages is sparse (no 1 KiB array) until its ninth page",
    () => {
      const st = new PfnStore();
      const s = st.create(4);
      const empty = st.bytes;
      const pages = [300, 7, 511, 0, 64, 65, 200, 9];
      for (const [k, p] of pages.entries()) st.set(s, p, 0x10_0000 + k);
      assert.equal(st.bytes, empty, "eight pages: no narrow array");
      st.set(s, 7, 0); // removed and set again: still eight at most
      st.set(s, 7, 0x10_0001);
      assert.equal(st.bytes, empty);
      st.set(s, 100, 0x10_0100);
      assert.ok(st.bytes >= empty + CHUNK_PAGES * 2, "the ninth: narrow");
      for (const [k, p] of pages.entries()) {
        assert.equal(st.get(s, p), 0x10_0000 + k);
      }
      assert.equal(st.get(s, 100), 0x10_0100);
      assert.equal(st.get(s, 1), 0);
      assert.equal(st.nextSet(s, 1), 7);
      assert.equal(st.wideSlots, 0);
    },
  );
  await t.step(
    "chunks in the order their slots were made; reused slots start empty",
    () => {
      const st = new PfnStore();
      const order = [5, 3, 9, 1];
      for (const c of order) st.set(st.create(c, CHUNK_PAGES), 0, 100 + c);
      st.set(st.slotOf(3), 1, 0x7fff_0000); // wide
      st.delete(3);
      assert.equal(st.slotOf(3), -1);
      assert.equal(st.wideSlots, 0);
      const s = st.create(3);
      for (let i = 0; i < CHUNK_PAGES; i++) assert.equal(st.get(s, i), 0);
      assert.deepEqual([...st.chunks()].map(([c]) => c), [5, 9, 1, 3]);
      // Many chunks: slabs grow, every value stays.
      for (let c = 100; c < 300; c++) st.set(st.create(c), c % 512, c * 1000);
      for (let c = 100; c < 300; c++) {
        assert.equal(st.get(st.slotOf(c), c % 512), c * 1000);
      }
      assert.equal(st.size, 204);
      st.clear();
      assert.equal(st.size, 0);
      assert.equal(st.slotOf(5), -1);
    },
  );
});

Deno.test("PfnStore.nextSet and chunks() agree with a plain scan and a Map under random use", () => {
  const op = fc.record({
    kind: fc.constantFrom("set", "clear", "next", "create", "delete"),
    chunk: fc.integer({ min: 0, max: 200 }),
    page: fc.integer({ min: 0, max: CHUNK_PAGES - 1 }),
    // Mostly near one frame (narrow slots), sometimes far (widens the slot).
    value: fc.oneof(
      { arbitrary: fc.integer({ min: 0x4_0000, max: 0x4_1000 }), weight: 9 },
      { arbitrary: fc.integer({ min: 1, max: 0xffff_ffff }), weight: 1 },
    ),
  });
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 50, maxLength: 400, size: "max" }),
      (ops) => {
        const st = new PfnStore();
        const order = new Map<number, number>();
        for (const o of ops) {
          let s = st.slotOf(o.chunk);
          if (o.kind === "delete") {
            st.delete(o.chunk);
            order.delete(o.chunk);
            continue;
          }
          if (s < 0) {
            if (o.kind !== "create" && o.kind !== "set") continue;
            s = st.create(o.chunk);
            order.set(o.chunk, s);
          }
          if (o.kind === "set") st.set(s, o.page, o.value);
          else if (o.kind === "clear") st.set(s, o.page, 0);
          else if (o.kind === "next") {
            let want = o.page;
            while (want < CHUNK_PAGES && st.get(s, want) === 0) want++;
            assert.equal(st.nextSet(s, o.page), want);
          }
        }
        assert.deepEqual([...st.chunks()], [...order]);
        assert.equal(st.size, order.size);
        for (const [c, s] of order) {
          for (let i = 0; i <= CHUNK_PAGES; i += i < 8 ? 1 : 61) {
            let want = i;
            while (want < CHUNK_PAGES && st.get(s, want) === 0) want++;
            assert.equal(st.nextSet(s, i), want, `chunk ${c} from ${i}`);
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});
