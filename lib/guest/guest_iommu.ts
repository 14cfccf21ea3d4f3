/**
 * The guest's IOMMU driver behind a vSMMU: its own stage-1 page table (table
 * pages at guest-physical addresses, registered where the SMMU finds them),
 * the DMA API (map/unmap of buffers: IOVA -> GPA), and the stage-1 fault
 * handler that maps a faulting page and answers through the vSMMU.
 *
 * @module
 */
import type { NestedConfig } from "../iommu/types.ts";
import {
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
} from "../iommu/types.ts";
import { IoPgtable } from "../pgtable/mod.ts";
import type { Costs } from "../sim/costs.ts";
import { costSampler } from "../sim/spread.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import {
  alignDown,
  isAligned,
  MAX_ADDRESS,
  PAGE_SIZE,
  type Prot,
  PROT_READ,
  PROT_WRITE,
} from "../sim/units.ts";
import type { TableMemory } from "../smmu/memory.ts";
import type { VSmmu, VSmmuEvent } from "../vmm/vsmmu.ts";

/**
 * When the guest writes its stage-1 entries: `"premapped"` at dma_map time
 * (the normal DMA API), `"on-fault"` only when the device faults on the
 * buffer (a guest that relies on stage-1 IOPF).
 */
export type GuestStage1Mode = "premapped" | "on-fault";

/** A buffer mapped through the guest's DMA API. */
export interface GuestDmaBuffer {
  /** First IOVA. */
  readonly iova: number;
  /** First guest-physical address. */
  readonly gpa: number;
  /** Bytes. */
  readonly size: number;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: Prot;
}

/** Options of {@linkcode GuestIommu}. */
export interface GuestIommuOptions {
  /** The cost profile (guest.*). */
  costs: Costs;
  /** The vSMMU the guest drives. */
  vsmmu: VSmmu;
  /** Where the (host) SMMU finds translation tables. */
  tables: TableMemory;
  /** The address space of the guest's tables in `tables`: the VMID of its stage 2. */
  vmid: number;
  /** Guest RAM reserved for stage-1 table pages (4 KiB aligned). */
  tablePool: { gpa: number; size: number };
  /** When stage-1 entries are written. Default `"premapped"`. */
  stage1?: GuestStage1Mode;
  /** The guest's ASID. Default 1. */
  asid?: number;
  /** Stall stage-1 faults (CD.S). Default true. */
  stall?: boolean;
}

/** Statistics of the guest driver. */
export interface GuestIommuStats {
  /** Stage-1 fault events handled. */
  faults: number;
  /** Of those, answered INVALID (no buffer, wrong permission). */
  faultsInvalid: number;
  /** Pages mapped in stage 1 by faults. */
  faultMappedPages: number;
  /** Responses (CMD_RESUME / CMD_PRI_RESP) written. */
  responses: number;
  /** Interrupts taken. */
  irqs: number;
}

/**
 * The guest's SMMU driver and DMA API over a {@linkcode VSmmu}.
 *
 * Fault handling: an event injected by the VMM raises the vSMMU interrupt;
 * `guest.irqToHandler` later the driver's threaded handler drains the event
 * queue, spending `guest.faultHandler` per event (look up the DMA buffer,
 * write the stage-1 PTE), and answers each group on its last event with a
 * CMD_RESUME (stall) or CMD_PRI_RESP (PRI), a trap to the VMM during which
 * the handler waits. Events arriving meanwhile are handled in the same run.
 */
export class GuestIommu {
  /** The guest's stage-1 table. */
  readonly s1: IoPgtable;
  /** The stage-1 context the VMM passes to the host (VFIO_IOMMU_SET_PASID_TABLE). */
  readonly config: NestedConfig;
  /** When stage-1 entries are written. */
  readonly stage1: GuestStage1Mode;
  /** Counters (`guest.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  /** guest.irqToHandler, drawn per interrupt (lib/sim/spread.ts). */
  readonly #irqToHandler: () => number;
  readonly #vsmmu: VSmmu;
  readonly #bufs: GuestDmaBuffer[] = [];
  readonly #failed = new Set<number>();
  readonly #freeTables: number[] = [];
  #nextTable: number;
  readonly #tableEnd: number;
  #irqPending = false;
  #running = false;
  /** The threaded handler's batch of events and the index of the next one. */
  #events: readonly VSmmuEvent[] = [];
  #k = 0;
  /** The event being handled. */
  #ev: VSmmuEvent | undefined = undefined;

