/**
 * The iommufd fault object and its file (drivers/iommu/iommufd/fault.c,
 * Linux 6.11: iommufd_fault_iopf_handler, iommufd_fault_fops_read,
 * iommufd_fault_fops_write, iommufd_auto_response_faults,
 * iommufd_fault_destroy). A HWPT allocated with IOMMU_HWPT_FAULT_ID_VALID
 * hands its fault groups to this object; user space (the VMM) reads them as
 * struct iommu_hwpt_pgfault records and answers each group once with a
 * struct iommu_hwpt_page_response naming its cookie.
 *
 * The rules, as the kernel's: read() takes a multiple of 40 bytes (else
 * ESPIPE) and returns whole groups only, oldest first, as many as fit
 * (0 bytes when the first group does not fit); reading a group gives it a
 * cookie (the lowest free one from 1, as xa_alloc with XA_FLAGS_ALLOC1) and
 * moves it to the response table. write() takes a multiple of 8 bytes (else
 * ESPIPE) and handles the responses in order; a code other than SUCCESS (0)
 * or INVALID (1), or a cookie with no group read and unanswered (stale,
 * repeated or made up), stops it with EINVAL; it returns the bytes of the
 * responses handled before the bad one, or throws when that is the first.
 *
 * @module
 */
import type { IommuCore } from "../iommu/core.ts";
import type { IopfGroup } from "../iommu/io_pgfault.ts";
import {
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
} from "../iommu/types.ts";
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import {
  decodePageResponse,
  encodePgfault,
  IOMMU_HWPT_PAGE_RESPONSE_SIZE,
  IOMMU_HWPT_PGFAULT_SIZE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from "./uapi.ts";

/** Options of {@linkcode IommufdFault}. */
export interface IommufdFaultOptions {
  /** The cost profile (iommufd.faultDeliver, iommufd.faultWakeup). */
  costs: Costs;
  /** The IOMMU core the responses go to (iopf_group_response). */
  core: IommuCore;
  /** The object id IOMMU_FAULT_QUEUE_ALLOC returned. */
  id: number;
  /** The iommufd dev_id of a bound device (the record's dev_id). */
  devId: (dev: IommuDevice) => number;
}

function noop(): void {}

/**
 * One fault object (struct iommufd_fault) and its fd. The kernel side is
 * {@linkcode iopfHandler}; the user side is {@linkcode onReadable},
 * {@linkcode readable}, {@linkcode read} and {@linkcode write}.
 */
export class IommufdFault {
  /** The object id (out_fault_id). */
  readonly id: number;
  /** Counters (`iommufd.fault.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #core: IommuCore;
  readonly #devId: (dev: IommuDevice) => number;
  /** fault->deliver: groups not read yet, [#head, end). */
  #deliver: IopfGroup[] = [];
  #head = 0;
  /** fault->response: groups read and not answered, by cookie. */
  readonly #response = new Map<number, IopfGroup>();
  /** Cookies freed by answers, ascending (xa_alloc takes the lowest free). */
  readonly #freeCookies: number[] = [];
  #nextCookie = 1;
  #listeners: (() => void)[] = [];
  #wakeScheduled = false;
  #destroyed = false;
  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    if (!this.readable) return;
    const ls = this.#listeners;
    for (let i = 0; i < ls.length; i++) ls[i]!();
  };

  /** Creates an empty fault object (IOMMU_FAULT_QUEUE_ALLOC). */
  constructor(sim: Simulator, options: IommufdFaultOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#core = options.core;
    this.#devId = options.devId;
    this.id = options.id;
  }

  /** Groups delivered and not read yet. */
  get deliverable(): number {
    let n = 0;
    for (let i = this.#head; i < this.#deliver.length; i++) {
      if (!this.#deliver[i]!.responded) n++;
    }
    return n;
  }

  /** Groups read and not answered yet (their cookies are live). */
  get awaitingResponse(): number {
    return this.#response.size;
  }

  /** poll(): EPOLLIN while a group waits to be read. */
  get readable(): boolean {
    this.#skipAnswered();
    return this.#head < this.#deliver.length;
  }

  /** The VMM's poll: `listener` runs when the fd becomes readable (after the wakeup latency). */
  onReadable(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * iommufd_fault_iopf_handler(): the domain's iopf_handler, run on the
   * IOPF workqueue. It appends the group to the deliver list, wakes the
   * readers and returns at once; the group's response comes from
   * {@linkcode write} (or from {@linkcode autoResponse}).
   */
  iopfHandler(group: IopfGroup, done: () => void): void {
    if (this.#destroyed) {
      this.#core.pageResponse(group.dev, group, IOMMU_PAGE_RESP_INVALID);
      done();
      return;
    }
    this.#deliver.push(group);
    this.counters.add("iommufd.fault.groups");
    this.counters.add("iommufd.fault.faults", group.faults.length);
    this.#sim.after(this.#costs["iommufd.faultDeliver"], done);
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true;
      this.#sim.after(
        this.#costs["iommufd.faultDeliver"] +
          this.#costs["iommufd.faultWakeup"],
        this.#wake,
      );
    }
  }

  /**
   * read(fd, buf, count): whole groups, oldest first, 40 bytes per fault,
   * as many as fit in `count` bytes; each group read gets its cookie.
   * Returns the bytes (empty when nothing is pending or the first group
   * does not fit).
   *
   * @throws {IopfLabError} ESPIPE when `count` is not a whole multiple of
   *   40 (sizeof(struct iommu_hwpt_pgfault))
   */
  read(count: number): Uint8Array {
    if (
      !Number.isInteger(count) || count < 0 ||
      count % IOMMU_HWPT_PGFAULT_SIZE !== 0
    ) {
      throw new IopfLabError(
        "ESPIPE",
        `Cannot read the fault fd: count ${
          String(count)
        } is not a multiple of ${IOMMU_HWPT_PGFAULT_SIZE} (sizeof(struct iommu_hwpt_pgfault))`,
        "count",
      );
    }
    this.#skipAnswered();
    let bytes = 0;
    let end = this.#head;
    const d = this.#deliver;
    while (end < d.length) {
      const n = d[end]!.faults.length * IOMMU_HWPT_PGFAULT_SIZE;
      if (bytes + n > count) break;
      bytes += n;
      end++;
      while (end < d.length && d[end]!.responded) end++;
    }
    const out = new Uint8Array(bytes);
    const view = new DataView(out.buffer);
    let o = 0;
    for (let i = this.#head; i < end; i++) {
      const g = d[i]!;
      if (g.responded) continue;
      const cookie = this.#allocCookie();
      this.#response.set(cookie, g);
      const devId = this.#devId(g.dev);
      for (const f of g.faults) {
        encodePgfault(view, o, {
          flags: f.flags,
          devId,
          pasid: f.pasid,
          grpid: f.grpid,
          perm: f.perm,
          addr: f.addr,
          length: 0,
          cookie,
        });
        o += IOMMU_HWPT_PGFAULT_SIZE;
      }
      this.counters.add("iommufd.fault.groupsRead");
    }
    this.#head = end;
    this.#compact();
    this.counters.add("iommufd.fault.reads");
    return out;
  }

  /**
   * write(fd, buf, count): the responses in `bytes`, 8 bytes each, in
   * order; each answers its cookie's group (iopf_group_response). Returns
   * the bytes consumed.
   *
   * @throws {IopfLabError} ESPIPE when the length is not a multiple of 8;
   *   EINVAL when the first response has a code other than SUCCESS (0) or
   *   INVALID (1), or a cookie that names no group read and unanswered
   *   (a later bad response ends the write early instead: its bytes and the
   *   rest are not consumed)
   */
  write(bytes: Uint8Array): number {
    if (bytes.byteLength % IOMMU_HWPT_PAGE_RESPONSE_SIZE !== 0) {
      throw new IopfLabError(
        "ESPIPE",
        `Cannot write the fault fd: ${bytes.byteLength} bytes is not a multiple of ${IOMMU_HWPT_PAGE_RESPONSE_SIZE} (sizeof(struct iommu_hwpt_page_response))`,
        "count",
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let done = 0;
    while (done < bytes.byteLength) {
      const r = decodePageResponse(view, done);
      let why: string | undefined;
      if (
        r.code !== IOMMUFD_PAGE_RESP_SUCCESS &&
        r.code !== IOMMUFD_PAGE_RESP_INVALID
      ) {
        why = `code ${r.code} is neither SUCCESS (0) nor INVALID (1)`;
      } else if (!this.#response.has(r.cookie)) {
        why = `cookie ${r.cookie} names no group awaiting a response`;
      }
      if (why !== undefined) {
        this.counters.add("iommufd.fault.badResponses");
        if (done > 0) break;
        throw new IopfLabError(
          "EINVAL",
          `Cannot write the page response at byte ${done}: ${why}`,
          "response",
        );
      }
      const group = this.#response.get(r.cookie)!;
      this.#response.delete(r.cookie);
      this.#freeCookie(r.cookie);
      this.counters.add("iommufd.fault.responses");
      this.#core.pageResponse(
        group.dev,
        group,
        r.code === IOMMUFD_PAGE_RESP_SUCCESS
          ? IOMMU_PAGE_RESP_SUCCESS
          : IOMMU_PAGE_RESP_INVALID,
      );
      done += IOMMU_HWPT_PAGE_RESPONSE_SIZE;
    }
    return done;
  }

  /**
   * iommufd_auto_response_faults(): answers INVALID every group of `dev`
   * still pending here, read or not (a domain replace or detach of the
   * device); their cookies are freed, so a later response naming one is
   * EINVAL. Returns the groups answered.
   */
  autoResponse(dev: IommuDevice): number {
    let n = 0;
    const d = this.#deliver;
    const keep: IopfGroup[] = [];
    for (let i = this.#head; i < d.length; i++) {
      const g = d[i]!;
      if (g.dev === dev && !g.responded) {
        this.#core.pageResponse(g.dev, g, IOMMU_PAGE_RESP_INVALID);
        n++;
      } else if (!g.responded) keep.push(g);
    }
    this.#deliver = keep;
    this.#head = 0;
    for (const [cookie, g] of [...this.#response]) {
      if (g.dev !== dev) continue;
      this.#response.delete(cookie);
      this.#freeCookie(cookie);
      if (!g.responded) {
        this.#core.pageResponse(g.dev, g, IOMMU_PAGE_RESP_INVALID);
      }
      n++;
    }
    this.counters.add("iommufd.fault.autoResponses", n);
    return n;
  }

  /**
   * iommufd_fault_destroy(): the fd closed and the object destroyed; every
   * group still pending is answered INVALID, later groups too.
   */
  destroy(): void {
    this.#destroyed = true;
    const devs = new Set<IommuDevice>();
    for (let i = this.#head; i < this.#deliver.length; i++) {
      devs.add(this.#deliver[i]!.dev);
    }
    for (const g of this.#response.values()) devs.add(g.dev);
    for (const dev of devs) this.autoResponse(dev);
    this.#listeners = [noop];
  }

  #skipAnswered(): void {
    const d = this.#deliver;
    while (this.#head < d.length && d[this.#head]!.responded) this.#head++;
  }

  #compact(): void {
    if (this.#head === this.#deliver.length) {
      this.#deliver = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#deliver.length) {
      this.#deliver = this.#deliver.slice(this.#head);
      this.#head = 0;
    }
  }

  #allocCookie(): number {
    const f = this.#freeCookies;
    if (f.length > 0) return f.shift()!;
    return this.#nextCookie++;
  }

  #freeCookie(cookie: number): void {
    const f = this.#freeCookies;
    let lo = 0, hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (f[mid]! < cookie) lo = mid + 1;
      else hi = mid;
    }
    f.splice(lo, 0, cookie);
  }
}
