import assert from "node:assert/strict";
import { show, table } from "../../lib/notebook/mod.ts";

Deno.test("show: outside a notebook, prints each item as text", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    await show("hello", table([{ a: 1 }]));
  } finally {
    console.log = log;
  }
  assert.deepEqual(printed, ["hello", "a\n-\n1\n"]);
});
