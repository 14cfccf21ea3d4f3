/**
 * Writing to the process's standard streams, shared by the commands.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Writes all of `text` to `file` (a short write is continued). */
export function writeAll(
  file: { writeSync(p: Uint8Array): number },
  text: string,
): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}
