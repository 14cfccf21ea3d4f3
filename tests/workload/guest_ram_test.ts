import assert from "node:assert/strict";
import { GuestRamAllocator } from "../../lib/workload/guest_ram.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

const MiB = 2 ** 20;

Deno.test("buffers come from above the RAM the guest touched, then from the touched part", () => {
  const a = new GuestRamAllocator(64 * MiB, {
    reserved: 2 * MiB,
    touched: 48 * MiB,
  });
  assert.equal(a.touchedEnd, 48 * MiB);
  assert.equal(a.alloc(8 * MiB), 48 * MiB);
  assert.equal(a.allocFresh(8 * MiB), 56 * MiB);
  // Above is used up: the guest reclaims its own (touched) RAM, from base.
  assert.equal(a.allocFresh(4 * MiB), 2 * MiB);
  a.free(48 * MiB, 8 * MiB);
  assert.equal(a.alloc(8 * MiB), 48 * MiB); // freed buffers first fit
  assert.equal(a.alloc(42 * MiB), 6 * MiB);
  assert.throws(
    () => a.alloc(4096),
    (e: unknown) => e instanceof IopfLabError && e.code === "ENOMEM",
  );
  assert.throws(() => a.free(60 * MiB, 4 * MiB + 4096), /not allocated/);
});

Deno.test("without touched RAM the allocator starts above the reserved low memory, as before", () => {
  const a = new GuestRamAllocator(64 * MiB, { reserved: 2 * MiB });
  assert.equal(a.touchedEnd, 2 * MiB);
  assert.equal(a.alloc(62 * MiB), 2 * MiB);
  assert.throws(() => a.alloc(4096), /guest RAM exhausted/);
  // Touched RAM rounds up to 2 MiB and never exceeds RAM.
  assert.equal(
    new GuestRamAllocator(64 * MiB, { touched: 3 * MiB }).touchedEnd,
    4 * MiB,
  );
  const full = new GuestRamAllocator(64 * MiB, { touched: 64 * MiB });
  assert.equal(full.alloc(4096), full.base);
});

Deno.test("a first buffer larger than the RAM above the touched part reaches down into it", () => {
  const a = new GuestRamAllocator(256 * MiB, {
    reserved: 4 * MiB,
    touched: 128 * MiB,
  });
  assert.equal(a.alloc(192 * MiB), 64 * MiB); // the top 192 MiB
  assert.equal(a.alloc(8 * MiB), 4 * MiB); // then below it
  a.free(64 * MiB, 192 * MiB);
  assert.throws(() => a.alloc(256 * MiB), /guest RAM exhausted/);
});
