/**
 * docs/SHARDS.md names only what exists, and its Slurm array script and
 * Kubernetes Indexed Job command run as written: each is executed once per
 * shard with the variables Slurm or the Job controller would set, and the
 * shards merge into what one run gives.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { main as merge } from "../../cli/merge.ts";
import { main as sim } from "../../cli/sim.ts";
import { writeScenario } from "../cli/_shard_scenario.ts";
import { knownNames, unknownNames } from "./_doc_names.ts";

const root = new URL("../..", import.meta.url).pathname;
const doc = Deno.readTextFileSync(`${root}docs/SHARDS.md`);

Deno.test("docs: every name SHARDS.md gives in backticks exists", async () => {
  const bad = unknownNames(doc, await knownNames(root));
  assert.deepEqual(
    bad.map((b) => `line ${b.line}: \`${b.text}\`: ${b.why}`),
    [],
  );
});

/** The first fenced block of `lang` after the heading `heading`. */
function block(heading: string, lang: string): string {
  const at = doc.indexOf(`\n### ${heading}\n`);
  assert.ok(at >= 0, `no heading ${heading}`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(doc.slice(at));
  assert.ok(m, `no ${lang} block under ${heading}`);
  return m[1]!;
}

async function sh(
  shell: string,
  args: string[],
  env: Record<string, string>,
): Promise<void> {
  const o = await new Deno.Command(shell, {
    args,
    cwd: root,
    env: {
      ...env,
      NO_COLOR: "1",
      PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
}

async function oneRun(file: string): Promise<string> {
  let out = "";
  const code = await sim([file, "--json", "--workers", "0"], {
    stdout: (t) => void (out += t),
    stderr: () => {},
    progress: false,
  });
  assert.equal(code, 0);
  return out;
}

function merged(dir: string): string {
  let out = "", err = "";
  const code = merge([dir, "--json"], {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
  });
  assert.equal(code, 0, err);
  return out;
}

Deno.test("docs: the Slurm array script of SHARDS.md runs its shards", async () => {
  const script = block("A Slurm job array", "bash");
  assert.match(script, /^#SBATCH --array=1-\d+$/m);
  const dir = Deno.makeTempDirSync({ prefix: "iopf-slurm-" });
  try {
    const file = writeScenario(dir);
    Deno.writeTextFileSync(`${dir}/job.sbatch`, script);
    for (const id of ["1", "2"]) {
      await sh("bash", [`${dir}/job.sbatch`], {
        SLURM_ARRAY_TASK_ID: id,
        SLURM_ARRAY_TASK_MIN: "1",
        SLURM_ARRAY_TASK_COUNT: "2",
        IOPF_LAB: root,
        SCENARIO: file,
        OUT: `${dir}/shards`,
      });
    }
    assert.equal(merged(`${dir}/shards`), await oneRun(file));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("docs: the Kubernetes Indexed Job of SHARDS.md runs its shards", async () => {
  const yaml = block("A Kubernetes Indexed Job", "yaml");
  assert.match(yaml, /^\s*completionMode: Indexed$/m);
  const completions = /^\s*completions: (\d+)$/m.exec(yaml)?.[1];
  const shards = /- name: SHARDS\n\s*value: "(\d+)"/.exec(yaml)?.[1];
  assert.ok(
    completions !== undefined && completions === shards,
    "SHARDS equals completions",
  );
  const command = /command:\s*\[\s*"sh",\s*"-c",\s*'([^']+)',?\s*\]/.exec(yaml)
    ?.[1];
  assert.ok(command, "the container's command");
  const dir = Deno.makeTempDirSync({ prefix: "iopf-k8s-" });
  try {
    const file = writeScenario(dir);
    for (const index of ["0", "1"]) {
      await sh("sh", ["-c", command], {
        JOB_COMPLETION_INDEX: index,
        SHARDS: "2",
        SCENARIO: file,
        OUT: `${dir}/shards`,
      });
    }
    assert.equal(merged(`${dir}/shards`), await oneRun(file));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
