/**
 * The host side of coIOMMU, as a VMM implements it: a pin thread that
 * serves the guest's doorbells by pinning and mapping 4 KiB pages through
 * VFIO (one VFIO_IOMMU_MAP_DMA per page, IOVA = GPA), an unpin thread that
 * walks the pinned pages every unpin interval and unpins the ones the
 * guest no longer uses (LRU with a second chance and two generations), and
 * the balloon's forced unpin. Both threads share one lock over the pin
 * state, as the public crosvm backend does.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { costSampler } from "../sim/spread.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { EventId, Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  type VfioContainer,
} from "../vfio/container.ts";
import { GfnQueue } from "./_queue.ts";
import { type DmaTrackingTable, DTTE_PINNED } from "./dtt.ts";

/** When pinned pages are unpinned: never (`off`) or by the LRU unpin thread (`lru`). */
export type UnpinPolicy = "off" | "lru";

/** Default period of the unpin thread: 60 s. */
export const DEFAULT_UNPIN_INTERVAL_NS = 60e9;
/** Default generation threshold: 10 busy intervals. */
export const DEFAULT_GENERATION_THRESHOLD = 10;

/** Options of {@linkcode CoiommuBackend}. */
export interface CoiommuBackendOptions {
  /** The cost profile (coiommu.*; VFIO's own costs come from the container). */
  readonly costs: Costs;
  /** The VM's VFIO container, type1 without IOPF (static semantics). */
  readonly container: VfioContainer;
  /** The DMA tracking table shared with the guest. */
  readonly dtt: DmaTrackingTable;
  /** HVA where guest RAM starts in the VMM. */
  readonly hva: number;
  /** GPA where guest RAM starts. */
  readonly ramBase: number;
  /** Guest RAM in bytes. */
  readonly ramSize: number;
  /** Unpin policy. Default `"off"`. */
  readonly unpinPolicy?: UnpinPolicy;
  /** Period of the unpin thread in ns. Default 60 s. */
  readonly unpinInterval?: number;
  /**
   * Busy intervals after which a page moves to the older generation, which
   * is scanned once every this many intervals; 0 keeps one generation.
   * Default 10.
   */
  readonly generationThreshold?: number;
}

/** What a balloon request achieved. */
export interface BalloonResult {
  /** Pages unpinned. */
  readonly unpinned: number;
  /** False when a page of the range still had maps outstanding (the balloon must not take it). */
  readonly ok: boolean;
  /** The first frame that could not be unpinned, or -1. */
  readonly refusedGfn: number;
}

/** Statistics of the backend. */
export interface CoiommuBackendStats {
  /** Doorbells served (pin requests). */
  readonly pinRequests: number;
  /** Frames named in pin requests. */
  readonly requestedPages: number;
  /** Pages pinned and mapped now. */
  readonly pinnedPages: number;
  /** Highest {@linkcode pinnedPages}. */
  readonly pinnedPagesPeak: number;
  /** Pages pinned over the run (a page pinned twice counts twice). */
  readonly pinnedTotal: number;
  /** Requested frames that were already pinned. */
  readonly alreadyPinned: number;
  /** Frames VFIO could not pin (out of memory, over RLIMIT_MEMLOCK, outside RAM). */
  readonly pinFailures: number;
  /** Timer ticks that found the last pass still pending, so queued none. */
  readonly unpinTicksSkipped: number;
  /** LRU passes of the unpin thread. */
  readonly unpinScans: number;
  /** Queue entries examined by those passes. */
  readonly scannedEntries: number;
  /** Pages unpinned by the LRU passes. */
  readonly unpinnedPages: number;
  /** Pages found busy (maps outstanding or ACCESSED) whose ACCESSED bit was cleared. */
  readonly secondChances: number;
  /** Pages moved to the older generation. */
  readonly agedPages: number;
  /** Entries in the new generation now. */
  readonly newGeneration: number;
  /** Entries in the old generation now. */
  readonly oldGeneration: number;
  /** Pages unpinned by balloon requests. */
  readonly balloonUnpinned: number;
  /** Balloon requests refused (a page still mapped by the guest). */
  readonly balloonRefused: number;
}

