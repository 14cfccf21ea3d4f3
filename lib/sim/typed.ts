/**
 * Growing typed arrays: the layers keep their state in typed arrays indexed
 * by slot and double them as slots are added.
 *
 * @module
 */

/** The typed arrays {@linkcode grown} copies. */
export type GrowableArray =
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/**
 * A new array of the same type as `a` with `length` elements (at least
 * `a.length`): `a`'s values first, zeros after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grown } from "./typed.ts";
 * const b = grown(new Uint16Array([7, 9]), 4);
 * assert.deepEqual([...b], [7, 9, 0, 0]);
 * assert.ok(b instanceof Uint16Array);
 * ```
 */
export function grown<T extends GrowableArray>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}
