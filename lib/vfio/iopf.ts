/**
 * The 2021 RFC's IOPF path of type1: enabling recoverable faults for the
 * container's devices, the fault handler (vfio_iommu_type1_dma_map_iopf:
 * each fault group is handled under the container lock, its faults pinned
 * and mapped with pre-map, then answered with one page response) and the
 * MMU notifier's invalidation that unmaps IOPF pages again. Private to
 * lib/vfio; every function takes the container's {@linkcode VfioState}
 * first.
 *
 * @module
 */
import type { IopfGroup } from "../iommu/io_pgfault.ts";
import {
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L2,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuFault,
  type PageResponseCode,
} from "../iommu/types.ts";
import { IopfLabError } from "../sim/errors.ts";
import { alignDown, PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { countBits, fillBits, nextClear, nextSet, testBit } from "./_bitmap.ts";
import type { DeviceState, VfioState } from "./_state.ts";
import { findDma, type VfioDma } from "./dma.ts";
import { addPinned, limitPages, mapPages4k, mapPinned, pfnBuf } from "./pin.ts";

/**
 * One fault group in the type1 IOPF handler, from the handler call to its
 * page response (pooled in {@linkcode VfioState.freeWork}; the callbacks
 * are bound once per record).
 */
export interface FaultWork {
  /** The group being handled (undefined while the record is free). */
  group: IopfGroup | undefined;
  /** The core's completion callback of the group. */
  done: () => void;
  /** When the handler was called (ns). */
  t0: number;
  /** The response decided under the lock. */
  code: PageResponseCode;
  /** Resource callback: the container lock is taken. */
  locked: () => void;
  /** Event: the faults' work is done; the lock is dropped. */
  unlock: () => void;
  /** Event: the response goes out. */
  respond: () => void;
  /** Event (MMU notifier): the pinned runs are checked and mapped. */
  commit: () => void;
  /** Runs pinned and waiting for {@linkcode commitRuns} (MMU notifier). */
  pending: PendingRun[];
}

/**
 * A run a fault pinned under the MMU notifier, waiting to be mapped: the
 * interval-notifier protocol (mm/mmu_notifier.c, as hmm and the GPU
 * drivers use it) takes the interval's sequence count before GUP
 * (mmu_interval_read_begin) and checks it under the driver's lock before
 * mapping (mmu_interval_read_retry).
 */
export interface PendingRun {
  /** The vfio_dma. */
  dma: VfioDma;
  /** First page of the run in the dma. */
  a: number;
  /** Pages. */
  n: number;
  /** Their PFNs, as the pin returned them. */
  pfns: Float64Array;
  /** The sequence count read before the pin. */
  seq: number;
}

/** What {@linkcode handleFault} came to (a reused scratch record). */
export interface FaultOutcome {
  /** Whether the fault was resolved (else the group is answered INVALID). */
  ok: boolean;
}

function noop(): void {}

/** ENODEV unless every attached device can stall or use PRI. */
export function checkIopfCapable(s: VfioState, what: string): void {
  for (const dev of s.devices.keys()) {
    if (!dev.stall && !dev.pri) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot ${what}: ${dev.name} can neither stall nor use PRI`,
      );
    }
  }
}

/**
 * Enables the recoverable faults of `dev` (once) and registers the type1
 * handler: FAULT_REPORT_FLAT, or NESTED_L2 (its stage-2 faults) for a
 * device already bound to a guest stage 1. Never both in one registration:
 * RFC v3 1/8 refuses FLAT with NESTED_* (EINVAL); binding switches the
 * flags ({@linkcode switchToNestedL2}).
 */
export function enableDeviceIopf(
  s: VfioState,
  dev: IommuDevice,
  ds: DeviceState,
): void {
  if (!ds.iopfEnabled) {
    s.core.devEnableIopf(dev);
    ds.iopfEnabled = true;
  }
  const flags = ds.nested ? FAULT_REPORT_NESTED_L2 : FAULT_REPORT_FLAT;
  s.core.registerDeviceFaultHandler(dev, s.iopfHandler, flags);
}

/**
 * When `dev` is bound to a guest stage 1 for the first time: the type1
 * handler's registration moves from FLAT to NESTED_L2
 * (iommu_update_device_fault_handler, RFC v3 1/8), so it keeps handling the
 * device's stage-2 faults.
 */
export function switchToNestedL2(s: VfioState, dev: IommuDevice): void {
  if (!s.iopf) return;
  s.core.updateDeviceFaultHandler(
    dev,
    s.iopfHandler,
    ~FAULT_REPORT_FLAT,
    FAULT_REPORT_NESTED_L2,
  );
}

/**
 * The type1 IOPF handler (vfio_iommu_type1_dma_map_iopf, RFC v3): under
 * the container lock, each fault of the group is looked up, checked,
 * pinned and mapped (with pre-map); the group then gets one response.
 * {@linkcode VfioState.iopfHandler} is this function bound to its state.
 */
export function iopfHandler(
  s: VfioState,
  group: IopfGroup,
  done: () => void,
): void {
  const w = s.freeWork.pop() ?? newWork(s);
  w.group = group;
  w.done = done;
  w.t0 = s.sim.now;
  (s.cGroups ??= s.counters.cell("vfio.faultGroups")).v++;
  s.lock.acquireSlot(w.locked);
}

function newWork(s: VfioState): FaultWork {
  const w: FaultWork = {
    group: undefined,
    done: noop,
    t0: 0,
    code: IOMMU_PAGE_RESP_SUCCESS,
    locked: noop,
    unlock: noop,
    respond: noop,
    commit: noop,
    pending: [],
  };
  w.locked = () => faultGroupLocked(s, w);
  w.commit = () => commitRuns(s, w);
  w.unlock = () => {
    s.lock.releaseSlot();
    s.sim.after(s.costs["vfio.faultRespond"], w.respond);
  };
  w.respond = () => {
    s.handlerNs.record(s.sim.now - w.t0);
    const { group, done, code } = w;
    w.group = undefined;
    w.done = noop;
    s.freeWork.push(w);
    s.core.pageResponse(group!.dev, group!, code);
    done();
  };
  return w;
}

/**
 * The container lock (iommu->lock) for a synchronous caller that holds it
 * for `workNs`: VFIO_IOMMU_MAP_DMA, UNMAP_DMA and the MMU notifier's
 * invalidation take the same mutex as the RFC's fault handler
 * (vfio_iommu_type1_dma_map_iopf, RFC v3 2/8; the notifier, RFC v3 3/8).
 * Returns the ns it waits for a fault group holding the lock; fault groups
 * that take the lock while it is held wait in turn ({@linkcode
 * faultGroupLocked}). Approximation, as the blocking invalidation twin: the
 * caller's state changes at the call and it goes ahead of fault groups
 * already queued; synchronous callers do not wait for each other (one VMM
 * thread), nor for the fault group whose work called them (reclaim from the
 * handler's own pin).
 */
export function lockForSyncCaller(s: VfioState, workNs: number): number {
  const now = s.sim.now;
  let start = now;
  if (!s.inFault && s.lock.busy > 0 && s.lockFreeAt > now) {
    start = s.lockFreeAt;
    s.syncLockWaits++;
    s.syncLockWaitNs += start - now;
  }
  const until = start + workNs;
  if (until > s.syncHeldUntil) s.syncHeldUntil = until;
  return start - now;
}

/** Under the container lock: handles each fault of the group, then unlocks after their time. */
function faultGroupLocked(s: VfioState, w: FaultWork): void {
  const now = s.sim.now;
  if (s.syncHeldUntil > now) {
    // An ioctl or a notifier invalidation holds the lock: wait for it.
    s.faultWaitsBehindSync++;
    s.faultWaitBehindSyncNs += s.syncHeldUntil - now;
    s.sim.at(s.syncHeldUntil, w.locked);
    return;
  }
  const group = w.group!;
  let ns = 0;
  let code: PageResponseCode = IOMMU_PAGE_RESP_SUCCESS;
  if (s.released) {
    code = IOMMU_PAGE_RESP_INVALID;
  } else {
    const out = s.outcome;
    const faults = group.faults;
    s.inFault = true;
    try {
      for (let i = 0; i < faults.length; i++) {
        ns += handleFault(s, faults[i]!, out);
        if (!out.ok) {
          code = IOMMU_PAGE_RESP_INVALID;
          break;
        }
      }
    } finally {
      s.inFault = false;
    }
  }
  w.code = code;
  s.lockFreeAt = now + ns;
  if (s.pendingRuns.length > 0) {
    // The pins take `ns`; the runs are mapped after them, if no
    // invalidation came in between.
    w.pending = s.pendingRuns.splice(0);
    s.sim.after(ns, w.commit);
    return;
  }
  s.sim.after(ns, w.unlock);
}

/**
 * Counts `n` pages pinned (negative: unpinned) between a fault's pin and
 * its map under the MMU notifier: in the container's pinned pages (and
 * peak), not in a vfio_dma's, since nothing is charged or kept.
 */
function transientPins(s: VfioState, n: number): void {
  s.pinned += n;
  if (s.pinned > s.pinnedPeak) s.pinnedPeak = s.pinned;
}

/**
 * After the pins of a fault group under the MMU notifier (still under the
 * container lock): each run whose interval saw an invalidation since its
 * pin (mmu_interval_read_retry) is unpinned and pinned again, and checked
 * again after that pin's time; the others are mapped 4 KiB page by page and
 * unpinned. Then the lock is dropped.
 */
function commitRuns(s: VfioState, w: FaultWork): void {
  const now = s.sim.now;
  const mm = s.mm;
  let ns = 0;
  const again: PendingRun[] = [];
  for (const p of w.pending) {
    const hva = p.dma.vaddr + p.a * PAGE_SIZE;
    if (p.dma.removed || s.released || !p.dma.notifier) {
      ns += mm.unpinUserPages(hva, p.n);
      transientPins(s, -p.n);
      continue;
    }
    if (p.dma.notifier.readRetry(p.seq)) {
      // An invalidation overlapped the interval since the pin: the pages may
      // be stale. Drop them and look them up again.
      s.counters.add("vfio.faults.retries");
      const ns0 = ns;
      ns += mm.unpinUserPages(hva, p.n);
      transientPins(s, -p.n);
      const seq = p.dma.notifier.readBegin();
      const out = pfnBuf(s, p.n);
      const opts = s.faultPinOpts;
      opts.longterm = false;
      opts.out = out;
      try {
        ns += mm.pinUserPages(hva, p.n, opts).ns;
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        fillBits(p.dma.bitmap!, p.a, p.a + p.n, false);
        w.code = IOMMU_PAGE_RESP_INVALID;
        continue;
      } finally {
        s.counters.add("vfio.faults.retryNs", ns - ns0);
      }
      fillBits(p.dma.bitmap!, p.a, p.a + p.n, true);
      transientPins(s, p.n);
      again.push({ dma: p.dma, a: p.a, n: p.n, pfns: out.slice(0, p.n), seq });
      continue;
    }
    try {
      ns += mapPages4k(s, p.dma, s.domain!, p.a, p.n, p.pfns);
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      fillBits(p.dma.bitmap!, p.a, p.a + p.n, false);
      w.code = IOMMU_PAGE_RESP_INVALID;
    }
    ns += mm.unpinUserPages(hva, p.n);
    transientPins(s, -p.n);
  }
  w.pending = again;
  s.lockFreeAt = now + ns;
  s.sim.after(ns, again.length > 0 ? w.commit : w.unlock);
}

/** Counts an invalid fault (`why`), marks `out` unresolved and returns `ns`. */
function invalid(
  s: VfioState,
  out: FaultOutcome,
  why: string,
  ns: number,
): number {
  s.counters.add("vfio.faults.invalid");
  s.counters.add(`vfio.faults.invalid.${why}`);
  out.ok = false;
  return ns;
}

/**
 * One fault of a group: looks up its vfio_dma, checks the permission, pins
 * and maps the faulting page and up to `premapPages - 1` following ones,
 * stopping at the first page already mapped (RFC v3 4/8) or, with
 * `premapSkipMapped`, skipping over mapped pages (a what-if). Returns the
 * ns it took and leaves in `out.ok` whether it was resolved.
 */
export function handleFault(
  s: VfioState,
  f: IommuFault,
  out: FaultOutcome,
): number {
  const k = s.costs;
  (s.cFaults ??= s.counters.cell("vfio.faults")).v++;
  out.ok = true;
  let ns = k["vfio.faultLookup"];
  if (f.type !== "page-req") return invalid(s, out, "notPageRequest", ns);
  const addr = f.stage === 2 && f.ipa >= 0 ? f.ipa : f.addr;
  const iova = alignDown(addr, PAGE_SIZE);
  const dma = findDma(s.dmas, iova);
  if (!dma) return invalid(s, out, "noDma", ns);
  if (
    ((f.perm & IOMMU_FAULT_PERM_WRITE) !== 0 &&
      (dma.prot & PROT_WRITE) === 0) ||
    ((f.perm & IOMMU_FAULT_PERM_READ) !== 0 && (dma.prot & PROT_READ) === 0)
  ) {
    return invalid(s, out, "perm", ns);
  }
  if (!dma.bitmap) {
    // A pinned or PFNMAP range is mapped whole: nothing to fault in.
    if (s.core.iovaToPhys(s.domain!, iova) >= 0) {
      s.counters.add("vfio.faults.raced");
      return ns;
    }
    return invalid(s, out, "notIopf", ns);
  }
  const bits = dma.bitmap;
  const p = Math.floor((iova - dma.iova) / PAGE_SIZE);
  ns += k["vfio.bitmapCheck"];
  if (testBit(bits, p)) {
    s.counters.add("vfio.faults.raced");
    return ns;
  }
  let end = Math.min(dma.npages, p + s.premapPages);
  if (s.premapSkipMapped) {
    ns += k["vfio.bitmapCheck"] * (end - p - 1);
  } else {
    // RFC v3 4/8: "for (i = bit_offset + 1; i < npages; i++) { if (map_len
    // >= premap_len || IOPF_MAPPED_BITMAP_GET(dma, i)) break; ...}": the
    // window ends at the first page already mapped (its bit tested too).
    const m = nextSet(bits, p + 1, end);
    ns += k["vfio.bitmapCheck"] * (Math.min(m + 1, end) - p - 1);
    end = m;
  }
  let budget = end - p;
  if (!s.mmuNotifier) {
    budget = Math.min(budget, limitPages(s) - s.mm.lockedVm);
    if (budget <= 0) return invalid(s, out, "memlock", ns);
  }
  let q = p;
  let mapped = 0;
  while (q < end && budget > 0) {
    const a = nextClear(bits, q, end);
    if (a >= end) break;
    const b = Math.min(nextSet(bits, a, end), a + budget);
    try {
      ns += faultInRun(s, dma, a, b - a);
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      if (a !== p) break; // the faulting page is mapped; stop pre-mapping
      if (b - a === 1) return invalid(s, out, e.code, ns);
      // Part of the pre-map window failed (say, beyond the VMA): the
      // faulting page alone, as the kernel pins what it can.
      try {
        ns += faultInRun(s, dma, p, 1);
      } catch (e1) {
        if (!(e1 instanceof IopfLabError)) throw e1;
        return invalid(s, out, e1.code, ns);
      }
      mapped = 1;
      break;
    }
    mapped += b - a;
    if (!s.mmuNotifier) budget -= b - a;
    q = b;
  }
  (s.cMapped ??= s.counters.cell("vfio.faults.mappedPages")).v += mapped;
  (s.cPremapped ??= s.counters.cell("vfio.faults.premappedPages")).v += mapped -
    1;
  return ns;
}

/**
 * Pins pages [a, a + n) of an IOPF dma, maps them, sets their bits. With
 * the MMU notifier the pinned run is queued for {@linkcode commitRuns}
 * instead, which maps it one 4 KiB page per call (the IOMMU API does not
 * promise that part of a larger mapping can be unmapped: Alex Williamson
 * on RFC v3 4/8; Arm io-pgtable refuses it since v6.13). Returns ns.
 */
function faultInRun(s: VfioState, dma: VfioDma, a: number, n: number): number {
  const k = s.costs;
  const mm = s.mm;
  const domain = s.domain!;
  const hva = dma.vaddr + a * PAGE_SIZE;
  const out = pfnBuf(s, n);
  const opts = s.faultPinOpts;
  opts.longterm = !s.mmuNotifier;
  opts.out = out;
  // mmu_interval_read_begin() before the pin (MMU notifier only).
  const seq = s.mmuNotifier ? dma.notifier!.readBegin() : 0;
  const r = mm.pinUserPages(hva, n, opts);
  let ns = r.ns;
  if (s.mmuNotifier) {
    // The bits are taken now (a second fault on these pages is a race);
    // the map waits for the pin's time and the retry check (commitRuns).
    const bits = dma.bitmap!;
    fillBits(bits, a, a + n, true);
    s.pendingRuns.push({ dma, a, n, pfns: out.slice(0, n), seq });
    transientPins(s, n);
    return ns + k["vfio.bitmapCheck"];
  }
  try {
    mm.accountLockedVm(n, true);
  } catch (e) {
    mm.unpinUserPages(hva, n);
    throw e;
  }
  try {
    ns += mapPinned(s, dma, domain, a, n, out, null);
  } catch (e) {
    mm.unpinUserPages(hva, n);
    mm.accountLockedVm(n, false);
    throw e;
  }
  fillBits(dma.bitmap!, a, a + n, true);
  ns += k["vfio.bitmapCheck"];
  addPinned(s, dma, n, n);
  return ns;
}

/**
 * Registers the MMU notifier of an IOPF range over its HVAs (RFC v2+): the
 * host mm's invalidations of the range reach {@linkcode invalidate}.
 */
export function registerNotifier(s: VfioState, dma: VfioDma): void {
  dma.notifier = s.mm.registerMmuNotifier(dma.vaddr, dma.size, {
    invalidateRangeStart: (start, end) => invalidate(s, dma, start, end),
    invalidateRangeEnd: () => 0,
  });
}

/**
 * The MMU notifier's invalidate_range_start: unmaps the IOPF-mapped pages
 * of `dma` inside [start, end) (HVAs), clears their bits and syncs the
 * IOTLB and the ATS devices' ATCs before returning
 * ({@linkcode IommuCore.unmapBlocking}: the CPU spins on CMD_SYNC, as the
 * kernel does), so no cached translation reaches the pages the mm frees
 * next. Strict in every invalidation mode (the core's lazy mode is for
 * DMA-API style unmaps only). Returns the ns spent, the wait for CMD_SYNC
 * included; the mm adds it to the cost of the reclaim, munmap or madvise.
 */
export function invalidate(
  s: VfioState,
  dma: VfioDma,
  start: number,
  end: number,
): number {
  if (dma.removed || !dma.bitmap) return 0;
  const lo = Math.max(start, dma.vaddr);
  const hi = Math.min(end, dma.vaddr + dma.size);
  if (lo >= hi) return 0;
  const p0 = Math.floor((lo - dma.vaddr) / PAGE_SIZE);
  const p1 = Math.ceil((hi - dma.vaddr) / PAGE_SIZE);
  const bits = dma.bitmap;
  let ns = s.costs["vfio.bitmapCheck"];
  const n = countBits(bits, p0, p1);
  if (n === 0) return ns;
  // Unmap from the first to the last mapped page in one call (holes cost nothing).
  const a = nextSet(bits, p0, p1);
  let b = a;
  for (let i = a; i < p1;) {
    b = nextClear(bits, i, p1);
    i = nextSet(bits, b, p1);
  }
  const r = s.core.unmapBlocking(
    s.domain!,
    dma.iova + a * PAGE_SIZE,
    (b - a) * PAGE_SIZE,
  );
  ns += r.ns;
  fillBits(bits, a, b, false);
  // Pages pinned by a fault and not mapped yet have their bit but no
  // mapping: the fault's read_retry sees this invalidation and redoes them.
  const unmapped = r.bytes / PAGE_SIZE;
  dma.mappedPages -= unmapped;
  s.counters.add("vfio.notifier.invalidations");
  s.counters.add("vfio.notifier.unmappedPages", unmapped);
  return ns + lockForSyncCaller(s, ns);
}