/**
 * The VMM's coIOMMU backend for one VM.
 *
 * Pin path: a doorbell wakes the pin thread (`coiommu.threadWakeup`); it
 * takes the pin-state lock, and for each frame named (`coiommu.pinLookup`)
 * that is not PINNED yet calls VFIO_IOMMU_MAP_DMA for that 4 KiB page (VFIO
 * pins it, charges locked_vm, maps IOVA = GPA), sets PINNED and, under the
 * LRU policy, queues the page in the new generation. A page VFIO cannot pin
 * stays unpinned; the device's DMA to it will fail.
 *
 * Unpin path (policy `lru`): every `unpinInterval` the unpin thread wakes,
 * takes the lock and examines queued pages (`coiommu.unpinScanPerEntry`
 * each): a page whose entry is exactly PINNED (no maps outstanding,
 * ACCESSED clear) is cleared with a compare-and-exchange and unmapped with
 * VFIO_IOMMU_UNMAP_DMA (which unpins after the IOTLB sync); any other
 * pinned page gets its ACCESSED bit cleared (a second chance) and one more
 * busy interval; a page busy for `generationThreshold` intervals moves to
 * the old generation, which is examined only every `generationThreshold`
 * passes. Entries of pages no longer pinned are dropped.
 */
export class CoiommuBackend {
  /** The simulator. */
  readonly sim: Simulator;
  /** The cost profile. */
  readonly costs: Costs;
  /** coiommu.threadWakeup, drawn per wakeup (lib/sim/spread.ts). */
  readonly #threadWakeup: () => number;
  /** The VFIO container pages are mapped through. */
  readonly container: VfioContainer;
  /** The shared tracking table. */
  readonly dtt: DmaTrackingTable;
  /** The unpin policy. */
  readonly unpinPolicy: UnpinPolicy;
  /** Period of the unpin thread in ns. */
  readonly unpinInterval: number;
  /** Generation threshold (0: one generation). */
  readonly generationThreshold: number;
  /** The lock over the pin state, shared by the pin thread, the unpin thread and balloon requests. */
  readonly lock: Resource;
  /** The first error VFIO returned when pinning, if any. */
  lastPinError: IopfLabError | undefined;
  readonly #hva: number;
  readonly #ramBase: number;
  readonly #ramSize: number;
  readonly #new = new GfnQueue();
  readonly #old = new GfnQueue();
  readonly #c = new Counters();
  #pinned = 0;
  #pinnedPeak = 0;
  #genCounter = 0;
  #timer: EventId | undefined;

