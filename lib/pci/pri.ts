/**
 * The PCIe Page Request Interface capability registers (PCIe base spec,
 * "Page Request Extended Capability"): Control, Status, Outstanding Page
 * Request Capacity and Allocation.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";

/** PRI Control: Enable. */
export const PRI_CTRL_ENABLE = 0x1;
/** PRI Control: Reset (effective only while Enable is clear). */
export const PRI_CTRL_RESET = 0x2;
/** PRI Status: Response Failure (RW1C). */
export const PRI_STATUS_RF = 0x1;
/** PRI Status: Unexpected PRG Index (RW1C). */
export const PRI_STATUS_UPRGI = 0x2;
/** PRI Status: Stopped (RO). */
export const PRI_STATUS_STOPPED = 0x100;
/** PRI Status: PRG Response PASID Required (RO). */
export const PRI_STATUS_PASID_REQUIRED = 0x8000;

/** Options of a {@linkcode PriCapability}. */
export interface PriCapabilityOptions {
  /** Outstanding Page Request Capacity (RO). Default 256. */
  capacity?: number;
  /** PRG Response PASID Required: responses to PASID requests must carry it. Default true. */
  pasidRequired?: boolean;
}

/**
 * The PRI capability register block of a function.
 *
 * - Control: Enable (0x1), Reset (0x2). Writing Reset with Enable clear
 *   drops the outstanding request state (the device's `onReset` hook).
 * - Status: Response Failure (0x1) and Unexpected PRG Index (0x2) are set by
 *   the function and cleared by writing 1; Stopped (0x100) reads 1 while
 *   Enable is clear and no request is outstanding; PRG Response PASID
 *   Required (0x8000) is fixed.
 * - Allocation may only be written while PRI is disabled and Stopped; the
 *   function keeps min(capacity, wanted).
 *
 * While Response Failure is set the function issues no page requests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PRI_CTRL_ENABLE, PRI_STATUS_STOPPED, PriCapability } from "./pri.ts";
 * const pri = new PriCapability({ capacity: 32 });
 * assert(pri.setAllocation(100) === 32);
 * pri.writeControl(PRI_CTRL_ENABLE);
 * assert((pri.status & PRI_STATUS_STOPPED) === 0 && pri.canIssue);
 * ```
 */
export class PriCapability {
  /** Outstanding Page Request Capacity. */
  readonly capacity: number;
  /** PRG Response PASID Required. */
  readonly pasidRequired: boolean;
  /** Page requests outstanding (maintained by the function). */
  outstanding = 0;
  /** Called when Reset is written with Enable clear. */
  onReset: (() => void) | undefined = undefined;
  #enable = false;
  #rf = false;
  #uprgi = false;
  #allocation = 0;

  /** Creates a disabled, stopped capability with Allocation 0. */
  constructor(options: PriCapabilityOptions = {}) {
    const capacity = options.capacity ?? 256;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 2 ** 32 - 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a PRI capability: capacity must be a whole number >= 1, got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.pasidRequired = options.pasidRequired ?? true;
  }

  /** The Control register. */
  get control(): number {
    return this.#enable ? PRI_CTRL_ENABLE : 0;
  }

  /** Writes the Control register. */
  writeControl(value: number): void {
    const enable = (value & PRI_CTRL_ENABLE) !== 0;
    if (!enable && (value & PRI_CTRL_RESET) !== 0) {
      this.#enable = false;
      this.outstanding = 0;
      this.onReset?.();
      return;
    }
    this.#enable = enable;
  }

  /** The Status register. */
  get status(): number {
    return (this.#rf ? PRI_STATUS_RF : 0) |
      (this.#uprgi ? PRI_STATUS_UPRGI : 0) |
      (this.stopped ? PRI_STATUS_STOPPED : 0) |
      (this.pasidRequired ? PRI_STATUS_PASID_REQUIRED : 0);
  }

  /** Writes the Status register: 1 clears Response Failure / Unexpected PRG Index. */
  writeStatus(value: number): void {
    if (value & PRI_STATUS_RF) this.#rf = false;
    if (value & PRI_STATUS_UPRGI) this.#uprgi = false;
  }

  /** Enable is set. */
  get enabled(): boolean {
    return this.#enable;
  }

  /** Stopped: Enable clear and nothing outstanding. */
  get stopped(): boolean {
    return !this.#enable && this.outstanding === 0;
  }

  /** Outstanding Page Request Allocation. */
  get allocation(): number {
    return this.#allocation;
  }

  /**
   * Writes the Allocation register; the function keeps min(capacity,
   * wanted), which is returned.
   *
   * @throws {IopfLabError} EBUSY unless PRI is disabled and Stopped; EINVAL for a bad value
   */
  setAllocation(wanted: number): number {
    if (!Number.isInteger(wanted) || wanted < 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot set the PRI allocation to ${wanted}: not a whole number >= 0`,
      );
    }
    if (this.#enable || !this.stopped) {
      throw new IopfLabError(
        "EBUSY",
        "Cannot set the PRI allocation: PRI must be disabled and stopped",
      );
    }
    this.#allocation = Math.min(this.capacity, wanted);
    return this.#allocation;
  }

  /** The function may issue page requests: enabled, no Response Failure, some allocation. */
  get canIssue(): boolean {
    return this.#enable && !this.#rf && this.#allocation > 0;
  }

  /** Response Failure is set. */
  get responseFailure(): boolean {
    return this.#rf;
  }

  /** The function received Response Failure: sets RF (PRI stops). */
  markResponseFailure(): void {
    this.#rf = true;
  }

  /** The function received a response for an unknown PRG index: sets UPRGI. */
  markUnexpectedIndex(): void {
    this.#uprgi = true;
  }
}
