import assert from "node:assert/strict";
import {
  gitCommit,
  reportStamp,
  stampText,
  VERSION,
} from "../../lib/report/mod.ts";
import config from "../../deno.json" with { type: "json" };

const ROOT = new URL("../../", import.meta.url);

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("reportStamp: the version of deno.json and the commit git names", async () => {
  const head = await git("rev-parse", "HEAD");
  const prev = Deno.env.get("IOPF_LAB_COMMIT");
  Deno.env.delete("IOPF_LAB_COMMIT");
  try {
    const stamp = reportStamp();
    assert.equal(stamp.version, config.version);
    assert.equal(VERSION, config.version);
    assert.equal(stamp.commit, head);
    assert.equal(stamp.commitSource, ".git");
    assert.equal(
      stampText(stamp),
      `iopf-lab ${config.version}, commit ${head}`,
    );
  } finally {
    if (prev !== undefined) Deno.env.set("IOPF_LAB_COMMIT", prev);
  }
});

Deno.test("gitCommit reads worktrees, loose and packed refs, a detached HEAD", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iopf-stamp-" });
  try {
    const a = "a".repeat(40);
    const b = "b".repeat(40);
    const c = "c".repeat(40);
    // A plain repository on a branch with a loose ref.
    await Deno.mkdir(`${dir}/repo/.git/refs/heads`, { recursive: true });
    await Deno.mkdir(`${dir}/repo/sub/deeper`, { recursive: true });
    await Deno.writeTextFile(`${dir}/repo/.git/HEAD`, "ref: refs/heads/main\n");
    await Deno.writeTextFile(`${dir}/repo/.git/refs/heads/main`, `${a}\n`);
    assert.equal(gitCommit(`${dir}/repo/sub/deeper`), a);
    // A packed ref.
    await Deno.writeTextFile(`${dir}/repo/.git/HEAD`, "ref: refs/heads/old\n");
    await Deno.writeTextFile(
      `${dir}/repo/.git/packed-refs`,
      `# pack-refs with: peeled fully-peeled sorted\n${b} refs/heads/old\n`,
    );
    assert.equal(gitCommit(`${dir}/repo`), b);
    // A worktree: .git is a file, refs live in the common directory.
    await Deno.mkdir(`${dir}/repo/.git/worktrees/w`, { recursive: true });
    await Deno.mkdir(`${dir}/w`);
    await Deno.writeTextFile(
      `${dir}/w/.git`,
      `gitdir: ${dir}/repo/.git/worktrees/w\n`,
    );
    await Deno.writeTextFile(
      `${dir}/repo/.git/worktrees/w/HEAD`,
      "ref: refs/heads/main\n",
    );
    await Deno.writeTextFile(
      `${dir}/repo/.git/worktrees/w/commondir`,
      "../..\n",
    );
    assert.equal(gitCommit(`${dir}/w`), a);
    // Detached HEAD.
    await Deno.writeTextFile(`${dir}/repo/.git/worktrees/w/HEAD`, `${c}\n`);
    assert.equal(gitCommit(`${dir}/w`), c);
    // No repository at all.
    await Deno.mkdir(`${dir}/none`);
    assert.equal(
      gitCommit(`${dir}/none`.replace(dir, "/nonexistent-dir")),
      undefined,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportStamp: IOPF_LAB_COMMIT names the commit outside a checkout, and must be a hash", () => {
  const prev = Deno.env.get("IOPF_LAB_COMMIT");
  try {
    Deno.env.set("IOPF_LAB_COMMIT", "D".repeat(40));
    const s = reportStamp(new URL("https://example.com/iopf-lab/"));
    assert.equal(s.commit, "d".repeat(40));
    assert.equal(s.commitSource, "IOPF_LAB_COMMIT");
    Deno.env.set("IOPF_LAB_COMMIT", "main");
    assert.throws(
      () => reportStamp(),
      /IOPF_LAB_COMMIT="main" is not a 40-hex-digit commit hash/,
    );
    Deno.env.delete("IOPF_LAB_COMMIT");
    const remote = reportStamp(new URL("https://example.com/iopf-lab/"));
    assert.equal(remote.commit, undefined);
    assert.match(stampText(remote), /commit unknown/);
  } finally {
    if (prev === undefined) Deno.env.delete("IOPF_LAB_COMMIT");
    else Deno.env.set("IOPF_LAB_COMMIT", prev);
  }
});
