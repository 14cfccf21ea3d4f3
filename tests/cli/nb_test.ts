import assert from "node:assert/strict";

const NB = new URL("../../cli/nb.ts", import.meta.url).pathname;

async function nb(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", NB, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("deno task nb --help prints usage with the options and runs nothing", async () => {
  for (const flag of ["--help", "-h"]) {
    const r = await nb(flag);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: deno task nb /);
    for (const opt of ["--out DIR", "--strip", "--help", "Examples:"]) {
      assert.ok(r.stdout.includes(opt), `help lacks ${opt}`);
    }
    assert.equal(r.stderr, "", "it ran something");
  }
});

Deno.test("deno task nb: bad arguments exit 2 saying why", async () => {
  const cases: [string[], RegExp][] = [
    [["--out"], /--out needs a directory/],
    [["--bogus"], /unknown option --bogus/],
    [["notes.txt"], /notes\.txt: not a notebook/],
    [["missing.ipynb"], /missing\.ipynb: no such notebook/],
    [["--strip", "--out", "x"], /--strip and --out/],
  ];
  for (const [args, want] of cases) {
    const r = await nb(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
});
