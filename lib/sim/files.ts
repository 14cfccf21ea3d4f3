/**
 * Writing output files whole: {@linkcode writeFileAtomic} writes through a
 * temporary file in the same directory renamed into place, so a reader
 * never sees a partial file and an interrupted run leaves none. The CLI's
 * CSV and every file of the report go through it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./files.ts";
 * const dir = Deno.makeTempDirSync();
 * writeFileAtomic(`${dir}/a.csv`, "x\n1\n");
 * assert.equal(Deno.readTextFileSync(`${dir}/a.csv`), "x\n1\n");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.csv"]);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Writes `data` to `path` through a temporary file renamed into place. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}`);
  try {
    if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
    else Deno.writeFileSync(tmp, data);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw e;
  }
}
