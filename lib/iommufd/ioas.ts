/**
 * An IOAS (struct iommufd_ioas over struct io_pagetable,
 * drivers/iommu/iommufd/io_pagetable.c and pages.c, Linux 6.11): the IOVA
 * areas user space maps with IOMMU_IOAS_MAP, and the paging domains (HWPTs)
 * that translate them. Mainline pins every page of an area when it is
 * mapped (iopt_map_user_pages -> iopt_fill_domains_pages -> pfn_reader:
 * pin_user_pages in batches of one page of page pointers), charges it
 * (iopt_pages_update_pinned, to the user or the mm as the file's account
 * mode says: account.ts) and maps it into every
 * attached domain; a domain added later is filled from the pinned pages
 * (iopt_table_add_domain -> iopt_fill_domain).
 *
 * The what-if (`iopf: true`): an IOAS whose areas are recorded only and
 * pinned and mapped when the device faults (the 2021 RFC's idea carried to
 * iommufd; not in any kernel: "user space page fault on a paging hwpt is
 * not supported yet", and no in-kernel handler exists). Its handler is in
 * iopf.ts.
 *
 * @module
 */
import type { IommuCore, IommuDomain } from "../iommu/core.ts";
import type { MapPagesResult } from "../iommu/types.ts";
import type { MmStruct } from "../mm/mm_struct.ts";
import { IommufdAccount, IommufdUser } from "./account.ts";
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { runSteps, stepBytes } from "../sim/steps.ts";
import { Counters, Histogram } from "../sim/stats.ts";
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";

/** IOMMU_IOAS_MAP_FIXED_IOVA: map at the given IOVA. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** IOMMU_IOAS_MAP_WRITEABLE: the device may write. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** IOMMU_IOAS_MAP_READABLE: the device may read. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/**
 * Pages per pin_user_pages call of the pfn_reader (one page of struct page
 * pointers, as pfn_reader_user_pin allocates): `mm.pinCall` is charged per
 * batch although the model pins larger ranges per call.
 */
export const IOPT_PIN_BATCH_PAGES = 512;

/** Pages per MmStruct.pinUserPages call of IOMMU_IOAS_MAP (1 GiB). */
const MM_CALL_PAGES = 1 << 18;

/** IOMMU_IOAS_MAP (struct iommu_ioas_map) with a fixed IOVA. */
export interface IoasMapRequest {
  /** The VMM's virtual address of the range (user_va). */
  readonly userVa: number;
  /** IOVA (with IOMMU_IOAS_MAP_FIXED_IOVA). */
  readonly iova: number;
  /** Bytes, a positive multiple of 4 KiB. */
  readonly length: number;
  /** IOMMU_IOAS_MAP_FIXED_IOVA | READABLE | WRITEABLE. */
  readonly flags: number;
}

/** One area (struct iopt_area with its struct iopt_pages). */
export class IoptArea {
  /** First IOVA. */
  readonly iova: number;
  /** Bytes. */
  readonly length: number;
  /** First user VA. */
  readonly userVa: number;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** 4 KiB pages. */
  readonly npages: number;
  /** Pages pinned now (npinned). */
  pinnedPages = 0;
  /** What-if only: 1 for each page pinned and mapped on fault. */
  readonly faulted: Uint8Array | undefined;
  /** Pages [0, mappedPages) are mapped in every domain (a timed map's progress; all once complete). */
  mappedPages = 0;
  /** Unmapped or released (a timed map still pinning it stops). */
  removed = false;

  /** An area of `req`; `iopf` records it for fault-time pinning. */
  constructor(req: IoasMapRequest, prot: number, iopf: boolean) {
    this.iova = req.iova;
    this.length = req.length;
    this.userVa = req.userVa;
    this.prot = prot;
    this.npages = req.length / PAGE_SIZE;
    this.faulted = iopf ? new Uint8Array(this.npages) : undefined;
  }
}

/** Options of {@linkcode IommufdIoas}. */
export interface IommufdIoasOptions {
  /** The cost profile (iommufd.ioasMapCall, iommufd.ioasUnmapCall, mm.*). */
  costs: Costs;
  /** The IOMMU core (map, unmap, sync). */
  core: IommuCore;
  /** The VMM's address space (pin_user_pages, locked_vm). */
  mm: MmStruct;
  /** The object id. */
  id: number;
  /** Where pinned pages are charged (the file's account). Default: `"mm"` mode over `mm`. */
  account?: IommufdAccount;
  /** What-if: pin and map on fault instead of at IOMMU_IOAS_MAP. Default false (mainline). */
  iopf?: boolean;
  /** What-if only: pages pinned and mapped per fault, from the faulting one. Default 1. */
  premapPages?: number;
}

