/**
 * The commit a git checkout is at, read from its `.git` without running git
 * (the report's stamp and the results database's model version use it; the
 * report task has no --allow-run).
 *
 * @module
 */

const HASH = /^[0-9a-f]{40}$/;

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
