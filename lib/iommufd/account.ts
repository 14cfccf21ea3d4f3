/**
 * iommufd's page accounting (drivers/iommu/iommufd/pages.c,
 * do_update_pinned, and IOMMU_OPTION_RLIMIT_MODE in main.c): where the
 * pages an IOAS pins are charged and checked against RLIMIT_MEMLOCK.
 *
 * - `"user"` (IOPT_PAGES_ACCOUNT_USER, iommufd's default, the io_uring
 *   method): the pinning user's `user_struct->locked_vm`, one counter for
 *   every process (every VM) of the user, against the task's
 *   RLIMIT_MEMLOCK (incr_user_locked_vm); the mm's locked_vm is not
 *   charged.
 * - `"mm"` (IOPT_PAGES_ACCOUNT_MM, what the VFIO compat mode and
 *   IOMMU_OPTION_RLIMIT_MODE = 1 select): the mm's locked_vm, as type1
 *   does (__account_locked_vm).
 * - `"none"` (IOPT_PAGES_ACCOUNT_NONE, a task with CAP_IPC_LOCK): nothing
 *   charged, no limit.
 *
 * @module
 */
import type { MmStruct } from "../mm/mm_struct.ts";
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";

/** Where an iommufd file charges its pinned pages (see the module doc). */
export type IommufdAccountMode = "user" | "mm" | "none";

/** The account modes, for checks and docs. */
export const IOMMUFD_ACCOUNT_MODES: readonly IommufdAccountMode[] = [
  "user",
  "mm",
  "none",
];

/**
 * A user's `user_struct->locked_vm` (4 KiB pages): shared by every iommufd
 * file the user's processes open in `"user"` mode.
 */
export class IommufdUser {
  /** The user's name (for error messages). */
  readonly name: string;
  #locked = 0;
  #peak = 0;

  /** A user with nothing charged. */
  constructor(name = "user") {
    this.name = name;
  }

  /** Pages charged now. */
  get lockedPages(): number {
    return this.#locked;
  }

  /** The most pages charged at once. */
  get peakLockedPages(): number {
    return this.#peak;
  }

  /**
   * incr_user_locked_vm / decr_user_locked_vm: charges (`inc`) or
   * uncharges `npages`; a charge that would exceed `limitPages` is ENOMEM
   * and charges nothing.
   */
  charge(npages: number, inc: boolean, limitPages: number): void {
    if (inc) {
      if (this.#locked + npages > limitPages) {
        throw new IopfLabError(
          "ENOMEM",
          `Cannot charge ${npages} pages to ${this.name}: locked_vm ${this.#locked} + ${npages} exceeds RLIMIT_MEMLOCK of ${limitPages} pages`,
        );
      }
      this.#locked += npages;
      if (this.#locked > this.#peak) this.#peak = this.#locked;
      return;
    }
    if (npages > this.#locked) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot uncharge ${npages} pages from ${this.name}: only ${this.#locked} charged`,
      );
    }
    this.#locked -= npages;
  }
}

/** The pinned-page account of one iommufd file: its mode, the mm and the user. */
export class IommufdAccount {
  /** The mode. */
  readonly mode: IommufdAccountMode;
  /** The user charged in `"user"` mode. */
  readonly user: IommufdUser;
  readonly #mm: MmStruct;

  /** The account of a file of `mm`'s process, charged as `mode`. */
  constructor(mm: MmStruct, mode: IommufdAccountMode, user: IommufdUser) {
    if (!IOMMUFD_ACCOUNT_MODES.includes(mode)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot open an iommufd file: account mode ${
          String(mode)
        } is not one of ${IOMMUFD_ACCOUNT_MODES.join(", ")}`,
        "accountMode",
      );
    }
    this.#mm = mm;
    this.mode = mode;
    this.user = user;
  }

  /** RLIMIT_MEMLOCK of the task in 4 KiB pages (Infinity: none). */
  get limitPages(): number {
    const l = this.#mm.memlockLimit;
    return l === Infinity ? Infinity : Math.floor(l / PAGE_SIZE);
  }

  /** Pages the limit is checked against now (the counter the mode charges; 0 for `"none"`). */
  get chargedPages(): number {
    if (this.mode === "user") return this.user.lockedPages;
    return this.mode === "mm" ? this.#mm.lockedVm : 0;
  }

  /** Pages that may still be charged (Infinity for `"none"`). */
  get headroom(): number {
    return this.mode === "none"
      ? Infinity
      : this.limitPages - this.chargedPages;
  }

  /** do_update_pinned(): charges or uncharges `npages`; ENOMEM over the limit (nothing charged). */
  update(npages: number, inc: boolean): void {
    switch (this.mode) {
      case "user":
        this.user.charge(npages, inc, this.limitPages);
        return;
      case "mm":
        this.#mm.accountLockedVm(npages, inc);
        return;
      case "none":
        return;
    }
  }
}