/**
 * One IOAS: its areas by IOVA, its domains, its pins. Operations change
 * state synchronously and return their CPU cost in ns.
 */
export class IommufdIoas {
  /** The object id. */
  readonly id: number;
  /** Whether areas are pinned on fault (the what-if). */
  readonly iopf: boolean;
  /** Pages pinned per fault (what-if). */
  readonly premapPages: number;
  /** Counters (`iommufd.ioas.*`, `iommufd.iopf.*`). */
  readonly counters: Counters = new Counters();
  /** What-if: time from a group reaching the in-kernel handler to its response (ns). */
  readonly handlerNs: Histogram = new Histogram();
  /** The IOVA lock (iopt->iova_rwsem taken for writing) the what-if handler holds per group. */
  readonly lock: Resource;
  /** @internal The areas, sorted by IOVA (for iopf.ts). */
  readonly _areas: IoptArea[] = [];
  /** @internal The paging domains attached (for iopf.ts). */
  readonly _domains: IommuDomain[] = [];
  /** @internal */
  readonly _sim: Simulator;
  /** @internal */
  readonly _costs: Costs;
  /** @internal */
  readonly _core: IommuCore;
  /** @internal */
  readonly _mm: MmStruct;
  /** @internal Where pins are charged (for iopf.ts). */
  readonly _account: IommufdAccount;
  /** @internal Pages pinned now. */
  _pinned = 0;
  /** @internal Pages charged now. */
  _locked = 0;
  #pfns = new Float64Array(0);
  /** The reused result of {@linkcode #mapRuns}. */
  readonly #runs: MapPagesResult = { ns: 0, pages: 0 };

