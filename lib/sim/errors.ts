/**
 * Error classes with errno-like codes, shared by every layer.
 *
 * @module
 */

/** The errno-like codes the model uses, named after the kernel's. */
export type ErrorCode =
  | "EINVAL"
  | "EEXIST"
  | "ENOMEM"
  | "EFAULT"
  | "ENOENT"
  | "EBUSY"
  | "ENODEV"
  | "EPERM"
  | "ENOSPC"
  | "E2BIG"
  | "EIO"
  | "ETIMEDOUT"
  | "ESPIPE"
  | "EOPNOTSUPP";

/**
 * The base error of iopf-lab: a stable errno-like `code` and a message that
 * says what could not be done and why, ending in the code in parentheses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IopfLabError } from "./errors.ts";
 * const e = new IopfLabError("EEXIST", "Cannot map IOVA 0x1000: already mapped");
 * assert(e.message.endsWith("(EEXIST)"));
 * ```
 */
export class IopfLabError extends Error {
  /** The errno-like code, stable across versions. */
  readonly code: ErrorCode;
  /** Optional location of the bad input (a field path, a file line). */
  readonly where: string | undefined;

  /**
   * Creates an error; the message gets " (CODE)" appended.
   *
   * @param code errno-like code
   * @param message what could not be done and why, without the code
   * @param where optional field path or file location
   */
  constructor(code: ErrorCode, message: string, where?: string) {
    super(`${message} (${code})`);
    this.name = "IopfLabError";
    this.code = code;
    this.where = where;
  }
}

/** Formats an address or size as lower-case hex with a 0x prefix (any other number as it is). */
export function hex(n: number): string {
  // A value that is not an address (NaN, Infinity, a fraction, a negative
  // number) is shown as it is, so a message never says "0xNaN".
  return Number.isSafeInteger(n) && n >= 0 ? "0x" + n.toString(16) : String(n);
}
