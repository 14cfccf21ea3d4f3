/**
 * SetAssocTlb against a plain reference model (the set-associative LRU
 * cache written the obvious way, one record per entry): random sequences
 * of inserts, lookups, hits, readiness changes and invalidations over a
 * small TLB and a small address space (so sets fill and page sizes
 * overlap) must give the same entry indices, addresses and counts. The
 * TLB's hit path reads a packed copy of its entries; this checks that the
 * copy never drifts from what the entries say.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SetAssocTlb } from "../../lib/smmu/mod.ts";

interface RefEntry {
  kind: number;
  a: number;
  b: number;
  shift: number;
  va: number;
  out: number;
  prot: number;
  stamp: number;
  ready: number;
}

/** The reference: same geometry, same replacement, records instead of arrays. */
class RefTlb {
  readonly e: RefEntry[];
  clock = 0;
  constructor(readonly entries: number, readonly ways: number) {
    this.e = Array.from({ length: entries }, () => ({
      kind: 0,
      a: 0,
      b: 0,
      shift: 12,
      va: 0,
      out: 0,
      prot: 0,
      stamp: 0,
      ready: 0,
    }));
  }
  #first(page: number): number {
    return (page % (this.entries / this.ways)) * this.ways;
  }
  lookup(a: number, b: number, addr: number): number {
    for (const shift of [12, 21, 30]) {
      if (!this.e.some((x) => x.kind !== 0 && x.shift === shift)) continue;
      const page = Math.floor(addr / 2 ** shift);
      const first = this.#first(page);
      for (let i = first; i < first + this.ways; i++) {
        const x = this.e[i]!;
        if (
          x.kind !== 0 && x.shift === shift && x.va === page * 2 ** shift &&
          x.a === a && x.b === b
        ) {
          x.stamp = ++this.clock;
          return i;
        }
      }
    }
    return -1;
  }
  hit(a: number, b: number, addr: number, need: number, by: number): number {
    const i = this.lookup(a, b, addr);
    if (i < 0) return -1;
    const x = this.e[i]!;
    if ((x.prot & need) !== need || x.ready > by) return -1;
    return x.out + (addr - x.va);
  }
  insert(
    a: number,
    b: number,
    kind: number,
    size: number,
    inBase: number,
    outBase: number,
    prot: number,
  ): number {
    const shift = size >= 2 ** 30 ? 30 : size >= 2 ** 21 ? 21 : 12;
    const page = Math.floor(inBase / 2 ** shift);
    const va = page * 2 ** shift;
    const first = this.#first(page);
    let same = -1, free = -1, lru = first, oldest = Infinity;
    for (let i = first; i < first + this.ways; i++) {
      const x = this.e[i]!;
      if (x.kind === 0) {
        if (free < 0) free = i;
        continue;
      }
      if (x.va === va && x.shift === shift && x.a === a && x.b === b) {
        same = i;
        break;
      }
      if (x.stamp < oldest) {
        oldest = x.stamp;
        lru = i;
      }
    }
    const i = same >= 0 ? same : free >= 0 ? free : lru;
    this.e[i] = {
      kind,
      a,
      b,
      shift,
      va,
      out: Math.floor(outBase / 2 ** shift) * 2 ** shift,
      prot,
      stamp: ++this.clock,
      ready: 0,
    };
    return i;
  }
  invalidate(
    a: number,
    b: number | undefined,
    kinds: number,
    start: number,
    end: number,
  ): number {
    let n = 0;
    for (const x of this.e) {
      if (x.kind === 0) continue;
      if (kinds !== 0 && (kinds & (1 << x.kind)) === 0) continue;
      if (a !== -1 && x.a !== a) continue;
      if (b !== undefined && x.b !== b) continue;
      if (x.va < end && x.va + 2 ** x.shift > start) {
        x.kind = 0;
        n++;
      }
    }
    return n;
  }
  get valid(): number {
    return this.e.filter((x) => x.kind !== 0).length;
  }
}

const SIZES = [2 ** 12, 2 ** 21, 2 ** 30];
/** Addresses in 8 GiB: 2 MiB and 1 GiB pages overlap the 4 KiB ones. */
const addr = fc.integer({ min: 0, max: 2 ** 33 - 1 });
/** Mostly a few pages of two 2 MiB regions, so sets fill up and collide. */
const nearAddr = fc.tuple(fc.integer({ min: 0, max: 1 }), fc.nat(23)).map((
  [r, p],
) => r * 2 ** 21 + p * 4096 + (p % 7) * 16);
const anyAddr = fc.oneof({ weight: 9, arbitrary: nearAddr }, {
  weight: 1,
  arbitrary: addr,
});
const ctx = fc.tuple(
  fc.integer({ min: 0, max: 1 }),
  fc.integer({ min: -1, max: 0 }),
);

