import assert from "node:assert/strict";
import fc from "fast-check";
import {
  loadTrace,
  parseTrace,
  scanTrace,
  summarizeRows,
} from "../../lib/workload/trace_file.ts";
import { parseTrace as parseTraceD3 } from "./_trace_d3.ts";

const HEADER = "time_ns,stream,op,iova,size";

/** What a parser makes of `text`: its records, or its error message. */
function outcome(f: () => unknown): unknown {
  try {
    return { rows: f() };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

// Pieces of trace text, good and bad, with the CSV corners d3-dsv handles:
// quotes, doubled quotes, CR, CRLF, blank lines, a missing last newline.
const PIECES = [
  "0,0,r,0x1000,4096",
  "1,1,w,8192,4KiB",
  "2us,0,read,0,64",
  '"3",1,"w",0,1',
  '"4"x,1,w,0,1',
  '"5,0,r,0,1',
  '""',
  "6,0,r,0,1,",
  "1,0,r,0,1",
  "7,2,W,0xfff,0x10",
  "",
  " ",
  "zz,0,r,0,1",
  "8,0,r,0,0",
  '"9\n",0,r,0,1',
];
const SEPS = ["\n", "\r\n", "\r"];

const arbText = fc.tuple(
  fc.constantFrom(
    HEADER,
    "size,iova,op,stream,time_ns",
    `"time_ns",stream,op,iova,size`,
    "time_ns,stream",
  ),
  fc.array(fc.tuple(fc.constantFrom(...PIECES), fc.constantFrom(...SEPS)), {
    maxLength: 12,
  }),
  fc.constantFrom("", "\n", "\r\n", "\n\n", "\r"),
).map(([h, rows, end]) => {
  let text = h + "\n";
  for (const [p, sep] of rows) text += p + sep;
  return text.slice(0, rows.length > 0 ? -1 : undefined) + end;
});

Deno.test("the streaming reader reads every text as the d3-dsv parser did", () => {
  const dir = Deno.makeTempDirSync();
  try {
    fc.assert(
      fc.property(arbText, fc.integer({ min: 1, max: 9 }), (text, chunk) => {
        const want = outcome(() => parseTraceD3(text, "t.csv"));
        assert.deepEqual(outcome(() => parseTrace(text, "t.csv")), want);
        const path = `${dir}/t.csv`;
        Deno.writeTextFileSync(path, text);
        assert.deepEqual(
          outcome(() => loadTrace(path, "t.csv", { chunkBytes: chunk })),
          want,
        );
      }),
      { numRuns: 400, seed: 17 },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("scanTrace keeps a summary, not the rows", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const text =
      `${HEADER}\n10,3,w,0x2000,8KiB\n0,1,r,0x1000,1\n\n20,3,r,0x800,0x800\n`;
    Deno.writeTextFileSync(`${dir}/t.csv`, text);
    const s = scanTrace(`${dir}/t.csv`, "t.csv", { chunkBytes: 5 });
    assert.equal(s.rows, 3);
    assert.equal(s.streams, 2);
    assert.equal(s.lo, 0x800);
    assert.equal(s.hi, 0x4000);
    assert.equal(s.pages, 2 + 1 + 1);
    assert.equal(s.bytes, 8192 + 1 + 0x800);
    assert.deepEqual([...s.streamRows], [2, 1]);
    assert.deepEqual([...s.streamFirstNs], [10, 0]);
    assert.notEqual(s.stamp, "");
    const { stamp: _, ...fromRows } = summarizeRows(parseTrace(text, "t.csv"));
    const { stamp: _s, ...fromFile } = s;
    assert.deepEqual(fromRows, fromFile);
    assert.throws(
      () => scanTrace(`${dir}/t.csv`, "t.csv", { memory: 0x3000 }),
      /^IopfLabError: t\.csv:2: iova: 0x2000 \+ 8192 bytes goes beyond vm\.memory/,
    );
    assert.throws(
      () => scanTrace(dir, "d.csv"),
      /d\.csv: cannot read the trace file .*: is a directory/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
