/**
 * What made a report: the package version (deno.json) and the git commit of
 * the checkout, read from `.git` without running git (worktrees and packed
 * refs included), so `deno task report` needs no `--allow-run`. Outside a
 * checkout (an installed package) `IOPF_LAB_COMMIT` can name the commit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportStamp, stampText } from "./stamp.ts";
 * const stamp = reportStamp();
 * assert.match(stamp.version, /^\d+\.\d+\.\d+/);
 * assert(stampText(stamp).startsWith(`iopf-lab ${stamp.version}`));
 * ```
 *
 * @module
 */
import config from "../../deno.json" with { type: "json" };
import { gitCommit } from "../sim/git.ts";

const HASH = /^[0-9a-f]{40}$/;

export { gitCommit };

/** The version and commit a report was made with. */
export interface ReportStamp {
  /** The package version from deno.json ("0.1.0"). */
  readonly version: string;
  /** The 40-hex-digit commit of the checkout, or undefined when not known. */
  readonly commit: string | undefined;
  /** Where the commit came from: ".git", the IOPF_LAB_COMMIT variable, or "unknown". */
  readonly commitSource: ".git" | "IOPF_LAB_COMMIT" | "unknown";
}

/** The package version in deno.json. */
export const VERSION: string = config.version;

/**
 * The stamp: version, and the commit from `IOPF_LAB_COMMIT` if set (it must
 * be 40 hex digits), else from the `.git` of the checkout holding `from`
 * (this package's own by default).
 *
 * @throws {Error} when IOPF_LAB_COMMIT is set to something that is not a commit hash
 */
export function reportStamp(
  from: URL = new URL("../../", import.meta.url),
): ReportStamp {
  let env: string | undefined;
  try {
    env = Deno.env.get("IOPF_LAB_COMMIT");
  } catch {
    env = undefined; // no --allow-env: read .git
  }
  if (env !== undefined && env !== "") {
    const commit = env.trim().toLowerCase();
    if (!HASH.test(commit)) {
      throw new Error(
        `Cannot stamp the report: IOPF_LAB_COMMIT=${
          JSON.stringify(env)
        } is not a 40-hex-digit commit hash`,
      );
    }
    return { version: VERSION, commit, commitSource: "IOPF_LAB_COMMIT" };
  }
  const commit = from.protocol === "file:"
    ? gitCommit(decodeURIComponent(from.pathname))
    : undefined;
  return {
    version: VERSION,
    commit,
    commitSource: commit === undefined ? "unknown" : ".git",
  };
}

/** One line for the page: "iopf-lab 0.1.0, commit 0123abc...". */
export function stampText(stamp: ReportStamp): string {
  return `iopf-lab ${stamp.version}, commit ${
    stamp.commit ?? "unknown (not a git checkout; set IOPF_LAB_COMMIT)"
  }`;
}