  /** An empty IOAS (IOMMU_IOAS_ALLOC). */
  constructor(sim: Simulator, options: IommufdIoasOptions) {
    const premap = options.premapPages ?? 1;
    if (!Number.isInteger(premap) || premap < 1 || premap > 1 << 18) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate an IOAS: premapPages must be a whole number in [1, 2^18], got ${premap}`,
      );
    }
    this._sim = sim;
    this._costs = options.costs;
    this._core = options.core;
    this._mm = options.mm;
    this._account = options.account ??
      new IommufdAccount(options.mm, "mm", new IommufdUser());
    this.id = options.id;
    this.iopf = options.iopf ?? false;
    this.premapPages = premap;
    this.lock = new Resource(sim, { name: "iommufd iova lock", servers: 1 });
  }

  /** 4 KiB pages the IOAS holds pinned. */
  get pinnedPages(): number {
    return this._pinned;
  }

  /** 4 KiB pages the IOAS charged to locked_vm. */
  get lockedPages(): number {
    return this._locked;
  }

  /** The areas (first IOVA, bytes, pages pinned). */
  areas(): { iova: number; length: number; pinnedPages: number }[] {
    return this._areas.map((a) => ({
      iova: a.iova,
      length: a.length,
      pinnedPages: a.pinnedPages,
    }));
  }

  /** @internal The area holding `iova`, if any. */
  _findArea(iova: number): IoptArea | undefined {
    const a = this._areas;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]!.iova + a[mid]!.length <= iova) lo = mid + 1;
      else hi = mid;
    }
    const x = a[lo];
    return x && x.iova <= iova ? x : undefined;
  }

  /**
   * iopt_table_add_domain(): `domain` translates this IOAS from now on;
   * the pinned areas are mapped into it (iopt_fill_domain). Returns ns.
   */
  addDomain(domain: IommuDomain): number {
    if (this._domains.includes(domain)) return 0;
    if (this.iopf && this._domains.length > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot add domain ${domain.id} to IOAS ${this.id}: the fault-mapped what-if models one domain per IOAS`,
      );
    }
    let ns = 0;
    for (const a of this._areas) {
      if (!a.faulted && a.mappedPages > 0) {
        ns += this.#mapPinnedArea(a, domain, 0, a.mappedPages);
      }
    }
    this._domains.push(domain);
    return ns;
  }

  /** iopt_table_remove_domain(): unmaps every area from `domain`; `done` after the sync. */
  removeDomain(domain: IommuDomain, done?: () => void): void {
    const i = this._domains.indexOf(domain);
    if (i < 0) {
      if (done) this._sim.after(0, done);
      return;
    }
    this._domains.splice(i, 1);
    let left = 1;
    const one = () => {
      if (--left === 0) done?.();
    };
    for (const a of this._areas) {
      left++;
      this._core.unmap(domain, a.iova, a.length, () => {
        // Fault-time pins belong to this one domain: released after its sync.
        if (a.faulted) this.#releaseFaulted(a);
        one();
      });
    }
    this._sim.after(0, one);
  }

  /**
   * IOMMU_IOAS_MAP with IOMMU_IOAS_MAP_FIXED_IOVA. Mainline pins every page
   * (faulting in and zeroing what is not populated), charges locked_vm and
   * maps the range into every attached domain in physically contiguous
   * runs; the what-if records the area only. Returns the ioctl's CPU ns.
   *
   * @throws {IopfLabError} EINVAL (no READABLE/WRITEABLE, no FIXED_IOVA,
   *   zero or misaligned length); EEXIST (overlaps an area); ENOMEM (over
   *   RLIMIT_MEMLOCK or out of memory: nothing stays pinned, charged or
   *   mapped); EFAULT (user_va not mapped)
   */
  map(req: IoasMapRequest): number {
    const { prot, index } = this.#checkMap(req);
    const area = new IoptArea(req, prot, this.iopf);
    let ns = this._costs["iommufd.ioasMapCall"];
    if (this.iopf) {
      ns += this._costs["iommufd.iopfTrackPer4kPages"] * area.npages;
    } else ns += this.#pinAndMapArea(area);
    area.mappedPages = area.npages;
    this._areas.splice(index, 0, area);
    this.counters.add("iommufd.ioas.maps");
    return ns;
  }

  /**
   * IOMMU_IOAS_MAP as it runs on the machine: the same ioctl as
   * {@linkcode map}, but the pin advances the simulated clock as it goes
   * (iopt_fill_domains_pages: the pfn_reader pins a batch, charges it and
   * maps it into every domain, then the next), in steps of whole 2 MiB
   * blocks (1 GiB blocks for 1 GiB pages; lib/sim/steps.ts), so pinned and
   * locked pages grow over the ioctl's duration. The area is linked first
   * (iopt_alloc_area_pages inserts it before the pin), so an overlapping
   * map meanwhile is EEXIST. Each step checks its pages against
   * RLIMIT_MEMLOCK as it charges them (incr_user_locked_vm per batch); an
   * error unmaps and releases everything the ioctl pinned and unlinks the
   * area. `done(error, ns)` runs when the ioctl returns. The what-if's
   * fault-mapped IOAS pins nothing: `done` after the {@linkcode map} cost.
   * Checks of the request throw at once, as {@linkcode map}'s do.
   */
  mapTimed(
    req: IoasMapRequest,
    done: (error: IopfLabError | undefined, ns: number) => void,
  ): void {
    if (this.iopf) {
      const ns = this.map(req);
      this._sim.after(ns, () => done(undefined, ns));
      return;
    }
    const { prot, index } = this.#checkMap(req);
    const area = new IoptArea(req, prot, false);
    this._areas.splice(index, 0, area);
    const what = `Cannot map IOAS ${this.id} IOVA ${hex(req.iova)}+${
      hex(req.length)
    }`;
    const vma = this._mm.findVma(req.userVa);
    let first = true;
    runSteps(this._sim, {
      total: req.length,
      step: stepBytes(req.length, vma?.pageSize),
      run: (off, bytes) => {
        if (area.removed) {
          throw new IopfLabError(
            "ENOENT",
            `${what}: the area was unmapped during the pin`,
          );
        }
        let ns = first ? this._costs["iommufd.ioasMapCall"] : 0;
        first = false;
        ns += this.#pinAndMapPart(area, off / PAGE_SIZE, bytes / PAGE_SIZE);
        return ns;
      },
      done: (e, ns) => {
        if (e) {
          if (!area.removed) {
            this.#unwindArea(area);
            const at = this._areas.indexOf(area);
            if (at >= 0) this._areas.splice(at, 1);
          }
          done(e, ns);
          return;
        }
        this.counters.add("iommufd.ioas.maps");
        done(undefined, ns);
      },
    });
  }

  /** The checks of IOMMU_IOAS_MAP: the area's prot and where it goes in the sorted list. */
  #checkMap(req: IoasMapRequest): { prot: number; index: number } {
    const { iova, length, flags } = req;
    const what = `Cannot map IOAS ${this.id} IOVA ${hex(iova)}+${hex(length)}`;
    const prot = (flags & IOMMU_IOAS_MAP_READABLE ? PROT_READ : 0) |
      (flags & IOMMU_IOAS_MAP_WRITEABLE ? PROT_WRITE : 0);
    if (prot === 0) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: neither READABLE nor WRITEABLE`,
      );
    }
    if (!(flags & IOMMU_IOAS_MAP_FIXED_IOVA)) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: the model allocates no IOVA (use IOMMU_IOAS_MAP_FIXED_IOVA)`,
      );
    }
    if (
      !Number.isInteger(length) || length <= 0 || length % PAGE_SIZE !== 0 ||
      !Number.isInteger(iova) || iova % PAGE_SIZE !== 0 || iova < 0 ||
      req.userVa % PAGE_SIZE !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: IOVA, user_va and length must be 4 KiB aligned and the length positive`,
      );
    }
    const a = this._areas;
    let i = 0;
    while (i < a.length && a[i]!.iova < iova) i++;
    const prev = a[i - 1], next = a[i];
    if (
      (prev && prev.iova + prev.length > iova) ||
      (next && next.iova < iova + length)
    ) {
      throw new IopfLabError("EEXIST", `${what}: overlaps an area`);
    }
    return { prot, index: i };
  }

  /**
   * IOMMU_IOAS_UNMAP of [iova, iova + length): removes the areas inside,
   * unmaps them from every domain and releases their pins when the IOTLB
   * sync completes (`done` then). Returns the bytes removed and the CPU ns.
   *
   * @throws {IopfLabError} ENOENT when the range would split an area (as
   *   iopt_unmap_iova_range)
   */
  unmap(
    range: { iova: number; length: number },
    done?: () => void,
  ): { bytes: number; ns: number } {
    const end = range.iova + range.length;
    const a = this._areas;
    for (const x of a) {
      const inside = x.iova >= range.iova && x.iova + x.length <= end;
      const overlaps = x.iova < end && x.iova + x.length > range.iova;
      if (overlaps && !inside) {
        throw new IopfLabError(
          "ENOENT",
          `Cannot unmap IOAS ${this.id} IOVA ${hex(range.iova)}+${
            hex(range.length)
          }: it would split the area at ${hex(x.iova)}`,
        );
      }
    }
    const victims = a.filter((x) =>
      x.iova >= range.iova && x.iova + x.length <= end
    );
    for (const v of victims) {
      a.splice(a.indexOf(v), 1);
      v.removed = true;
    }
    let ns = this._costs["iommufd.ioasUnmapCall"];
    let bytes = 0;
    let left = 1;
    const one = () => {
      if (--left === 0) done?.();
    };
    for (const v of victims) {
      bytes += v.length;
      ns += this._costs["mm.unpinPer4k"] * v.pinnedPages;
      // The pins go once every domain's IOTLB sync of the area completed.
      left++;
      let syncs = this._domains.length + 1;
      const synced = () => {
        if (--syncs > 0) return;
        this.#releaseArea(v);
        one();
      };
      for (const d of this._domains) {
        ns += this._core.unmap(d, v.iova, v.length, synced).ns;
      }
      synced();
    }
    this.counters.add("iommufd.ioas.unmaps");
    this._sim.after(0, one);
    return { bytes, ns };
  }

  /** Removes every area (the IOAS destroyed); `done` when the pins are released. */
  release(done?: () => void): void {
    let left = 1;
    const one = () => {
      if (--left === 0) done?.();
    };
    for (const d of [...this._domains]) {
      left++;
      this.removeDomain(d, one);
    }
    for (const v of this._areas.splice(0)) {
      v.removed = true;
      this.#releaseArea(v);
    }
    this._sim.after(0, one);
  }

  #pfnBuf(n: number): Float64Array {
    if (this.#pfns.length < n) this.#pfns = new Float64Array(n);
    return this.#pfns;
  }

  /** pfn_reader over the whole area: pin, charge and map into every domain, or nothing. */
  #pinAndMapArea(area: IoptArea): number {
    try {
      return this.#pinAndMapPart(area, 0, area.npages);
    } catch (e) {
      this.#unwindArea(area);
      throw e;
    }
  }

  /**
   * Pins, charges and maps into every domain pages [off, off + n) of
   * `area`, the next ones after those done (`area.mappedPages === off`),
   * one VMA and at most 1 GiB per pin_user_pages call. Returns ns. On an
   * error the area is left part done: {@linkcode #unwindArea} releases it.
   */
  #pinAndMapPart(area: IoptArea, off: number, n: number): number {
    const mm = this._mm;
    const acct = this._account;
    let ns = 0;
    let done = off;
    const end = off + n;
    while (done < end) {
      const va = area.userVa + done * PAGE_SIZE;
      const vma = mm.findVma(va);
      if (!vma) {
        throw new IopfLabError(
          "EFAULT",
          `Cannot pin user_va ${hex(va)} (IOVA ${
            hex(area.iova + done * PAGE_SIZE)
          }): not mapped`,
        );
      }
      const k = Math.min(end - done, (vma.end - va) / PAGE_SIZE, MM_CALL_PAGES);
      if (acct.headroom < k) {
        throw new IopfLabError(
          "ENOMEM",
          `Cannot pin IOAS ${this.id} IOVA ${hex(area.iova)}+${
            hex(area.length)
          }: ${
            acct.mode === "user" ? acct.user.name : "mm"
          } locked_vm ${acct.chargedPages} + ${
            area.npages - done
          } pages exceeds RLIMIT_MEMLOCK of ${acct.limitPages} pages`,
        );
      }
      const out = this.#pfnBuf(k);
      const r = mm.pinUserPages(va, k, { longterm: true, out });
      ns += r.ns +
        this._costs["mm.pinCall"] * (Math.ceil(k / IOPT_PIN_BATCH_PAGES) - 1);
      try {
        acct.update(k, true);
      } catch (e) {
        mm.unpinUserPages(va, k);
        throw e;
      }
      area.pinnedPages += k;
      this._pinned += k;
      this._locked += k;
      for (const d of this._domains) {
        ns += this.#mapRuns(area, d, done, k, out);
      }
      done += k;
      area.mappedPages = done;
    }
    return ns;
  }

  /** iopt_abort_area after a failed pin: unmaps what is mapped, releases the pins. */
  #unwindArea(area: IoptArea): void {
    if (area.mappedPages > 0) {
      for (const d of this._domains) {
        this._core.unmap(d, area.iova, area.mappedPages * PAGE_SIZE);
      }
    }
    area.mappedPages = 0;
    this.#releaseArea(area);
  }

  /** Maps pages [off, off + n) of a pinned area into `domain` from the PFNs of the pins. */
  #mapPinnedArea(
    area: IoptArea,
    domain: IommuDomain,
    off: number,
    n: number,
  ): number {
    const out = this.#pfnBuf(n);
    for (let i = 0; i < n; i++) {
      out[i] = this._mm.hvaToPfn(area.userVa + (off + i) * PAGE_SIZE);
    }
    return this.#mapRuns(area, domain, off, n, out);
  }

  /**
   * @internal Maps pages [off, off + n) of `area` at PFNs `out[0..n)`, one
   * iommu_map call per contiguous run (`IommuCore.mapFrames`).
   */
  #mapRuns(
    area: IoptArea,
    domain: IommuDomain,
    off: number,
    n: number,
    out: Float64Array,
  ): number {
    const r = this.#runs;
    r.ns = 0;
    r.pages = 0;
    this._core.mapFrames(
      domain,
      area.iova + off * PAGE_SIZE,
      out,
      0,
      n,
      area.prot,
      r,
    );
    return r.ns;
  }

  /** Unpins and uncharges everything `area` holds. */
  #releaseArea(area: IoptArea): void {
    if (area.faulted) {
      this.#releaseFaulted(area);
      return;
    }
    if (area.pinnedPages === 0) return;
    this._mm.unpinUserPages(area.userVa, area.pinnedPages);
    this._account.update(area.pinnedPages, false);
    this._pinned -= area.pinnedPages;
    this._locked -= area.pinnedPages;
    area.pinnedPages = 0;
  }

  /** What-if: unpins and uncharges the runs of pages pinned on fault. */
  #releaseFaulted(area: IoptArea): void {
    const f = area.faulted!;
    let p = 0;
    while (p < area.npages) {
      if (!f[p]) {
        p++;
        continue;
      }
      let q = p;
      while (q < area.npages && f[q]) q++;
      this._mm.unpinUserPages(area.userVa + p * PAGE_SIZE, q - p);
      this._account.update(q - p, false);
      f.fill(0, p, q);
      p = q;
    }
    this._pinned -= area.pinnedPages;
    this._locked -= area.pinnedPages;
    area.pinnedPages = 0;
  }

  /** @internal For iopf.ts: counts `n` pages of `area` pinned and charged. */
  _addPinned(area: IoptArea, n: number): void {
    area.pinnedPages += n;
    this._pinned += n;
    this._locked += n;
  }

  /** @internal For iopf.ts: the reused PFN buffer of at least `n` entries. */
  _pfnBuf(n: number): Float64Array {
    return this.#pfnBuf(n);
  }

  /** @internal For iopf.ts: maps a pinned run. */
  _mapRuns(
    area: IoptArea,
    domain: IommuDomain,
    off: number,
    n: number,
    out: Float64Array,
  ): number {
    return this.#mapRuns(area, domain, off, n, out);
  }
}
