/**
 * Seeded bugs the test suite must catch (`deno task mutants`). Each mutant
 * replaces one exact piece of a lib/ file (it must occur exactly once) and
 * names the tests that should fail; a mutant whose tests still pass is a
 * hole in the suite. Add one for every invariant a test is meant to guard.
 *
 * @module
 */

/** One seeded bug. */
export interface Mutant {
  /** Short stable name. */
  readonly id: string;
  /** The file it changes, relative to the project root. */
  readonly file: string;
  /** The exact text replaced (must occur exactly once in `file`). */
  readonly find: string;
  /** What replaces it. */
  readonly replace: string;
  /** The behaviour it breaks. */
  readonly breaks: string;
  /** The test files (or folders) that must catch it. */
  readonly tests: readonly string[];
}

/** Every seeded mutation, in the order they run. */
export const MUTANTS: readonly Mutant[] = [
  {
    id: "iopf-discard-keeps-partials",
    file: "lib/iommu/io_pgfault.ts",
    find: "      n += p.partial.length;\n      p.partial = [];",
    replace: "      n += p.partial.length;",
    breaks:
      "iopf_queue_discard_partial must drop the parked partial faults, not only count them",
    tests: ["tests/iommu/io_pgfault_test.ts"],
  },
  {
    id: "strict-unmap-skips-sync",
    file: "lib/iommu/core.ts",
    find:
      '    if (this.invalidation === "strict" || r.bytes === 0) {\n      this.iotlbSync(domain, gather, done);',
    replace:
      '    if (this.invalidation === "strict" || r.bytes === 0) {\n      this.sim.after(0, () => done?.());',
    breaks:
      "a strict iommu_unmap must invalidate the IOTLB (and ATC) before it completes",
    tests: ["tests/iommu/core_test.ts", "tests/reliability/sanitizer_test.ts"],
  },
  {
    id: "pgtable-map-overlap-allowed",
    file: "lib/pgtable/io_pgtable.ts",
    find:
      '    if (hit >= 0) {\n      throw new IopfLabError(\n        "EEXIST",',
    replace:
      '    if (hit >= 0 && false) {\n      throw new IopfLabError(\n        "EEXIST",',
    breaks: "io-pgtable map over an existing mapping must fail with EEXIST",
    tests: ["tests/pgtable/"],
  },
  {
    id: "resource-serves-out-of-order",
    file: "lib/sim/resource.ts",
    find: "      const next = this.#queue[this.#head]!;",
    replace:
      "      const next = this.#queue[this.#queue.length - 1]!;\n      this.#queue[this.#queue.length - 1] = this.#queue[this.#head]!;",
    breaks: "a Resource serves its waiters in FIFO order",
    tests: ["tests/sim/"],
  },
];
