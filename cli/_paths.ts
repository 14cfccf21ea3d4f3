/**
 * Outputs never overwrite inputs: {@linkcode checkOutputFile} refuses an
 * output path that is (through any spelling, symlink or hard link) a file
 * the run reads; outputs are then written with `writeFileAtomic`
 * (lib/sim/files.ts, re-exported here), so an interrupted run leaves no half
 * file.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { IopfLabError } from "../lib/sim/errors.ts";

/** The identity of a file: its real path and, where the OS gives them, device and inode. */
interface FileId {
  readonly real: string;
  readonly dev: number | null;
  readonly ino: number | null;
}

function fileId(path: string): FileId | undefined {
  try {
    const info = Deno.statSync(path);
    return { real: Deno.realPathSync(path), dev: info.dev, ino: info.ino };
  } catch {
    return undefined;
  }
}

/** Whether `a` and `b` name the same existing file (real paths or dev+inode). */
export function sameFile(a: string, b: string): boolean {
  const x = fileId(a), y = fileId(b);
  if (!x || !y) return false;
  if (x.real === y.real) return true;
  return x.ino !== null && x.dev !== null && x.ino === y.ino && x.dev === y.dev;
}

/**
 * Refuses (EINVAL naming `flag`) an output file `target` that is one of
 * `inputs`, that is a directory, or whose directory does not exist.
 */
export function checkOutputFile(
  target: string,
  inputs: readonly string[],
  flag: string,
): void {
  const dir = dirname(resolve(target));
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch {
    throw new IopfLabError(
      "EINVAL",
      `${flag} ${target}: the directory ${dir} does not exist`,
      flag,
    );
  }
  if (!info.isDirectory) {
    throw new IopfLabError(
      "EINVAL",
      `${flag} ${target}: ${dir} is not a directory`,
      flag,
    );
  }
  const own = fileId(target);
  if (own && Deno.statSync(target).isDirectory) {
    throw new IopfLabError(
      "EINVAL",
      `${flag} ${target}: is a directory`,
      flag,
    );
  }
  for (const input of inputs) {
    if (sameFile(target, input)) {
      throw new IopfLabError(
        "EINVAL",
        `${flag} ${target}: is ${
          resolve(input) === resolve(target) ? "" : `the same file as `
        }${input}, which this run reads; refusing to overwrite an input`,
        flag,
      );
    }
  }
}

/**
 * Refuses (EINVAL naming `flag`) an output directory that is an existing
 * file, or that holds one of `inputs` (its files could be overwritten).
 */
export function checkOutputDir(
  target: string,
  inputs: readonly string[],
  flag: string,
): void {
  const id = fileId(target);
  if (id && !Deno.statSync(target).isDirectory) {
    throw new IopfLabError(
      "EINVAL",
      `${flag} ${target}: is a file, not a directory`,
      flag,
    );
  }
  if (!id) return; // created by the run
  for (const input of inputs) {
    const inDir = fileId(dirname(resolve(input)));
    if (inDir && inDir.real === id.real) {
      throw new IopfLabError(
        "EINVAL",
        `${flag} ${target}: holds ${input}, which this run reads; choose another directory`,
        flag,
      );
    }
  }
}

export { writeFileAtomic } from "../lib/sim/files.ts";
