/**
 * The package as another project uses it: the files `deno publish` ships
 * (deno.json "publish.include") copied to a temporary directory without
 * node_modules, and a separate project beside it whose own deno.json maps
 * only the package's name to it (no copy of the package's import map or
 * compilerOptions). The project type-checks, runs a small simulation
 * through the root entry and a layer's entry, and prints a result the test
 * checks; another type-checks an import of the figure and report entries
 * (its compilerOptions add "dom": Observable Plot's types name DOM types).
 * `deno publish --dry-run` passes with no warning.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseScenario, runScenario } from "../lib/mod.ts";
import { formatSize } from "../lib/sim/mod.ts";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
) as {
  name: string;
  license?: string;
  exports: Record<string, string>;
  publish: { include: string[] };
};

function copy(from: string, to: string): void {
  if (Deno.statSync(from).isDirectory) {
    Deno.mkdirSync(to, { recursive: true });
    for (const e of Deno.readDirSync(from)) {
      copy(join(from, e.name), join(to, e.name));
    }
  } else Deno.copyFileSync(from, to);
}

async function deno(args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

const SCENARIO = {
  vm: { memory: "1GiB" },
  dma: { mode: "iopf", premapPages: 1 },
  workload: { kind: "accelerator", messageSize: "1MiB", messages: 4 },
};

const MAIN = `
import { parseScenario, runScenario, metricsToCsv } from "${config.name}";
import { formatSize } from "${config.name}/sim";
const metrics = runScenario(parseScenario(${JSON.stringify(SCENARIO)}));
const faults: number = metrics.faults.total;
console.log(JSON.stringify({
  faults,
  pinnedPeak: formatSize(metrics.pinnedPagesPeak * 4096),
  csvHeader: metricsToCsv([metrics]).split("\\n")[0]!.split(",").slice(0, 2),
}));
`;

const FIGURES = `
import { runReport } from "${config.name}/report";
import * as plot from "${config.name}/plot";
console.log(typeof runReport, Object.keys(plot).length > 0);
`;

Deno.test("a separate project imports the package with its own config only", async () => {
  const tmp = Deno.makeTempDirSync({ prefix: "iopf-pkg-" });
  try {
    const pkg = join(tmp, "iopf-lab");
    Deno.mkdirSync(pkg);
    for (const entry of config.publish.include) {
      const name = entry.replace(/\/$/, "");
      copy(new URL(name, ROOT).pathname, join(pkg, name));
    }
    assert.ok(!existsSync(join(pkg, "node_modules")));
    const user = join(tmp, "user");
    Deno.mkdirSync(user);
    // The project maps the package's entries as it would name a JSR
    // package: its name, and the name with each entry's path.
    const imports: Record<string, string> = {};
    for (const [key, target] of Object.entries(config.exports)) {
      const name = key === "." ? config.name : `${config.name}${key.slice(1)}`;
      imports[name] = new URL(target, `file://${pkg}/`).href;
    }
    // "dom" only for the figures: Observable Plot's types name DOM types.
    Deno.writeTextFileSync(
      join(user, "deno.json"),
      JSON.stringify({ imports }, null, 2),
    );
    Deno.mkdirSync(join(user, "figures"));
    Deno.writeTextFileSync(
      join(user, "figures", "deno.json"),
      JSON.stringify(
        { imports, compilerOptions: { lib: ["deno.window", "dom"] } },
        null,
        2,
      ),
    );
    Deno.writeTextFileSync(join(user, "main.ts"), MAIN);
    Deno.writeTextFileSync(join(user, "figures", "figures.ts"), FIGURES);

    const run = await deno(["run", "--check", "--allow-read", "main.ts"], user);
    assert.equal(run.code, 0, run.stderr);
    const got = JSON.parse(run.stdout) as {
      faults: number;
      pinnedPeak: string;
      csvHeader: string[];
    };
    // The same run as in this project.
    const here = runScenario(parseScenario(SCENARIO));
    assert.ok(here.faults.total > 0);
    assert.deepEqual(got, {
      faults: here.faults.total,
      pinnedPeak: formatSize(here.pinnedPagesPeak * 4096),
      csvHeader: ["name", "seed"],
    });

    const check = await deno(["check", "figures.ts"], join(user, "figures"));
    assert.equal(check.code, 0, check.stderr);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("deno publish --dry-run passes without a warning", async () => {
  assert.equal(config.license, "MIT");
  assert.ok(Deno.statSync(new URL("LICENSE", ROOT)).isFile);
  // --allow-dirty: the check is of the files, committed or not.
  const out = await deno(
    ["publish", "--dry-run", "--allow-dirty"],
    new URL(".", ROOT).pathname,
  );
  const text = out.stdout + out.stderr;
  assert.equal(out.code, 0, text);
  assert.match(text, /Dry run complete/);
  assert.doesNotMatch(text, /warning\[|error\[/);
  // The package ships the library and the data it imports, not the tests.
  assert.match(text, /lib\/experiment\/_worker\.ts/);
  assert.match(text, /data\/costs\/default\.json/);
  assert.doesNotMatch(text, /\/tests\//);
});
