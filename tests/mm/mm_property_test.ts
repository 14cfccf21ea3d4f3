/**
 * Property test: random pin / unpin / touch / prefault / reclaim / madvise /
 * locked_vm sequences against a simple reference model.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import type { Backing, VmArea } from "../../lib/mm/types.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { MiB, TEST_COSTS } from "./_helpers.ts";

const P = 4096;
const LOCK_LIMIT = 300; // pages

type Op =
  | {
    kind: "touch" | "prefault" | "pin" | "unpin" | "madvise";
    vma: number;
    off: number;
    len: number;
  }
  | { kind: "unpinSome"; pick: number }
  | { kind: "reclaim"; n: number }
  | { kind: "account"; n: number; charge: boolean };

const range = (kind: "touch" | "prefault" | "pin" | "unpin" | "madvise") =>
  fc.record({
    kind: fc.constant(kind),
    vma: fc.nat(2),
    off: fc.nat(1600),
    len: fc.integer({ min: 1, max: 700 }),
  });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: range("touch"), weight: 3 },
  { arbitrary: range("prefault"), weight: 1 },
  { arbitrary: range("pin"), weight: 4 },
  { arbitrary: range("unpin"), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("unpinSome" as const),
      pick: fc.nat(),
    }),
    weight: 3,
  },
  { arbitrary: range("madvise"), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("reclaim" as const),
      n: fc.integer({ min: 1, max: 1500 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("account" as const),
      n: fc.nat(200),
      charge: fc.boolean(),
    }),
    weight: 2,
  },
);

class World {
  host = new HostMemory({ size: 8 * MiB, costs: TEST_COSTS });
  mm = new MmStruct(this.host, { memlockLimit: LOCK_LIMIT * P });
  vmas: VmArea[];
  /** Reference pin counts per VMA page. */
  pins: Int32Array[];
  /** PFN recorded when a page became pinned. */
  pinnedPfn: Float64Array[];
  /** Reference: pages in swap. */
  inSwap: Uint8Array[];
  /**
   * Frames MADV_DONTNEED took out of the CPU's view while the page was
   * pinned (zap_page_range drops the PTE, the pin keeps the frame), per VMA
   * page; they go with the page's last pin.
   */
  detached: Int32Array[];
  /** True while a madvise runs (pinned pages may leave the CPU's view). */
  discarding = false;
  lockedVm = 0;
  swapIns = 0;
  swapOuts = 0;
  /** Pins taken, as [vma, first page, count], for valid unpins. */
  held: Array<[number, number, number]> = [];
  /** Notifier log of the current op: [start, end, phase]. */
  calls: Array<[number, number, "start" | "end"]> = [];
  notifierViolations: string[] = [];

  constructor() {
    const specs: Array<[number, Backing]> = [
      [2 * MiB + 4 * P, "4k"],
      [6 * MiB + 2 * P, "thp"],
      [4 * MiB, "hugetlb-2m"],
    ];
    this.vmas = specs.map(([size, backing]) => this.mm.mmap({ size, backing }));
    this.pins = this.vmas.map((v) => new Int32Array(v.size / P));
    this.pinnedPfn = this.vmas.map((v) => new Float64Array(v.size / P));
    this.inSwap = this.vmas.map((v) => new Uint8Array(v.size / P));
    this.detached = this.vmas.map((v) => new Int32Array(v.size / P));
    const first = this.vmas[0]!, last = this.vmas[this.vmas.length - 1]!;
    this.mm.registerMmuNotifier(first.start, last.end - first.start, {
      invalidateRangeStart: (s, e) => {
        this.calls.push([s, e, "start"]);
      },
      invalidateRangeEnd: (s, e) => {
        this.calls.push([s, e, "end"]);
        // Every page the range lost must be gone by now, and a pinned page
        // inside the range must still be there.
        for (let a = s; a < e; a += P) {
          const [vi, p] = this.locate(a);
          if (
            !this.discarding && this.pins[vi]![p]! > 0 &&
            this.mm.hvaToPfn(a) < 0
          ) {
            this.notifierViolations.push(`pinned page ${a} lost`);
          }
        }
      },
    });
  }

  /** One pin of page `p` of VMA `vi` goes; the last frees its detached frames. */
  unpinRef(vi: number, p: number): void {
    const pins = this.pins[vi]!;
    pins[p] = pins[p]! - 1;
    if (pins[p] === 0) this.detached[vi]![p] = 0;
  }

  locate(hva: number): [number, number] {
    const vi = this.vmas.findIndex((v) => hva >= v.start && hva < v.end);
    return [vi, (hva - this.vmas[vi]!.start) / P];
  }

  pfns(): Float64Array[] {
    return this.vmas.map((v) => {
      const a = new Float64Array(v.size / P);
      for (let p = 0; p < a.length; p++) {
        a[p] = this.mm.hvaToPfn(v.start + p * P);
      }
      return a;
    });
  }

  counters() {
    const m = this.mm;
    return [
      m.pinnedPages,
      m.lockedVm,
      m.populatedBytes,
      m.swappedPages,
      m.swapIns,
      m.swapOuts,
      this.host.usedBytes,
    ];
  }

  clamp(
    vma: number,
    off: number,
    len: number,
    align: boolean,
  ): [number, number] {
    const n = this.vmas[vma]!.size / P;
    let a = off % n;
    let b = Math.min(n, a + len);
    if (align) {
      a -= a % 512;
      b = Math.min(n, Math.ceil(b / 512) * 512);
    }
    return [a, b];
  }

  check(before: Float64Array[]): Float64Array[] {
    const now = this.pfns();
    const seen = new Set<number>();
    let populated = 0, pinned = 0, swapped = 0;
    for (let vi = 0; vi < this.vmas.length; vi++) {
      const v = this.vmas[vi]!;
      for (let p = 0; p < now[vi]!.length; p++) {
        const pfn = now[vi]![p]!;
        const pin = this.pins[vi]![p]!;
        assert.equal(this.mm.pinCount(v.start + p * P), pin, "pin count");
        if (pin > 0) {
          pinned++;
          if (this.detached[vi]![p] === 0) {
            assert.equal(
              pfn,
              this.pinnedPfn[vi]![p],
              "a pinned page keeps its frame",
            );
          }
        }
        if (pfn >= 0) {
          populated++;
          assert.ok(!seen.has(pfn), "frames are not shared");
          seen.add(pfn);
          assert.ok(this.host.isAllocated(pfn));
          // Populated pages never move: either same frame or freed.
          const old = before[vi]![p]!;
          assert.ok(old < 0 || old === pfn, "no migration");
          assert.equal(this.inSwap[vi]![p], 0, "populated page is not in swap");
        }
        swapped += this.inSwap[vi]![p]!;
      }
    }
    assert.equal(this.mm.pinnedPages, pinned);
    assert.equal(this.mm.populatedBytes, populated * P);
    let detached = 0;
    for (const d of this.detached) for (const n of d) detached += n;
    assert.equal(this.host.usedBytes, (populated + detached) * P);
    assert.equal(this.mm.lockedVm, this.lockedVm);
    assert.equal(this.mm.swappedPages, swapped);
    assert.equal(this.mm.swapIns, this.swapIns);
    assert.equal(this.mm.swapOuts, this.swapOuts);
    assert.deepEqual(this.notifierViolations, []);
    return now;
  }

  /** Reference update for pages populated by a successful fault over [a, b) and beyond. */
  faulted(before: Float64Array[], after: Float64Array[]): void {
    for (let vi = 0; vi < this.vmas.length; vi++) {
      for (let p = 0; p < after[vi]!.length; p++) {
        if (before[vi]![p]! < 0 && after[vi]![p]! >= 0 && this.inSwap[vi]![p]) {
          this.inSwap[vi]![p] = 0;
          this.swapIns++;
        }
      }
    }
  }

  run(op: Op): void {
    const before = this.pfns();
    const counters = this.counters();
    this.calls = [];
    const mm = this.mm;
    const expectUnchanged = (e: unknown, codes: string[]) => {
      assert.ok(e instanceof IopfLabError && codes.includes(e.code), String(e));
      const now = this.pfns();
      assert.deepEqual(now, before, "failed call changed pages");
      assert.deepEqual(
        this.counters(),
        counters,
        "failed call changed counters",
      );
    };
    switch (op.kind) {
      case "touch":
      case "prefault":
      case "pin": {
        const [a, b] = this.clamp(op.vma, op.off, op.len, false);
        const v = this.vmas[op.vma]!;
        try {
          if (op.kind === "touch") mm.touch(v.start + a * P, (b - a) * P);
          else if (op.kind === "prefault") {
            mm.prefault(v.start + a * P, (b - a) * P);
          } else mm.pinUserPages(v.start + a * P, b - a, { longterm: true });
        } catch (e) {
          expectUnchanged(e, ["ENOMEM"]);
          break;
        }
        const after = this.pfns();
        for (let p = a; p < b; p++) {
          assert.ok(after[op.vma]![p]! >= 0, "range populated");
        }
        assert.deepEqual(this.calls, [], "faults call no notifier");
        this.faulted(before, after);
        if (op.kind === "pin") {
          for (let p = a; p < b; p++) {
            const pins = this.pins[op.vma]!;
            if (pins[p] === 0) this.pinnedPfn[op.vma]![p] = after[op.vma]![p]!;
            pins[p] = pins[p]! + 1;
          }
          this.held.push([op.vma, a, b - a]);
        }
        break;
      }
      case "unpin": {
        const [a, b] = this.clamp(op.vma, op.off, op.len, false);
        const ok = this.pins[op.vma]!.subarray(a, b).every((x) => x > 0);
        try {
          mm.unpinUserPages(this.vmas[op.vma]!.start + a * P, b - a);
        } catch (e) {
          assert.ok(!ok, "valid unpin failed");
          expectUnchanged(e, ["EINVAL"]);
          break;
        }
        assert.ok(ok, "invalid unpin succeeded");
        for (let p = a; p < b; p++) this.unpinRef(op.vma, p);
        // Drop held records that no longer fit the reference (rebuild from pins).
        this.held = this.held.filter(([vi, s, n]) =>
          this.pins[vi]!.subarray(s, s + n).every((x) => x > 0)
        );
        break;
      }
      case "unpinSome": {
        if (this.held.length === 0) break;
        const i = op.pick % this.held.length;
        const [vi, s, n] = this.held[i]!;
        this.held.splice(i, 1);
        mm.unpinUserPages(this.vmas[vi]!.start + s * P, n);
        for (let p = s; p < s + n; p++) this.unpinRef(vi, p);
        break;
      }
      case "reclaim": {
        const r = mm.reclaim(op.n);
        const after = this.pfns();
        let lost = 0;
        for (let vi = 0; vi < this.vmas.length; vi++) {
          const v = this.vmas[vi]!;
          for (let p = 0; p < after[vi]!.length; p++) {
            if (before[vi]![p]! >= 0 && after[vi]![p]! < 0) {
              lost++;
              assert.equal(this.pins[vi]![p], 0, "a pinned page was reclaimed");
              assert.notEqual(v.backing, "hugetlb-2m", "hugetlb was reclaimed");
              this.inSwap[vi]![p] = 1;
              const hva = v.start + p * P;
              const idx = this.calls.findIndex(([s, e, ph]) =>
                ph === "start" && s <= hva && hva < e
              );
              assert.ok(idx >= 0, "no notifier before reclaim");
            }
          }
        }
        assert.equal(r.reclaimed, lost);
        this.swapOuts += lost;
        if (r.reclaimed === 0) assert.ok(this.calls.length === 0);
        break;
      }
      case "madvise": {
        const v = this.vmas[op.vma]!;
        const huge = v.backing === "hugetlb-2m";
        const [a, b] = this.clamp(op.vma, op.off, op.len, huge);
        this.discarding = true;
        try {
          mm.madviseDontneed(v.start + a * P, (b - a) * P);
        } finally {
          this.discarding = false;
        }
        assert.deepEqual(this.calls, [
          [v.start + a * P, v.start + b * P, "start"],
          [v.start + a * P, v.start + b * P, "end"],
        ]);
        const after = this.pfns();
        for (let p = a; p < b; p++) {
          this.inSwap[op.vma]![p] = 0;
          const pinnedFolio: boolean = huge
            ? this.pins[op.vma]!.subarray(p - p % 512, p - p % 512 + 512).some((
              x,
            ) => x > 0)
            : this.pins[op.vma]![p]! > 0;
          // hugetlb: a pinned huge page stays whole and mapped; 4 KiB and THP:
          // the CPU loses every page, a pinned one's frame stays allocated.
          assert.equal(
            after[op.vma]![p]! >= 0,
            huge && pinnedFolio && before[op.vma]![p]! >= 0,
            "madvise frees unpinned",
          );
          if (!huge && pinnedFolio && before[op.vma]![p]! >= 0) {
            this.detached[op.vma]![p]!++;
          }
        }
        break;
      }
      case "account": {
        const ok = op.charge
          ? this.lockedVm + op.n <= LOCK_LIMIT
          : op.n <= this.lockedVm;
        try {
          mm.accountLockedVm(op.n, op.charge);
        } catch (e) {
          assert.ok(!ok);
          expectUnchanged(e, [op.charge ? "ENOMEM" : "EINVAL"]);
          break;
        }
        assert.ok(ok);
        this.lockedVm += op.charge ? op.n : -op.n;
        break;
      }
    }
    this.check(before);
  }

  teardown(): void {
    for (let vi = 0; vi < this.vmas.length; vi++) {
      const pins = this.pins[vi]!;
      for (let p = 0; p < pins.length; p++) {
        while (pins[p]! > 0) {
          let q = p;
          while (q < pins.length && pins[q]! > 0) q++;
          this.mm.unpinUserPages(this.vmas[vi]!.start + p * P, q - p);
          for (let i = p; i < q; i++) this.unpinRef(vi, i);
        }
      }
    }
    this.mm.accountLockedVm(this.lockedVm, false);
    for (const v of this.vmas) this.mm.munmap(v.start, v.size);
    assert.equal(this.mm.pinnedPages, 0);
    assert.equal(this.mm.lockedVm, 0);
    assert.equal(this.mm.populatedBytes, 0);
    assert.equal(this.mm.swappedPages, 0);
    assert.equal(this.host.usedBytes, 0);
    assert.equal(this.host.free2mPages, 4, "all frames coalesced back");
  }
}

Deno.test("MmStruct: random operation sequences agree with a reference model", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 60, size: "medium" }),
      (ops) => {
        const w = new World();
        for (const op of ops) w.run(op);
        w.teardown();
      },
    ),
    { seed: 20210409, numRuns: 100 },
  );
});
