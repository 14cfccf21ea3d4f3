/**
 * The guest's memory layout every design shares: where guest RAM starts in
 * the guest-physical space, where a guest's own IOMMU hands out IOVAs, and
 * the RAM a nested guest keeps for its stage-1 tables.
 *
 * @module
 */
import { SZ_2M } from "../sim/units.ts";

/** Guest RAM starts at this guest-physical address (the Arm `virt` machine's layout). */
export const GUEST_RAM_BASE = 0x4000_0000;
/** First IOVA a nested guest's DMA API hands out. */
export const GUEST_IOVA_BASE = 0x1000_0000;

/** Bytes at the top of guest RAM kept for a nested guest's stage-1 tables. */
export function tablePoolSize(ram: number): number {
  return Math.max(SZ_2M, Math.ceil(ram / 512 / SZ_2M) * SZ_2M);
}
