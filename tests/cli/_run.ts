/**
 * `deno task sim` run in-process for the CLI tests, its output captured.
 *
 * @module
 */
import { main, type SimIo } from "../../cli/sim.ts";

/** What a captured run printed and returned. */
export interface RunOut {
  /** The exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** Runs `deno task sim args` with no progress bar; `io` adds to the captured I/O (env, say). */
export async function runSim(
  args: readonly string[],
  io: Omit<Partial<SimIo>, "stdout" | "stderr"> = {},
): Promise<RunOut> {
  let stdout = "", stderr = "";
  const code = await main([...args], {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    progress: false,
    ...io,
  });
  return { code, stdout, stderr };
}