type Op =
  | {
    op: "insert";
    a: number;
    b: number;
    kind: number;
    size: number;
    va: number;
    out: number;
    prot: number;
  }
  | { op: "lookup"; a: number; b: number; addr: number }
  | { op: "hit"; a: number; b: number; addr: number; need: number; by: number }
  | { op: "ready"; addr: number; t: number }
  | {
    op: "invalidate";
    a: number;
    b: number | undefined;
    kinds: number;
    start: number;
    len: number;
  }
  | { op: "all" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("insert" as const),
      ab: ctx,
      kind: fc.integer({ min: 1, max: 4 }),
      size: fc.oneof(
        { weight: 6, arbitrary: fc.constant(SIZES[0]!) },
        { weight: 2, arbitrary: fc.constant(SIZES[1]!) },
        { weight: 1, arbitrary: fc.constant(SIZES[2]!) },
      ),
      va: anyAddr,
      out: addr,
      prot: fc.integer({ min: 0, max: 3 }),
    }).map(({ ab, ...r }) => ({ ...r, a: ab[0], b: ab[1] })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("lookup" as const),
      ab: ctx,
      addr: anyAddr,
    })
      .map(({ ab, ...r }) => ({ ...r, a: ab[0], b: ab[1] })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("hit" as const),
      ab: ctx,
      addr: anyAddr,
      need: fc.integer({ min: 0, max: 3 }),
      by: fc.integer({ min: 0, max: 20 }),
    }).map(({ ab, ...r }) => ({ ...r, a: ab[0], b: ab[1] })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("ready" as const),
      addr: anyAddr,
      t: fc.integer({ min: 0, max: 20 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("invalidate" as const),
      a: fc.integer({ min: -1, max: 2 }),
      b: fc.option(fc.integer({ min: -1, max: 1 }), { nil: undefined }),
      kinds: fc.integer({ min: 0, max: 31 }),
      start: anyAddr,
      len: fc.oneof(
        fc.integer({ min: 1, max: 2 ** 16 }),
        fc.constant(Infinity),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "all" as const }) },
);

function run(entries: number, ways: number, ops: Op[]): void {
  const tlb = new SetAssocTlb({ entries, ways });
  const ref = new RefTlb(entries, ways);
  for (const o of ops) {
    switch (o.op) {
      case "insert":
        assert.equal(
          tlb.insert(o.a, o.b, o.kind, o.size, o.va, o.out, o.prot),
          ref.insert(o.a, o.b, o.kind, o.size, o.va, o.out, o.prot),
        );
        break;
      case "lookup": {
        const i = tlb.lookup(o.a, o.b, o.addr);
        assert.equal(i, ref.lookup(o.a, o.b, o.addr));
        if (i >= 0) {
          const x = ref.e[i]!;
          assert.equal(tlb.translate(i, o.addr), x.out + (o.addr - x.va));
          assert.equal(tlb.prot[i], x.prot);
          assert.equal(tlb.readyAt(i), x.ready);
        }
        break;
      }
      case "hit":
        assert.equal(
          tlb.hit(o.a, o.b, o.addr, o.need, o.by),
          ref.hit(o.a, o.b, o.addr, o.need, o.by),
        );
        break;
      case "ready": {
        // Mark the entry (if any) of context (0, -1) at addr, as the SMMU
        // does after a walk; both lookups refresh the same stamp.
        const i = tlb.lookup(0, -1, o.addr);
        assert.equal(i, ref.lookup(0, -1, o.addr));
        if (i >= 0) {
          tlb.setReadyAt(i, o.t);
          ref.e[i]!.ready = o.t;
        }
        break;
      }
      case "invalidate":
        assert.equal(
          tlb.invalidate(o.a, o.b, o.kinds, o.start, o.start + o.len),
          ref.invalidate(o.a, o.b, o.kinds, o.start, o.start + o.len),
        );
        break;
      case "all":
        assert.equal(tlb.invalidateAll(), ref.valid);
        ref.invalidate(-1, undefined, 0, 0, Infinity);
        break;
    }
    assert.equal(tlb.valid, ref.valid);
  }
}

for (const [entries, ways] of [[8, 2], [16, 4], [12, 4], [6, 1]] as const) {
  Deno.test(`SetAssocTlb (${entries} entries, ${ways} ways) behaves as the reference model`, () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 200 }), (ops) => {
        run(entries, ways, ops);
      }),
      { numRuns: 150 },
    );
  });
}
