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

const HASH = /^[0-9a-f]{40}$/;

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

/**
 * The commit HEAD points at in the git checkout holding `dir` (searching
 * upwards), or undefined when there is none or it cannot be read.
 */
export function gitCommit(dir: string): string | undefined {
  let d = dir.replace(/\/+$/, "");
  for (;;) {
    const gitDir = resolveGitDir(`${d}/.git`);
    if (gitDir !== undefined) return headCommit(gitDir);
    const up = d.slice(0, d.lastIndexOf("/"));
    if (up === d || d === "") return undefined;
    d = up;
  }
}

/** The git directory `.git` stands for: itself, or where a `gitdir:` file points. */
function resolveGitDir(dotGit: string): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dotGit);
  } catch {
    return undefined;
  }
  if (info.isDirectory) return dotGit;
  const text = readText(dotGit);
  const m = text === undefined ? null : /^gitdir:\s*(.+)$/m.exec(text);
  if (!m) return undefined;
  const target = m[1]!.trim();
  return target.startsWith("/")
    ? target
    : `${dotGit.slice(0, dotGit.lastIndexOf("/"))}/${target}`;
}

function headCommit(gitDir: string): string | undefined {
  const head = readText(`${gitDir}/HEAD`)?.trim();
  if (head === undefined) return undefined;
  if (HASH.test(head)) return head;
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
  if (ref === undefined) return undefined;
  const common = readText(`${gitDir}/commondir`)?.trim();
  const commonDir = common === undefined
    ? gitDir
    : common.startsWith("/")
    ? common
    : `${gitDir}/${common}`;
  for (const dir of [gitDir, commonDir]) {
    const loose = readText(`${dir}/${ref}`)?.trim();
    if (loose !== undefined && HASH.test(loose)) return loose;
  }
  const packed = readText(`${commonDir}/packed-refs`) ?? "";
  for (const line of packed.split("\n")) {
    const [hash, name] = line.trim().split(" ");
    if (name === ref && hash !== undefined && HASH.test(hash)) return hash;
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
