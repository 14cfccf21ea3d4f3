/**
 * The vfio_dma ranges of a container (struct vfio_dma and the rb-tree of
 * drivers/vfio/vfio_iommu_type1.c, here a sorted array): the range record
 * with the RFC's IOPF bitmap, vfio_find_dma, and the range checks of
 * VFIO_IOMMU_MAP_DMA (vfio_dma_do_map) and VFIO_IOMMU_UNMAP_DMA
 * (vfio_dma_do_unmap). Private to lib/vfio; the public entry points are
 * {@linkcode VfioContainer.mapDma} and {@linkcode VfioContainer.unmapDma}.
 *
 * @module
 */
import type { MmuNotifier } from "../mm/types.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { MAX_ADDRESS, PAGE_SIZE } from "../sim/units.ts";
import { newBitmap } from "./_bitmap.ts";
import type {
  VfioDmaInfo,
  VfioDmaMapRequest,
  VfioDmaMode,
  VfioDmaUnmapRequest,
} from "./container.ts";

/** One vfio_dma: a range of the VMM mapped for DMA, and how it is backed. */
export class VfioDma {
  /** First IOVA. */
  readonly iova: number;
  /** Bytes. */
  readonly size: number;
  /** First HVA. */
  readonly vaddr: number;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** 4 KiB pages. */
  readonly npages: number;
  /** How the range is backed. */
  readonly mode: VfioDmaMode;
  /** The physical address of a PFNMAP range, else -1. */
  readonly pfnmap: number;
  /** The IOPF bitmap (iopf_mapped_bitmap: a bit per page), IOPF ranges only. */
  readonly bitmap: Uint32Array | null;
  /** 4 KiB pages mapped in the IOMMU by VFIO. */
  mappedPages = 0;
  /** 4 KiB pages this range holds pinned. */
  pinnedPages = 0;
  /** 4 KiB pages this range charged to locked_vm. */
  lockedPages = 0;
  /** The MMU notifier of an IOPF range (with `mmuNotifier`). */
  notifier: MmuNotifier | undefined;
  /** True once UNMAP_DMA or the release removed the range. */
  removed = false;

  /** The range `req` asks for, with `prot` and backed as `mode`. */
  constructor(
    req: VfioDmaMapRequest,
    prot: number,
    mode: VfioDmaMode,
  ) {
    this.iova = req.iova;
    this.size = req.size;
    this.vaddr = req.vaddr;
    this.prot = prot;
    this.npages = req.size / PAGE_SIZE;
    this.mode = mode;
    this.pfnmap = req.pfnmap ?? -1;
    this.bitmap = mode === "iopf" ? newBitmap(this.npages) : null;
  }

  /** One past the last IOVA. */
  get end(): number {
    return this.iova + this.size;
  }

  /** The range as {@linkcode VfioContainer.dmas} reports it. */
  info(): VfioDmaInfo {
    return {
      iova: this.iova,
      size: this.size,
      vaddr: this.vaddr,
      prot: this.prot,
      mode: this.mode,
      mappedPages: this.mappedPages,
      pinnedPages: this.pinnedPages,
      lockedPages: this.lockedPages,
    };
  }
}

/** Index of the first dma of `dmas` (sorted by IOVA) with iova >= `iova`. */
export function lowerBound(dmas: readonly VfioDma[], iova: number): number {
  let lo = 0, hi = dmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (dmas[mid]!.iova < iova) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The dma of `dmas` covering `iova`, if any (vfio_find_dma). */
export function findDma(
  dmas: readonly VfioDma[],
  iova: number,
): VfioDma | undefined {
  let lo = 0, hi = dmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const d = dmas[mid]!;
    if (iova < d.iova) hi = mid;
    else if (iova >= d.end) lo = mid + 1;
    else return d;
  }
  return undefined;
}

/**
 * The checks of VFIO_IOMMU_MAP_DMA on `req` (flags, with `prot` the
 * permissions they ask for; alignment, overflow, PFNMAP address) and on
 * `dmas` (no overlap): returns the index at which the new dma goes into
 * `dmas`. `what` starts the error messages.
 *
 * @throws {IopfLabError} EINVAL (bad flags, misaligned, zero size,
 *   overflow); EEXIST (overlaps a vfio_dma)
 */
export function checkMapRange(
  dmas: readonly VfioDma[],
  req: VfioDmaMapRequest,
  prot: number,
  what: string,
): number {
  const { vaddr, iova, size, flags } = req;
  if (!Number.isInteger(flags) || prot === 0 || (flags & ~3) !== 0) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: flags ${flags} must be READ and/or WRITE`,
    );
  }
  for (
    const [name, v] of [["vaddr", vaddr], ["iova", iova], [
      "size",
      size,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 0 || v % PAGE_SIZE !== 0) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: ${name} ${v} is not a 4 KiB aligned address`,
      );
    }
  }
  if (size === 0) throw new IopfLabError("EINVAL", `${what}: size is 0`);
  if (iova + size > MAX_ADDRESS || vaddr + size > MAX_ADDRESS) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: the range overflows the 2^52 address space`,
    );
  }
  if (req.pfnmap !== undefined) {
    const p = req.pfnmap;
    if (
      !Number.isInteger(p) || p < 0 || p % PAGE_SIZE !== 0 ||
      p + size > MAX_ADDRESS
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: PFNMAP address ${p} is not 4 KiB aligned`,
      );
    }
  }
  const i = lowerBound(dmas, iova);
  const next = dmas[i];
  const prev = dmas[i - 1];
  const hit = next && next.iova < iova + size
    ? next
    : prev && prev.end > iova
    ? prev
    : undefined;
  if (hit) {
    throw new IopfLabError(
      "EEXIST",
      `${what}: overlaps the vfio_dma at ${hex(hit.iova)}`,
    );
  }
  return i;
}

/**
 * The checks of VFIO_IOMMU_UNMAP_DMA on `req` (alignment, overflow, no
 * split of a vfio_dma): removes the dmas inside the range from `dmas` and
 * returns them, by IOVA. `what` starts the error messages.
 *
 * @throws {IopfLabError} EINVAL (misaligned, not positive, overflow, or the
 *   range would split a vfio_dma)
 */
export function takeUnmapRange(
  dmas: VfioDma[],
  req: VfioDmaUnmapRequest,
  what: string,
): VfioDma[] {
  const { iova, size } = req;
  if (
    !Number.isInteger(iova) || !Number.isInteger(size) || iova < 0 ||
    size <= 0 ||
    iova % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 ||
    iova + size > MAX_ADDRESS
  ) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: IOVA and size must be 4 KiB aligned, size positive, no overflow`,
    );
  }
  const end = iova + size;
  const i = lowerBound(dmas, iova);
  const prev = dmas[i - 1];
  if (prev && prev.end > iova) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: it would split the vfio_dma at ${hex(prev.iova)}-${
        hex(prev.end)
      }`,
    );
  }
  let j = i;
  while (j < dmas.length && dmas[j]!.iova < end) j++;
  const last = dmas[j - 1];
  if (j > i && last && last.end > end) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: it would split the vfio_dma at ${hex(last.iova)}-${
        hex(last.end)
      }`,
    );
  }
  return dmas.splice(i, j - i);
}
