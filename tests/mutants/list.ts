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
  {
    id: "static-pin-skips-memlock-precheck",
    file: "lib/vfio/pin.ts",
    find:
      "    const allow = limitPages(s) - mm.lockedVm;\n    if (allow < n) {",
    replace:
      "    const allow = limitPages(s) - mm.lockedVm;\n    if (allow < n && false) {",
    breaks:
      "static pinning checks RLIMIT_MEMLOCK before pinning a batch (faults in only up to the limit, ENOMEM naming it)",
    tests: ["tests/vfio/container_test.ts"],
  },
  {
    id: "mmu-notifier-skips-unmap",
    file: "lib/vfio/iopf.ts",
    find: "  const n = countBits(bits, p0, p1);\n  if (n === 0) return ns;",
    replace: "  const n = countBits(bits, p0, p1);\n  if (n >= 0) return ns;",
    breaks:
      "the MMU notifier must unmap (and sync) the IOPF-mapped pages before the mm frees them",
    tests: [
      "tests/vfio/notifier_smmu_test.ts",
      "tests/reliability/sanitizer_test.ts",
    ],
  },
  {
    id: "iopf-bitmap-not-set",
    file: "lib/vfio/iopf.ts",
    find: "  fillBits(dma.bitmap!, a, a + n, true);",
    replace: "",
    breaks:
      "a page VFIO mapped on fault is marked in the vfio_dma's IOPF bitmap (so unmap and the notifier find it)",
    tests: ["tests/vfio/"],
  },
  {
    id: "sanitizer-counts-nothing",
    file: "lib/experiment/sanitizer.ts",
    find: "    this.violations++;",
    replace: "",
    breaks:
      "the isolation sanitizer counts every access a stale or foreign translation lets through",
    tests: ["tests/reliability/sanitizer_test.ts"],
  },
  {
    id: "parser-premap-above-vfio-limit",
    file: "lib/experiment/config.ts",
    find: "export const MAX_PREMAP_PAGES = 2 ** 18;",
    replace: "export const MAX_PREMAP_PAGES = 2 ** 19;",
    breaks:
      "dma.premapPages above VFIO's 2^18 is refused by the parser, naming the field",
    tests: ["tests/reliability/bad_input_test.ts"],
  },
  {
    id: "smmu-stall-max-ignored",
    file: "lib/smmu/_stall.ts",
    find:
      "    const stag = s.stalled.size < s.features.stallMax ? takeStag(s) : -1;",
    replace: "    const stag = takeStag(s);",
    breaks:
      "past SMMU_IDR5.STALL_MAX outstanding stalls a stall-eligible fault is terminated (IHI0070 3.12, 6.3.6)",
    tests: ["tests/smmu/stall_limit_test.ts"],
  },
  {
    id: "smmu-pri-resp-mainline-enum",
    file: "lib/smmu/_cmdq.ts",
    find: "          : cmd.Resp === PRI_RESP_INVALID",
    replace: "          : cmd.Resp === 0",
    breaks:
      "CMD_PRI_RESP Resp 0b01 is InvalidRequest and 0b00 ResponseFailure (IHI0070 4.5.2), not mainline's enum names",
    tests: ["tests/smmu/cmdq_test.ts", "tests/pci/prg_test.ts"],
  },
  {
    id: "smmu-cmdq-error-ignored",
    file: "lib/smmu/_cmdq.ts",
    find: "    if (err !== CERROR_NONE) {\n      // CONS.RD stays",
    replace: "    if (err === -1) {\n      // CONS.RD stays",
    breaks:
      "an illegal command stops the command queue with CERROR_ILL and GERROR.CMDQ_ERR (IHI0070 7.1)",
    tests: ["tests/smmu/cmdq_test.ts"],
  },
  {
    id: "smmu-memo-ignores-cfgi",
    file: "lib/smmu/_cmdq.ts",
    find: "      if (cmd.opcode <= CMD_CFGI_CD_ALL) dropStreamMemo(s);\n",
    replace: "",
    breaks:
      "translateCached's stream memo must not outlive a CMD_CFGI_* of its STE or CD (IHI0070 4.3)",
    tests: ["tests/smmu/translate_cached_test.ts"],
  },
  {
    id: "smmu-memo-ignores-cfg-eviction",
    file: "lib/smmu/_ptw.ts",
    find: "  const t = s.cfgTags;\n  dropStreamMemo(s);",
    replace: "  const t = s.cfgTags;",
    breaks:
      "translateCached's stream memo must not outlive the eviction of its STE or CD from the configuration cache",
    tests: ["tests/smmu/translate_cached_test.ts"],
  },
  {
    id: "iotlb-drop-keeps-hot-key",
    file: "lib/smmu/tlb.ts",
    find: "    this.kind[i] = 0;\n    this.#hot[i * HOT_STRIDE + H_KEY] = -1;",
    replace: "    this.kind[i] = 0;",
    breaks:
      "an IOTLB entry dropped by a TLBI must no longer answer the hit path",
    tests: [
      "tests/smmu/translate_cached_test.ts",
      "tests/smmu/tlb_property_test.ts",
    ],
  },
  {
    id: "iotlb-hot-out-stale",
    file: "lib/smmu/tlb.ts",
    find: "    h[o + H_OUT] = out;",
    replace: "    h[o + H_OUT] = 0;",
    breaks:
      "the IOTLB hit path answers with the output page the entry was filled with",
    tests: ["tests/smmu/tlb_property_test.ts"],
  },
  {
    id: "pgtable-batch-skips-eexist",
    file: "lib/pgtable/io_pgtable.ts",
    find: "          if (!leaf.valid(this.#leafSlot, (cur * INV_4K) & 511)) {",
    replace: "          if (leaf.used.length > 0) {",
    breaks:
      "mapPages refuses a mapped page in the cached leaf table with map's EEXIST",
    tests: ["tests/pgtable/map_pages_test.ts"],
  },
  {
    id: "pgtable-batch-keeps-tables-on-enomem",
    file: "lib/pgtable/io_pgtable.ts",
    find: "            this.#unmapRange(0, 0, 0, cur, cur + SZ_4K);\n",
    replace: "",
    breaks:
      "a page of mapPages whose table allocation fails frees the tables it installed, as its map call would",
    tests: ["tests/pgtable/map_pages_test.ts"],
  },
  {
    id: "smmu-batch-sums-in-another-order",
    file: "lib/smmu/driver.ts",
    find: "        ns += callNs + (perPte + tables[k]! * perTable);",
    replace: "        ns += callNs + perPte + tables[k]! * perTable;",
    breaks:
      "mapPages adds each page's cost as the sum of single map calls does (same floating-point result)",
    tests: ["tests/iommu/map_pages_test.ts"],
  },
  {
    id: "vfio-batch-uncounted-on-error",
    file: "lib/vfio/pin.ts",
    find: "  } finally {\n    dma.mappedPages += r.pages;\n  }",
    replace:
      "  } catch (e) {\n    throw e;\n  }\n  dma.mappedPages += r.pages;",
    breaks:
      "the pages a batch mapped before a failing one count as mapped, so the MAP_DMA unwind unmaps them",
    tests: ["tests/vfio/pin_batch_test.ts"],
  },
  {
    id: "pgtable-batch-run-skips-eexist",
    file: "lib/pgtable/io_pgtable.ts",
    find: "p + SZ_4K > MAX_PADDR || leaf.valid(slot, i + 1)",
    replace: "p + SZ_4K > MAX_PADDR",
    breaks:
      "mapPages refuses a mapped page further on in the same leaf table with map's EEXIST",
    tests: ["tests/pgtable/map_pages_test.ts"],
  },
  {
    id: "pgtable-batch-run-overruns-table",
    file: "lib/pgtable/io_pgtable.ts",
    find: "const end = Math.min(n, k + ENTRIES - i);",
    replace: "const end = Math.min(n, k + ENTRIES - i + 1);",
    breaks:
      "mapPages's run within a leaf table stops at its last entry (the next page is in the next table)",
    tests: ["tests/pgtable/map_pages_test.ts"],
  },
];