  /** A backend with no page pinned and the unpin thread not started. */
  constructor(sim: Simulator, options: CoiommuBackendOptions) {
    const {
      costs,
      container,
      dtt,
      hva,
      ramBase,
      ramSize,
      unpinPolicy = "off",
      unpinInterval = DEFAULT_UNPIN_INTERVAL_NS,
      generationThreshold = DEFAULT_GENERATION_THRESHOLD,
    } = options;
    if (!(unpinInterval > 0) || !Number.isFinite(unpinInterval)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the coIOMMU backend: unpin interval ${unpinInterval} ns must be positive`,
      );
    }
    if (!Number.isInteger(generationThreshold) || generationThreshold < 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the coIOMMU backend: generation threshold ${generationThreshold} must be a whole number >= 0`,
      );
    }
    if (unpinPolicy !== "off" && unpinPolicy !== "lru") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the coIOMMU backend: unknown unpin policy ${
          String(unpinPolicy)
        }`,
      );
    }
    this.sim = sim;
    this.costs = costs;
    this.#threadWakeup = costSampler(costs, "coiommu.threadWakeup");
    this.container = container;
    this.dtt = dtt;
    this.unpinPolicy = unpinPolicy;
    this.unpinInterval = unpinInterval;
    this.generationThreshold = generationThreshold;
    this.lock = new Resource(sim, { name: "coIOMMU pin state" });
    this.lastPinError = undefined;
    this.#hva = hva;
    this.#ramBase = ramBase;
    this.#ramSize = ramSize;
  }

  /** True while the unpin thread's timer is armed. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Pages pinned and mapped by the backend now. */
  get pinnedPages(): number {
    return this.#pinned;
  }

  /**
   * A doorbell: the pin thread pins and maps every frame of `gfns` that is
   * not PINNED yet, then `done` runs (the guest sees its request complete).
   */
  requestPin(gfns: readonly number[], done: () => void): void {
    this.#c.add("pinRequests");
    this.#c.add("requestedPages", gfns.length);
    this.sim.after(
      this.#threadWakeup(),
      () =>
        this.lock.acquire((release) => {
          let ns = 0;
          for (const gfn of gfns) {
            ns += this.costs["coiommu.pinLookup"] + this.#pin(gfn);
          }
          this.sim.after(ns, () => {
            release();
            done();
          });
        }),
    );
  }

  /** Starts the unpin thread's periodic timer (policy `lru`; no-op otherwise). */
  start(): void {
    if (this.unpinPolicy !== "lru" || this.#timer !== undefined) return;
    this.#timer = this.sim.after(this.unpinInterval, this.#tick);
  }

  /** Stops the unpin thread's timer (a pass under way completes). */
  stop(): void {
    if (this.#timer !== undefined) this.sim.cancel(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Runs one LRU pass now, through the lock like the thread's own passes
   * (whatever the policy); `done` gets the pass's CPU time in ns.
   */
  unpinPass(done?: (ns: number) => void): void {
    this.lock.acquire((release) => {
      const ns = this.#lruPass();
      this.sim.after(ns, () => {
        release();
        done?.(ns);
      });
    });
  }

  /**
   * A balloon request (the guest gives `[gpa, gpa + size)` back): every
   * pinned page of the range is unpinned by force (ACCESSED cleared, then
   * the compare-and-exchange). A page with maps outstanding is refused: the
   * request stops there with `ok` false, since the guest still uses it for DMA.
   */
  balloon(
    gpa: number,
    size: number,
    done: (result: BalloonResult) => void,
  ): void {
    const first = Math.floor(gpa / PAGE_SIZE);
    const n = Math.ceil((gpa + size) / PAGE_SIZE) - first;
    this.sim.after(
      this.#threadWakeup(),
      () =>
        this.lock.acquire((release) => {
          let ns = 0, unpinned = 0, refused = -1;
          for (let k = 0; k < n; k++) {
            const gfn = first + k;
            ns += this.costs["coiommu.unpinScanPerEntry"];
            this.dtt.clearAccessed(gfn);
            const old = this.dtt.compareExchange(gfn, DTTE_PINNED, 0);
            if (old === DTTE_PINNED) {
              ns += this.#unmap(gfn);
              unpinned++;
            } else if ((old & DTTE_PINNED) !== 0) {
              refused = gfn;
              break;
            }
          }
          this.#c.add("balloonUnpinned", unpinned);
          if (refused >= 0) this.#c.add("balloonRefused");
          this.sim.after(ns, () => {
            release();
            done({ unpinned, ok: refused < 0, refusedGfn: refused });
          });
        }),
    );
  }

  /** The backend's statistics. */
  stats(): CoiommuBackendStats {
    const c = this.#c;
    return {
      pinRequests: c.get("pinRequests"),
      requestedPages: c.get("requestedPages"),
      pinnedPages: this.#pinned,
      pinnedPagesPeak: this.#pinnedPeak,
      pinnedTotal: c.get("pinnedTotal"),
      alreadyPinned: c.get("alreadyPinned"),
      pinFailures: c.get("pinFailures"),
      unpinScans: c.get("unpinScans"),
      unpinTicksSkipped: c.get("unpinTicksSkipped"),
      scannedEntries: c.get("scannedEntries"),
      unpinnedPages: c.get("unpinnedPages"),
      secondChances: c.get("secondChances"),
      agedPages: c.get("agedPages"),
      newGeneration: this.#new.length,
      oldGeneration: this.#old.length,
      balloonUnpinned: c.get("balloonUnpinned"),
      balloonRefused: c.get("balloonRefused"),
    };
  }

  /**
   * The periodic timer: it wakes the unpin thread, unless the thread's last
   * pass is still waiting or running (as queue_delayed_work() on a pending
   * work item does nothing), so passes never pile up when one takes longer
   * than the interval.
   */
  readonly #tick = (): void => {
    this.#timer = this.sim.after(this.unpinInterval, this.#tick);
    if (this.#passPending) {
      this.#c.add("unpinTicksSkipped");
      return;
    }
    this.#passPending = true;
    this.sim.after(
      this.#threadWakeup(),
      () => this.unpinPass(this.#passDone),
    );
  };
  #passPending = false;
  readonly #passDone = (): void => {
    this.#passPending = false;
  };

  /** Pins and maps one frame unless PINNED; returns the CPU time. */
  #pin(gfn: number): number {
    if ((this.dtt.entry(gfn) & DTTE_PINNED) !== 0) {
      this.#c.add("alreadyPinned");
      return 0;
    }
    const gpa = gfn * PAGE_SIZE;
    const off = gpa - this.#ramBase;
    if (off < 0 || off >= this.#ramSize) {
      this.#pinFailed(
        new IopfLabError(
          "EFAULT",
          `Cannot pin guest frame ${hex(gfn)}: outside guest RAM`,
        ),
      );
      return 0;
    }
    let ns = 0;
    try {
      ns = this.container.mapDma({
        vaddr: this.#hva + off,
        iova: gpa,
        size: PAGE_SIZE,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      });
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      if (e.code !== "EEXIST") {
        this.#pinFailed(e);
        return this.costs["vfio.mapDmaCall"];
      }
      // Mapped already (by another path): treat as pinned, as crosvm does.
      ns = this.costs["vfio.mapDmaCall"];
    }
    this.dtt.setPinned(gfn);
    this.#pinned++;
    if (this.#pinned > this.#pinnedPeak) this.#pinnedPeak = this.#pinned;
    this.#c.add("pinnedTotal");
    if (this.unpinPolicy === "lru") this.#new.push(gfn, 0);
    return ns;
  }

  #pinFailed(e: IopfLabError): void {
    this.#c.add("pinFailures");
    this.lastPinError ??= e;
  }

  /** VFIO_IOMMU_UNMAP_DMA of one page (unpinned when its IOTLB sync completes). */
  #unmap(gfn: number): number {
    const r = this.container.unmapDma({
      iova: gfn * PAGE_SIZE,
      size: PAGE_SIZE,
    });
    this.#pinned--;
    return r.ns;
  }

  /** One LRU pass over the old generation (every threshold passes) and the new one. */
  #lruPass(): number {
    this.#c.add("unpinScans");
    let ns = 0;
    const t = this.generationThreshold;
    if (t !== 0 && ++this.#genCounter >= t) {
      this.#genCounter = 0;
      ns += this.#scan(this.#old, false);
    }
    ns += this.#scan(this.#new, true);
    return ns;
  }

  #scan(q: GfnQueue, isNew: boolean): number {
    const t = this.generationThreshold;
    const keepNew = new GfnQueue();
    const keepOld = new GfnQueue();
    const per = this.costs["coiommu.unpinScanPerEntry"];
    let ns = 0;
    for (let n = q.length; n > 0; n--) {
      const gfn = q.frontGfn();
      let busy = q.frontBusy();
      q.shift();
      ns += per;
      this.#c.add("scannedEntries");
      const old = this.dtt.compareExchange(gfn, DTTE_PINNED, 0);
      if (old === DTTE_PINNED) {
        ns += this.#unmap(gfn);
        this.#c.add("unpinnedPages");
        continue;
      }
      if ((old & DTTE_PINNED) === 0) continue; // unpinned meanwhile (balloon): drop
      this.dtt.clearAccessed(gfn);
      this.#c.add("secondChances");
      busy++;
      if (t !== 0 && (!isNew || busy >= t)) {
        if (isNew) this.#c.add("agedPages");
        keepOld.push(gfn, 0);
      } else {
        keepNew.push(gfn, busy);
      }
    }
    this.#new.append(keepNew);
    this.#old.append(keepOld);
    return ns;
  }
}
