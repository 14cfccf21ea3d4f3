/**
 * Writing to the process's standard streams, shared by the commands.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes all of `text` to `file` (a short write is continued). When the
 * reader has gone (a closed pipe, as in `deno task sim big.json | head`),
 * the process ends quietly with status 0, as tools like ripgrep do: the
 * reader asked for no more output, and that is not an error of the run.
 */
export function writeAll(
  file: { writeSync(p: Uint8Array): number },
  text: string,
): void {
  const bytes = encoder.encode(text);
  let off = 0;
  try {
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) Deno.exit(0);
    throw e;
  }
}
