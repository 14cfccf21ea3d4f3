/**
 * The DMA fault region of nested IOPF (the 2021 RFC's VFIO DMA fault region,
 * with IOMMUFD's fault record layout): stage-1 faults of a nested domain are
 * written as records into a ring with a head/tail header, the VMM is woken
 * through an eventfd, and it writes `{cookie, code}` responses back, which
 * become the hardware page response through iommu_page_response.
 *
 * @module
 */
import type { IommuCore } from "../iommu/core.ts";
import type { IopfGroup } from "../iommu/io_pgfault.ts";
import {
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type PageResponseCode,
} from "../iommu/types.ts";
import type { Costs } from "../sim/costs.ts";
import { costSampler } from "../sim/spread.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import { PAGE_SIZE } from "../sim/units.ts";

/** Record flag: the PASID is valid (IOMMU_PGFAULT_FLAGS_PASID_VALID). */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** Record flag: last fault of its group (IOMMU_PGFAULT_FLAGS_LAST_PAGE). */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** Record permission: read (IOMMU_PGFAULT_PERM_READ). */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** Record permission: write. */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** Record permission: execute. */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** Record permission: privileged. */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;
/** Response code the VMM writes: the guest fixed its table (IOMMUFD_PAGE_RESP_SUCCESS). */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** Response code the VMM writes: the fault cannot be fixed (IOMMUFD_PAGE_RESP_INVALID). */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** Header word: producer index (the kernel writes records at head). */
export const FAULT_REGION_HEAD = 0;
/** Header word: consumer index (the VMM reads records at tail). */
export const FAULT_REGION_TAIL = 1;
/** Header word: number of record slots. */
export const FAULT_REGION_ENTRIES = 2;
/** Header word: record size in bytes. */
export const FAULT_REGION_ENTRY_SIZE = 3;

/**
 * 32-bit words per record, laid out like struct iommu_hwpt_pgfault: flags,
 * dev_id, pasid, grpid, perm, reserved, addr (low, high), length, cookie.
 */
export const FAULT_RECORD_WORDS = 10;
const W_FLAGS = 0, W_DEV = 1, W_PASID = 2, W_GRPID = 3, W_PERM = 4;
const W_ADDR_LO = 6, W_ADDR_HI = 7, W_LENGTH = 8, W_COOKIE = 9;

/** A decoded fault record (struct iommu_hwpt_pgfault). */
export interface VfioFaultRecord {
  /** IOMMU_PGFAULT_FLAGS_*. */
  readonly flags: number;
  /** The device's id in the container. */
  readonly devId: number;
  /** PASID (valid with PASID_VALID). */
  readonly pasid: number;
  /** Page request group id (PRGI or STAG). */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_*. */
  readonly perm: number;
  /** Faulting address (the stage-1 input address, an IOVA of the guest). */
  readonly addr: number;
  /** Bytes the fault covers (4 KiB). */
  readonly length: number;
  /** Identifies the group in the response; equal for every record of a group. */
  readonly cookie: number;
}

/** A response the VMM writes (struct iommu_hwpt_page_response). */
export interface VfioFaultResponse {
  /** The cookie of the group's records. */
  readonly cookie: number;
  /** IOMMUFD_PAGE_RESP_SUCCESS (0) or IOMMUFD_PAGE_RESP_INVALID (1). */
  readonly code: number;
}

/** Options of {@linkcode VfioDmaFaultRegion}. */
export interface VfioDmaFaultRegionOptions {
  /** The cost profile (vfio.faultRegionWrite, vfio.eventfdSignal, vfio.responseWrite). */
  costs: Costs;
  /** The IOMMU core the responses go to. */
  core: IommuCore;
  /** Record slots in the ring (one stays empty to tell full from empty). Default 256. */
  entries?: number;
  /** The device id recorded for `dev` (the container's). */
  devId: (dev: IommuDevice) => number;
}

/**
 * A group on its way from the handler to the VMM's eventfd (after the
 * record writes), or a response on its way to the core. Pooled; `fire` is
 * bound once.
 */
interface Msg {
  group: IopfGroup | undefined;
  done: () => void;
  code: PageResponseCode;
  fire: () => void;
}

function noop(): void {}

