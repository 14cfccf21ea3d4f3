import assert from "node:assert/strict";
import fc from "fast-check";
import { scanTrace } from "../../lib/workload/trace_file.ts";
import {
  traceFileSource,
  type TraceRow,
  TraceWorkload,
} from "../../lib/workload/trace.ts";
import type { Workload } from "../../lib/workload/types.ts";
import { FakeContext } from "./_fake_context.ts";
import { OldTraceWorkload } from "./_trace_replay_old.ts";

/** The DMAs a workload issues on a fake device, in order, and when it finished. */
function replay(w: Workload, nsPerByte: number) {
  const ctx = new FakeContext(1 << 30, nsPerByte);
  let doneAt = -1;
  w.start(ctx, () => (doneAt = ctx.sim.now));
  ctx.sim.run();
  return { ops: ctx.ops, doneAt };
}

const arbRows = fc.array(
  fc.record({
    stream: fc.integer({ min: 0, max: 4 }),
    dt: fc.constantFrom(0, 0, 10, 100, 5000),
    write: fc.boolean(),
    page: fc.integer({ min: 0, max: 64 }),
    size: fc.constantFrom(1, 64, 4096, 8192, 65536),
  }),
  { minLength: 1, maxLength: 60 },
).map((xs) => {
  const last = new Map<number, number>();
  return xs.map((x): TraceRow => {
    const t = (last.get(x.stream) ?? 0) + x.dt;
    last.set(x.stream, t);
    return {
      timeNs: t,
      stream: x.stream,
      write: x.write,
      iova: x.page * 4096 + 0x100000,
      size: x.size,
    };
  });
});

function csv(rows: readonly TraceRow[]): string {
  return "time_ns,stream,op,iova,size\n" +
    rows.map((r) =>
      `${r.timeNs},${r.stream},${r.write ? "w" : "r"},${r.iova},${r.size}\n`
    ).join("");
}

Deno.test("the streaming replay issues every DMA as the in-memory replay did", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/t.csv`;
    fc.assert(
      fc.property(
        arbRows,
        fc.constantFrom(0, 0.01, 0.125, 1),
        (rows, nsPerByte) => {
          const want = replay(new OldTraceWorkload(rows), nsPerByte);
          assert.deepEqual(replay(new TraceWorkload(rows), nsPerByte), want);
          Deno.writeTextFileSync(path, csv(rows));
          const source = traceFileSource(path, scanTrace(path));
          assert.deepEqual(
            replay(new TraceWorkload(source), nsPerByte),
            want,
          );
        },
      ),
      { numRuns: 300, seed: 5 },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a replay refuses a trace file changed after it was read", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/t.csv`;
    Deno.writeTextFileSync(path, "time_ns,stream,op,iova,size\n0,0,w,0,64\n");
    const source = traceFileSource(path, scanTrace(path));
    Deno.writeTextFileSync(
      path,
      "time_ns,stream,op,iova,size\n0,0,w,0,64\n1,0,w,0,64\n",
    );
    assert.throws(
      () => replay(new TraceWorkload(source), 0),
      /changed after the scenario was read/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
