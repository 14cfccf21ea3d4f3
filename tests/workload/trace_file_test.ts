import assert from "node:assert/strict";
import { loadTrace, parseTrace } from "../../lib/workload/trace_file.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

const HEADER = "time_ns,stream,op,iova,size";

Deno.test("parseTrace reads every column form", () => {
  const text = [
    "size, iova ,OP,stream,time_ns", // any order, spaces, any case
    "4096,0x1000,r,0,0",
    "4KiB,8192,W,3,1.5us",
    "",
    "64,0x2000,read,3,2000",
    "1MiB,0x100000,write,0,10",
  ].join("\r\n");
  assert.deepEqual(parseTrace(text, "t.csv"), [
    { timeNs: 0, stream: 0, write: false, iova: 0x1000, size: 4096 },
    { timeNs: 1500, stream: 3, write: true, iova: 8192, size: 4096 },
    { timeNs: 2000, stream: 3, write: false, iova: 0x2000, size: 64 },
    { timeNs: 10, stream: 0, write: true, iova: 0x100000, size: 2 ** 20 },
  ]);
});

const BAD: [string, string, string][] = [
  ["empty file", "", "t.csv:1: empty trace"],
  [
    "header only",
    `${HEADER}\n`,
    "t.csv:2: empty trace: no accesses after the header",
  ],
  [
    "unknown column",
    "time_ns,stream,op,iova,size,comment\n",
    't.csv:1: unknown column "comment"',
  ],
  [
    "missing column",
    "time_ns,stream,op,iova\n",
    't.csv:1: missing column "size"',
  ],
  [
    "repeated column",
    "time_ns,stream,op,iova,size,size\n",
    't.csv:1: column "size" appears twice',
  ],
  [
    "short row",
    `${HEADER}\n0,0,r,0,1\n1,0,r\n`,
    "t.csv:3: expected 5 fields, got 3",
  ],
  ["empty cell", `${HEADER}\n0,0,r,,4096\n`, "t.csv:2: iova: missing value"],
  [
    "bad time",
    `${HEADER}\n0,0,r,0,1\n1,0,r,0,1\nsoon,0,r,0,1\n`,
    't.csv:4: time_ns: expected a time like "2us", got "soon"',
  ],
  [
    "negative time",
    `${HEADER}\n-5,0,r,0,1\n`,
    "t.csv:2: time_ns: expected a time",
  ],
  [
    "time going backwards",
    `${HEADER}\n100,0,r,0,1\n50,1,r,0,1\n50,0,r,0,1\n`,
    "t.csv:4: time_ns: 50 is before the previous access of stream 0 (100)",
  ],
  [
    "bad stream",
    `${HEADER}\n0,-1,r,0,1\n`,
    't.csv:2: stream: expected a whole number from 0 to 1048575, got "-1"',
  ],
  [
    "stream too large",
    `${HEADER}\n0,1048576,r,0,1\n`,
    "t.csv:2: stream: expected a whole number",
  ],
  [
    "bad op",
    `${HEADER}\n0,0,rw,0,1\n`,
    't.csv:2: op: expected "r", "w", "read" or "write", got "rw"',
  ],
  [
    "bad iova",
    `${HEADER}\n0,0,r,0xzz,1\n`,
    't.csv:2: iova: expected an address like 0x1000 or 4096 below 2^52, got "0xzz"',
  ],
  [
    "iova too large",
    `${HEADER}\n0,0,r,0x10000000000000,1\n`,
    "t.csv:2: iova: expected an address",
  ],
  [
    "iova + size too large",
    `${HEADER}\n0,0,r,0xfffffffffffff,2\n`,
    "t.csv:2: iova: 0xfffffffffffff + 2 bytes goes beyond 2^52",
  ],
  [
    "bad size",
    `${HEADER}\n0,0,r,0,4 KB?\n`,
    't.csv:2: size: expected a size like "1MiB", got "4 KB?"',
  ],
  [
    "zero size",
    `${HEADER}\n0,0,r,0,0\n`,
    "t.csv:2: size: must be more than 0 bytes",
  ],
];

Deno.test("parseTrace names the line and column of each mistake", async (t) => {
  for (const [what, text, start] of BAD) {
    await t.step(what, () => {
      assert.throws(() => parseTrace(text, "t.csv"), (e: unknown) => {
        assert.ok(e instanceof IopfLabError);
        assert.equal(e.code, "EINVAL");
        assert.ok(
          e.message.startsWith(start),
          `${e.message} does not start with ${start}`,
        );
        return true;
      });
    });
  }
});

Deno.test("parseTrace checks addresses against the guest's memory", () => {
  const text =
    `${HEADER}\n0,0,r,0,4096\n0,0,r,0xff000,0x1000\n0,0,r,0xff000,4097\n`;
  assert.throws(
    () => parseTrace(text, "t.csv", { memory: 0x100000 }),
    /^IopfLabError: t\.csv:4: iova: 0xff000 \+ 4097 bytes goes beyond vm\.memory \(1 MiB\)/,
  );
});

Deno.test("loadTrace reads a file and reports a missing one", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/a.csv`, `${HEADER}\n5,0,w,0,1\n`);
    assert.equal(loadTrace(`${dir}/a.csv`).length, 1);
    assert.throws(
      () => loadTrace(`${dir}/b.csv`, "b.csv"),
      /b\.csv: cannot read the trace file .*: no such file/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
