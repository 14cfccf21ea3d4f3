/**
 * Reclaim of an address space to swap (mm/vmscan.c): the second-chance
 * clock over 2 MiB chunks and the per-folio reclaim with its notifier
 * calls. Private to lib/mm; the public entry point is
 * {@linkcode MmStruct.reclaim}.
 *
 * @module
 */
import { SZ_2M, SZ_4K } from "../sim/units.ts";
import type { ReclaimResult } from "./host_memory.ts";
import type { MmState } from "./_mm.ts";
import { CHUNK_PAGES, type VmaState } from "./_vma.ts";
import { invalidateRange } from "./mmu_notifier.ts";

/**
 * Reclaims about `npages` unpinned 4 KiB pages of `s` to swap; see
 * {@linkcode MmStruct.reclaim} for the order and the costs. Reclaims
 * nothing when called from a notifier callback.
 */
export function reclaim(s: MmState, npages: number): ReclaimResult {
  if (s.zapping > 0 || !(npages > 0)) return { reclaimed: 0, ns: 0 };
  const vmas = s.vmas;
  let candidates = 0;
  let chunks = 0;
  for (const v of vmas) {
    if (!v.swappable) continue;
    candidates += v.populated - v.pinned;
    chunks += v.nChunks;
  }
  if (candidates === 0 || s.host.swap.free <= 0) return { reclaimed: 0, ns: 0 };
  s.reclaimNs = 0;
  let reclaimed = 0;
  let budget = 2 * (chunks + vmas.length) + 2;
  while (reclaimed < npages && budget-- > 0) {
    if (s.handVma >= vmas.length) {
      s.handVma = 0;
      s.handChunk = 0;
    }
    const v = vmas[s.handVma]!;
    const c = s.handChunk;
    if (v.swappable && c < v.nChunks && v.chunkPop[c]! > 0) {
      if (v.chunkRef[c] === 1) v.chunkRef[c] = 0;
      else reclaimed += reclaimChunk(s, v, c, npages - reclaimed);
    }
    if (reclaimed >= npages) break;
    if (!v.swappable || c + 1 >= v.nChunks) {
      s.handVma++;
      s.handChunk = 0;
    } else {
      s.handChunk = c + 1;
    }
  }
  return { reclaimed, ns: s.reclaimNs };
}

/** True when [lo, hi) overlaps the range being populated. */
function fenced(s: MmState, lo: number, hi: number): boolean {
  return s.fenceHi > lo && hi > s.fenceLo;
}

/**
 * Reclaims up to `need` pages of chunk c of v (a whole THP counts 512);
 * returns pages freed and adds the ns to `s.reclaimNs`.
 */
function reclaimChunk(
  s: MmState,
  v: VmaState,
  c: number,
  need: number,
): number {
  const host = s.host;
  const per = s.costs["mm.reclaimPer4k"];
  const base = v.start + c * SZ_2M;
  let got = 0;
  const swap = host.swap;
  if (v.chunkFrame[c] !== 0) {
    if (v.chunkPinned[c]! > 0 || fenced(s, base, base + SZ_2M)) return 0;
    if (swap.free < CHUNK_PAGES) return 0; // swap full: the THP stays
    s.reclaimNs += invalidateRange(s, base, base + SZ_2M, () => {
      const f = v.chunkFrame[c]!;
      if (f === 0 || v.chunkPinned[c]! > 0) return;
      host.freePage((f - 1) * CHUNK_PAGES, SZ_2M);
      v.chunkFrame[c] = 0;
      v.chunkPop[c] = 0;
      v.populated -= CHUNK_PAGES;
      for (let i = 0; i < CHUNK_PAGES; i++) v.setSwapped(c, i);
      got = CHUNK_PAGES;
    });
  } else {
    const valid = v.validPages(c);
    // Every page pinned: nothing here can go (skips the page-by-page scan).
    if (v.chunkPinned[c] === valid) return 0;
    // Every populated page pinned (pinned pages are populated unless a
    // zap detached them): likewise, as IOPF leaves the chunks it pinned.
    if (v.detached.size === 0 && v.chunkPinned[c]! >= v.chunkPop[c]!) return 0;
    for (let i = 0; i < valid && got < need && swap.free > 0; i++) {
      const slot = v.pfns.slotOf(c);
      if (slot < 0) break;
      i = v.pfns.nextSet(slot, i);
      if (i >= valid) break;
      const p = c * CHUNK_PAGES + i;
      if (v.chunkPinned[c] !== 0 && v.pinOf(p) > 0) continue;
      const hva = base + i * SZ_4K;
      if (fenced(s, hva, hva + SZ_4K)) continue;
      s.reclaimNs += invalidateRange(s, hva, hva + SZ_4K, () => {
        const now = v.pfns.slotOf(c);
        if (now < 0 || v.pfns.get(now, i) === 0 || v.pinOf(p) > 0) return;
        host.freePage(v.pfns.get(now, i) - 1, SZ_4K);
        v.pfns.set(now, i, 0);
        v.populated--;
        v.chunkPop[c] = v.chunkPop[c]! - 1;
        if (v.chunkPop[c] === 0) v.pfns.delete(c);
        v.setSwapped(c, i);
        got++;
      });
    }
  }
  s.swapOuts += got;
  s.reclaimNs += per * got;
  return got;
}