/**
 * The ring, its eventfd and the pending groups. The kernel side is
 * {@linkcode handleGroup}, the NESTED_L1 fault handler; the VMM side is
 * {@linkcode onEventfd}, {@linkcode readEventfd}, {@linkcode readRecords}
 * and {@linkcode writeResponse}.
 *
 * Ring full (a group needs more free slots than there are): the group is
 * answered INVALID at once and counted (`faultRegion.overflows`), as the
 * RFC's handler failing with -ENOSPC: the device sees the access fail
 * rather than waiting for a fault nobody will read.
 */
export class VfioDmaFaultRegion {
  /** The header: head, tail, entries, entry size (bytes). */
  readonly header: Uint32Array;
  /** The record slots, {@linkcode FAULT_RECORD_WORDS} words each. */
  readonly records: Uint32Array;
  /** Counters (`faultRegion.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  /** vfio.eventfdSignal, drawn per signal (lib/sim/spread.ts). */
  readonly #eventfdSignal: () => number;
  readonly #core: IommuCore;
  readonly #devId: (dev: IommuDevice) => number;
  readonly #pending = new Map<number, IopfGroup>();
  #nextCookie = 1;
  #eventfd = 0;
  #listeners: (() => void)[] = [];
  readonly #signals: Msg[] = [];
  readonly #responses: Msg[] = [];
  /** Event: the eventfd becomes readable for the VMM. */
  readonly #wakeListeners = (): void => {
    const ls = this.#listeners;
    for (let i = 0; i < ls.length; i++) ls[i]!();
  };

  /** Creates an empty ring. */
  constructor(sim: Simulator, options: VfioDmaFaultRegionOptions) {
    const entries = options.entries ?? 256;
    if (!Number.isInteger(entries) || entries < 2 || entries > 1 << 20) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a DMA fault region of ${entries} entries: expected a whole number in [2, 2^20]`,
      );
    }
    this.#sim = sim;
    this.#costs = options.costs;
    this.#eventfdSignal = costSampler(options.costs, "vfio.eventfdSignal");
    this.#core = options.core;
    this.#devId = options.devId;
    this.header = new Uint32Array(4);
    this.header[FAULT_REGION_ENTRIES] = entries;
    this.header[FAULT_REGION_ENTRY_SIZE] = FAULT_RECORD_WORDS * 4;
    this.records = new Uint32Array(entries * FAULT_RECORD_WORDS);
  }

  /** Record slots. */
  get entries(): number {
    return this.header[FAULT_REGION_ENTRIES]!;
  }

  /** Records written and not yet read. */
  get used(): number {
    const n = this.entries;
    return (this.header[FAULT_REGION_HEAD]! - this.header[FAULT_REGION_TAIL]! +
      n) % n;
  }

  /** Free record slots. */
  get free(): number {
    return this.entries - 1 - this.used;
  }

  /** Groups forwarded and not yet answered. */
  get pendingGroups(): number {
    return this.#pending.size;
  }

  /**
   * The NESTED_L1 fault handler: writes one record per fault of the group
   * (`vfio.faultRegionWrite` each), signals the eventfd and returns; the
   * response comes later through {@linkcode writeResponse}.
   */
  handleGroup(group: IopfGroup, done: () => void): void {
    const n = group.faults.length;
    if (n > this.free) {
      this.counters.add("faultRegion.overflows");
      this.#core.pageResponse(group.dev, group, IOMMU_PAGE_RESP_INVALID);
      done();
      return;
    }
    const cookie = this.#nextCookie++;
    this.#pending.set(cookie, group);
    const devId = this.#devId(group.dev);
    const slots = this.entries;
    let head = this.header[FAULT_REGION_HEAD]!;
    const faults = group.faults;
    for (let i = 0; i < n; i++) {
      const f = faults[i]!;
      const o = head * FAULT_RECORD_WORDS;
      const r = this.records;
      r[o + W_FLAGS] = f.flags;
      r[o + W_DEV] = devId;
      r[o + W_PASID] = f.pasid;
      r[o + W_GRPID] = f.grpid;
      r[o + W_PERM] = f.perm;
      r[o + 5] = 0;
      r[o + W_ADDR_LO] = f.addr >>> 0; // the low 32 bits, as % 2 ** 32 stores
      r[o + W_ADDR_HI] = Math.floor(f.addr / 2 ** 32);
      r[o + W_LENGTH] = PAGE_SIZE;
      r[o + W_COOKIE] = cookie;
      head = (head + 1) % slots;
    }
    this.header[FAULT_REGION_HEAD] = head;
    this.counters.add("faultRegion.records", n);
    this.counters.add("faultRegion.groups");
    const m = this.#signals.pop() ?? this.#newSignal();
    m.done = done;
    this.#sim.after(this.#costs["vfio.faultRegionWrite"] * n, m.fire);
  }

  #newSignal(): Msg {
    const m: Msg = {
      group: undefined,
      done: noop,
      code: IOMMU_PAGE_RESP_SUCCESS,
      fire: noop,
    };
    m.fire = () => {
      const done = m.done;
      m.done = noop;
      this.#signals.push(m);
      this.#signal();
      done();
    };
    return m;
  }

  #newResponse(): Msg {
    const m: Msg = {
      group: undefined,
      done: noop,
      code: IOMMU_PAGE_RESP_SUCCESS,
      fire: noop,
    };
    m.fire = () => {
      const group = m.group!, code = m.code;
      m.group = undefined;
      this.#responses.push(m);
      this.#core.pageResponse(group.dev, group, code);
    };
    return m;
  }

  #signal(): void {
    this.counters.add("faultRegion.signals");
    if (this.#eventfd++ > 0) return; // already signalled and not read yet
    this.#sim.after(this.#eventfdSignal(), this.#wakeListeners);
  }

  /** The VMM's eventfd poll: `listener` runs when the eventfd becomes readable. */
  onEventfd(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** read() of the eventfd: returns the count and resets it (0 if not signalled). */
  readEventfd(): number {
    const n = this.#eventfd;
    this.#eventfd = 0;
    return n;
  }

  /** The VMM consumes up to `max` records at the tail (default: all). */
  readRecords(max = Infinity): VfioFaultRecord[] {
    const slots = this.entries;
    let tail = this.header[FAULT_REGION_TAIL]!;
    const head = this.header[FAULT_REGION_HEAD]!;
    // Sized up front: usually one record, and push would reserve 17.
    const n = Math.min(
      (head - tail + slots) % slots,
      max >= 0 ? Math.ceil(max) : 0,
    );
    const out: VfioFaultRecord[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const o = tail * FAULT_RECORD_WORDS;
      const r = this.records;
      out[k] = {
        flags: r[o + W_FLAGS]!,
        devId: r[o + W_DEV]!,
        pasid: r[o + W_PASID]!,
        grpid: r[o + W_GRPID]!,
        perm: r[o + W_PERM]!,
        addr: r[o + W_ADDR_HI]! * 2 ** 32 + r[o + W_ADDR_LO]!,
        length: r[o + W_LENGTH]!,
        cookie: r[o + W_COOKIE]!,
      };
      tail = (tail + 1) % slots;
    }
    this.header[FAULT_REGION_TAIL] = tail;
    return out;
  }

  /**
   * The VMM's response write: after `vfio.responseWrite` the group of
   * `cookie` gets its hardware response (SUCCESS or INVALID). Returns false,
   * and does nothing, when the cookie has no pending group (already
   * answered, or answered INVALID when its device was detached).
   *
   * @throws {IopfLabError} EINVAL for a code other than 0 or 1 (Response
   *   Failure is not offered to userspace)
   */
  writeResponse(response: VfioFaultResponse): boolean {
    const { cookie, code } = response;
    if (
      code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot write the response for cookie ${cookie}: code ${code} is neither SUCCESS (0) nor INVALID (1)`,
      );
    }
    const group = this.#pending.get(cookie);
    if (!group) {
      this.counters.add("faultRegion.staleResponses");
      return false;
    }
    this.#pending.delete(cookie);
    this.counters.add("faultRegion.responses");
    const m = this.#responses.pop() ?? this.#newResponse();
    m.group = group;
    m.code = code === IOMMUFD_PAGE_RESP_SUCCESS
      ? IOMMU_PAGE_RESP_SUCCESS
      : IOMMU_PAGE_RESP_INVALID;
    this.#sim.after(this.#costs["vfio.responseWrite"], m.fire);
    return true;
  }

  /**
   * Forgets the pending groups of `dev` (its detach answered them INVALID);
   * their records stay in the ring and their responses are dropped.
   */
  revokeDevice(dev: IommuDevice): number {
    let n = 0;
    for (const [cookie, group] of this.#pending) {
      if (group.dev === dev) {
        this.#pending.delete(cookie);
        n++;
      }
    }
    return n;
  }
}
