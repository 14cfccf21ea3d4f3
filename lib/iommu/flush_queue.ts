/**
 * The deferred IOTLB flush queue of lazy invalidation mode (the dma-iommu
 * flush queue, iommu.strict=0): unmapped ranges are queued instead of synced,
 * and flushed together once `iommu.flushQueueBatch` entries are queued or
 * `iommu.flushQueueTimeout` after the first one. Until then the hardware
 * keeps stale IOTLB entries and the IOVAs stay reachable: the exposure
 * window this queue records per range.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Histogram } from "../sim/stats.ts";
import type { DriverDomain, IommuDriverOps } from "./types.ts";

/** One unmapped range waiting for its deferred IOTLB flush. */
export interface FlushQueueEntry {
  /** The driver domain the range was unmapped from. */
  readonly domain: DriverDomain;
  /** First IOVA of the range. */
  readonly iova: number;
  /** Length in bytes. */
  readonly size: number;
  /** Simulated time of the unmap (ns): the exposure window opens. */
  readonly queuedAt: number;
  /** Simulated time the flush was issued (ns), or -1 while still queued. */
  flushStartedAt: number;
}

/** A completed flush: the ranges it covered and when it completed. */
export interface FlushRecord {
  /** The ranges, each with the time it was unmapped. */
  readonly entries: readonly FlushQueueEntry[];
  /** Simulated time the flush completed (ns): the exposure windows close. */
  readonly completedAt: number;
}

/**
 * The flush queue. {@linkcode pending} lists the exposed ranges (queued or
 * being flushed); {@linkcode exposureNs} is the histogram of closed windows
 * (unmap to flush completion, per range); listeners added with
 * {@linkcode onFlushed} see every completed flush, for an isolation sanitizer.
 */
export class FlushQueue {
  /** Exposure window per range: unmap time to flush completion (ns). */
  readonly exposureNs: Histogram = new Histogram();
  readonly #sim: Simulator;
  readonly #driver: Pick<IommuDriverOps, "flushIotlbAll">;
  readonly #batch: number;
  readonly #timeout: number;
  #queued: FlushQueueEntry[] = [];
  #inFlight = new Set<FlushQueueEntry>();
  #timer = -1;
  #listeners: ((r: FlushRecord) => void)[] = [];
  /** Flushes issued. */
  flushes = 0;
  /** Flushes issued because the batch filled up. */
  batchFlushes = 0;
  /** Flushes issued by the timer. */
  timeoutFlushes = 0;
  /** Ranges ever queued. */
  entriesQueued = 0;

  /** Creates the queue; batch size and timeout come from `costs`. */
  constructor(
    sim: Simulator,
    options: { costs: Costs; driver: Pick<IommuDriverOps, "flushIotlbAll"> },
  ) {
    this.#sim = sim;
    this.#driver = options.driver;
    this.#batch = Math.max(
      1,
      Math.floor(options.costs["iommu.flushQueueBatch"]),
    );
    this.#timeout = options.costs["iommu.flushQueueTimeout"];
  }

  /** Ranges unmapped and not yet flushed (queued or in flight), oldest first. */
  get pending(): readonly FlushQueueEntry[] {
    return [...this.#inFlight, ...this.#queued];
  }

  /** Number of ranges not yet flushed. */
  get size(): number {
    return this.#queued.length + this.#inFlight.size;
  }

  /** True when `iova` of `domain` lies in a range unmapped but not yet flushed. */
  isExposed(domain: DriverDomain, iova: number): boolean {
    for (const e of this.#inFlight) {
      if (e.domain === domain && iova >= e.iova && iova < e.iova + e.size) {
        return true;
      }
    }
    for (const e of this.#queued) {
      if (e.domain === domain && iova >= e.iova && iova < e.iova + e.size) {
        return true;
      }
    }
    return false;
  }

  /** Calls `listener` after every completed flush. Returns a function that removes it. */
  onFlushed(listener: (r: FlushRecord) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** Queues an unmapped range; flushes at once when the batch is full. */
  add(domain: DriverDomain, iova: number, size: number): void {
    this.#queued.push({
      domain,
      iova,
      size,
      queuedAt: this.#sim.now,
      flushStartedAt: -1,
    });
    this.entriesQueued++;
    if (this.#queued.length >= this.#batch) {
      this.batchFlushes++;
      this.flush();
    } else if (this.#timer < 0) {
      this.#timer = this.#sim.after(this.#timeout, () => {
        this.#timer = -1;
        if (this.#queued.length > 0) {
          this.timeoutFlushes++;
          this.flush();
        }
      });
    }
  }

  /**
   * Flushes everything queued now (flush_iotlb_all per domain), then calls
   * `done` once the invalidations completed. Nothing queued: `done` runs on
   * the next event.
   */
  flush(done?: () => void): void {
    if (this.#timer >= 0) {
      this.#sim.cancel(this.#timer);
      this.#timer = -1;
    }
    const entries = this.#queued;
    this.#queued = [];
    if (entries.length === 0) {
      if (done) this.#sim.after(0, done);
      return;
    }
    this.flushes++;
    const now = this.#sim.now;
    const domains = new Set<DriverDomain>();
    for (const e of entries) {
      e.flushStartedAt = now;
      this.#inFlight.add(e);
      domains.add(e.domain);
    }
    let left = domains.size;
    for (const d of domains) {
      this.#driver.flushIotlbAll(d, () => {
        if (--left > 0) return;
        const at = this.#sim.now;
        for (const e of entries) {
          this.#inFlight.delete(e);
          this.exposureNs.record(at - e.queuedAt);
        }
        const record: FlushRecord = { entries, completedAt: at };
        for (const l of this.#listeners) l(record);
        done?.();
      });
    }
  }

  /** Drops the queued ranges of a freed domain (its ASID/VMID is invalidated as a whole). */
  dropDomain(domain: DriverDomain): void {
    this.#queued = this.#queued.filter((e) => e.domain !== domain);
  }
}