  /** Creates the driver with an empty stage-1 table registered in `tables`. */
  constructor(sim: Simulator, options: GuestIommuOptions) {
    const { gpa, size } = options.tablePool;
    if (
      !Number.isInteger(gpa) || !Number.isInteger(size) || gpa < 0 ||
      size < PAGE_SIZE ||
      gpa % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 ||
      gpa + size > MAX_ADDRESS
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the guest IOMMU driver: table pool ${hex(gpa)}+${
          hex(size)
        } must be 4 KiB aligned and non-empty`,
      );
    }
    this.#sim = sim;
    this.#costs = options.costs;
    this.#irqToHandler = costSampler(options.costs, "guest.irqToHandler");
    this.#vsmmu = options.vsmmu;
    this.#nextTable = gpa;
    this.#tableEnd = gpa + size;
    this.stage1 = options.stage1 ?? "premapped";
    this.s1 = new IoPgtable({
      stage: 1,
      allocTable: () => this.#allocTable(),
      freeTable: (addr) => this.#freeTables.push(addr),
    });
    options.tables.register(options.vmid, this.s1);
    this.config = {
      s1Ttb: this.s1.root,
      asid: options.asid ?? 1,
      stall: options.stall ?? true,
    };
    this.#vsmmu.onIrq(() => this.#irq());
  }

  #allocTable(): number {
    const free = this.#freeTables.pop();
    if (free !== undefined) return free;
    if (this.#nextTable >= this.#tableEnd) {
      throw new IopfLabError(
        "ENOMEM",
        "Cannot allocate a stage-1 table page: the guest's table pool is exhausted",
      );
    }
    const a = this.#nextTable;
    this.#nextTable += PAGE_SIZE;
    return a;
  }

  /** The guest's statistics. */
  stats(): GuestIommuStats {
    const c = this.counters;
    return {
      faults: c.get("guest.faults"),
      faultsInvalid: c.get("guest.faults.invalid"),
      faultMappedPages: c.get("guest.faults.mappedPages"),
      responses: c.get("guest.responses"),
      irqs: c.get("guest.irqs"),
    };
  }

  /** The buffers mapped now, by IOVA. */
  buffers(): readonly GuestDmaBuffer[] {
    return [...this.#bufs];
  }

  /**
   * dma_map: makes [iova, iova + size) translate to guest-physical `gpa`.
   * Premapped mode writes the stage-1 entries now; on-fault mode only
   * records the buffer. Returns the guest CPU time (`guest.dmaMap`).
   *
   * @throws {IopfLabError} EINVAL (misaligned, empty, no permission), EEXIST
   *   (overlaps a buffer), ENOMEM (table pool exhausted; nothing changed)
   */
  dmaMap(buffer: GuestDmaBuffer): number {
    const { iova, gpa, size, prot } = buffer;
    if (!isPageAddress(iova) || !isPageAddress(gpa) || !isPageAddress(size)) {
      throw new IopfLabError(
        "EINVAL",
        `${mapWhat(iova, size)}: addresses and size must be 4 KiB aligned`,
      );
    }
    if (size === 0) {
      throw new IopfLabError("EINVAL", `${mapWhat(iova, size)}: size is 0`);
    }
    if ((prot & (PROT_READ | PROT_WRITE)) === 0) {
      throw new IopfLabError(
        "EINVAL",
        `${mapWhat(iova, size)}: prot grants neither read nor write`,
      );
    }
    const i = this.#lowerBound(iova);
    const next = this.#bufs[i], prev = this.#bufs[i - 1];
    const hit = next && next.iova < iova + size
      ? next
      : prev && prev.iova + prev.size > iova
      ? prev
      : undefined;
    if (hit) {
      throw new IopfLabError(
        "EEXIST",
        `${mapWhat(iova, size)}: overlaps the buffer at ${hex(hit.iova)}`,
      );
    }
    if (this.stage1 === "premapped") this.s1.map(iova, gpa, size, prot);
    this.#bufs.splice(i, 0, { iova, gpa, size, prot });
    this.counters.add("guest.dmaMaps");
    return this.#costs["guest.dmaMap"];
  }

  /**
   * dma_unmap of whole buffers inside [iova, iova + size): clears their
   * stage-1 entries and invalidates the (host) IOTLB through the vSMMU
   * (CMD_TLBI_NH_VA + CMD_SYNC, a trap; `done` when it completed). Returns
   * the guest CPU time before the trap.
   *
   * @throws {IopfLabError} EINVAL when the range cuts a buffer
   */
  dmaUnmap(range: { iova: number; size: number }, done?: () => void): number {
    const { iova, size } = range;
    const end = iova + size;
    const i = this.#lowerBound(iova);
    let j = i;
    while (j < this.#bufs.length && this.#bufs[j]!.iova < end) j++;
    const prev = this.#bufs[i - 1], last = this.#bufs[j - 1];
    if (
      (prev && prev.iova + prev.size > iova) ||
      (j > i && last && last.iova + last.size > end)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot dma_unmap IOVA ${hex(iova)}+${
          hex(size)
        }: the range cuts a buffer`,
      );
    }
    const gone = this.#bufs.splice(i, j - i);
    for (const b of gone) this.s1.unmap(b.iova, b.size);
    this.counters.add("guest.dmaUnmaps", gone.length);
    if (gone.length === 0) {
      if (done) this.#sim.after(0, done);
      return 0;
    }
    this.#vsmmu.submitCommand({
      op: "tlbi",
      asid: this.config.asid,
      iova,
      size,
    }, done);
    return this.#costs["guest.dmaMap"];
  }

  // -------------------------------------------------------------------------
  // Fault handling

  #irq(): void {
    if (this.#irqPending || this.#running) return;
    this.#irqPending = true;
    this.counters.add("guest.irqs");
    this.#sim.after(this.#irqToHandler(), this.#thread);
  }

  /** Event: the threaded handler starts. */
  readonly #thread = (): void => {
    this.#irqPending = false;
    this.#running = true;
    this.#drain();
  };

  /**
   * The threaded handler: handles queued events one at a time (the batch
   * read last and the next one to handle are fields: one run at a time).
   */
  #drain(): void {
    const events = this.#vsmmu.readEvents();
    if (events.length === 0) {
      this.#running = false;
      return;
    }
    this.#events = events;
    this.#k = 0;
    this.#step();
  }

  /** Handles the next event of the batch after `guest.faultHandler`, or drains again. */
  readonly #step = (): void => {
    const events = this.#events;
    if (this.#k >= events.length) {
      this.#drain(); // events that arrived meanwhile
      return;
    }
    const ev = events[this.#k++]!;
    if (ev.kind === "event") {
      // A non-recoverable event (arm_smmu_evtq_thread logs it): no response.
      this.counters.add("guest.events");
      this.#step();
      return;
    }
    this.#ev = ev;
    this.#sim.after(this.#costs["guest.faultHandler"], this.#handleNext);
  };

  /** Event: one event handled; its group answered on the last one. */
  readonly #handleNext = (): void => {
    const ev = this.#ev!;
    this.#ev = undefined;
    this.#handle(ev);
    if (!ev.last) {
      this.#step();
      return;
    }
    const ok = !this.#failed.delete(ev.token);
    this.counters.add("guest.responses");
    this.#vsmmu.submitCommand(
      ev.kind === "stall"
        ? { op: "resume", token: ev.token, devId: ev.devId, retry: ok }
        : {
          op: "pri-resp",
          token: ev.token,
          devId: ev.devId,
          resp: ok ? "success" : "invalid",
        },
      this.#step,
    );
  };

  /** iommu_report_device_fault -> the guest's own IOPF handler, for one event. */
  #handle(ev: VSmmuEvent): void {
    this.counters.add("guest.faults");
    const page = alignDown(ev.addr, PAGE_SIZE);
    const b = this.#find(page);
    const wantW = (ev.perm & IOMMU_FAULT_PERM_WRITE) !== 0;
    const wantR = (ev.perm & IOMMU_FAULT_PERM_READ) !== 0;
    let ok = b !== undefined && (!wantW || (b.prot & PROT_WRITE) !== 0) &&
      (!wantR || (b.prot & PROT_READ) !== 0);
    if (ok && this.s1.iovaToPhys(page) < 0) {
      try {
        this.s1.map(page, b!.gpa + (page - b!.iova), PAGE_SIZE, b!.prot);
        this.counters.add("guest.faults.mappedPages");
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        ok = false;
      }
    }
    if (!ok) {
      this.counters.add("guest.faults.invalid");
      this.#failed.add(ev.token);
    }
  }

  #lowerBound(iova: number): number {
    let lo = 0, hi = this.#bufs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#bufs[mid]!.iova < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #find(iova: number): GuestDmaBuffer | undefined {
    const i = this.#lowerBound(iova + 1) - 1;
    const b = this.#bufs[i];
    return b && iova < b.iova + b.size ? b : undefined;
  }
}

/** A whole, non-negative, 4 KiB aligned number below 2^52 (an address or size of dma_map). */
function isPageAddress(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && isAligned(v, PAGE_SIZE) &&
    v < MAX_ADDRESS;
}

/** The start of dma_map's error messages (formatted only when one is thrown). */
function mapWhat(iova: number, size: number): string {
  return `Cannot dma_map IOVA ${hex(iova)}+${hex(size)}`;
}
