/**
 * The host memory manager: physical frames of the host
 * ({@linkcode HostMemory}), the VMM's address space ({@linkcode MmStruct}:
 * lazily populated guest RAM on 4 KiB, THP or hugetlb pages,
 * pin_user_pages, locked_vm accounting against RLIMIT_MEMLOCK, reclaim to
 * swap, MADV_DONTNEED, munmap, MMU notifiers) and KVM-style
 * {@linkcode Memslots} mapping guest-physical to host-virtual addresses.
 *
 * State changes synchronously; operations return the simulated time they
 * cost in ns, from the `mm.*` parameters of the cost profile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostMemory, Memslots, MmStruct } from "./mod.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 *
 * const host = new HostMemory({ size: 8 * 2 ** 30, costs: loadCostProfile() });
 * const qemu = new MmStruct(host, { memlockLimit: Infinity });
 * const ram = qemu.mmap({ size: 2 ** 30, backing: "thp" });
 * const slots = new Memslots();
 * slots.add({ gpa: 0x4000_0000, size: ram.size, hva: ram.start });
 *
 * // The guest touches its first 4 KiB: a whole 2 MiB THP is faulted in.
 * const ns = qemu.touch(slots.gpaToHva(0x4000_0000), 4096);
 * assert(ns > 0 && qemu.populatedBytes === 2 ** 21);
 *
 * // VFIO pins and charges a page for DMA, then releases it.
 * qemu.pinUserPages(ram.start, 1, { longterm: true });
 * qemu.accountLockedVm(1, true);
 * qemu.unpinUserPages(ram.start, 1);
 * qemu.accountLockedVm(1, false);
 *
 * // Memory pressure: the unpinned THP goes to swap.
 * const { reclaimed } = qemu.reclaim(512);
 * assert(reclaimed === 512 && host.usedBytes === 0);
 * ```
 *
 * @module
 */
export * from "./host_memory.ts";
export * from "./mm_struct.ts";
export * from "./memslots.ts";
export * from "./types.ts";
