import assert from "node:assert/strict";
import {
  AcceleratorWorkload,
  BootWorkload,
  NicRxWorkload,
  RandomWorkload,
  StorageWorkload,
  TraceWorkload,
  type Workload,
} from "../../lib/workload/mod.ts";
import { Rng } from "../../lib/sim/rng.ts";
import { ZipfSampler } from "../../lib/workload/zipf.ts";
import { GuestRamAllocator } from "../../lib/workload/guest_ram.ts";
import { FakeContext } from "./_fake_context.ts";

function run(w: Workload, ctx: FakeContext): number {
  let doneAt = -1;
  w.start(ctx, () => doneAt = ctx.sim.now);
  ctx.sim.run();
  assert.ok(doneAt >= 0, "workload never completed");
  return doneAt;
}

Deno.test("workloads", async (t) => {
  await t.step("boot completes at once with no DMA", () => {
    const ctx = new FakeContext();
    assert.equal(run(new BootWorkload(), ctx), 0);
    assert.equal(ctx.ops.length, 0);
  });

  await t.step(
    "accelerator reads the input then writes the output, per message",
    () => {
      const ctx = new FakeContext();
      const end = run(
        new AcceleratorWorkload({
          messageSize: 65536,
          messages: 3,
          reuseBuffers: true,
        }),
        ctx,
      );
      assert.equal(ctx.ops.length, 6);
      assert.deepEqual(ctx.ops.map((o) => o.write), [
        false,
        true,
        false,
        true,
        false,
        true,
      ]);
      assert.equal(
        new Set(ctx.ops.map((o) => o.iova)).size,
        2,
        "two buffers reused",
      );
      assert.equal(ctx.maps.length, 2);
      assert.equal(end, 6 * 65536 * 0.125);
    },
  );

  await t.step(
    "accelerator engine: a message takes the CPU costs plus size / throughput",
    () => {
      const engine = {
        firstMessageNs: 50_000,
        submitNs: 600,
        doorbellNs: 150,
        completionNs: 800,
        enginePer4kNs: 400,
      };
      // Instant DMA: only the CPU and the engine take time.
      const ctx = new FakeContext(1 << 30, 0);
      const end = run(
        new AcceleratorWorkload({
          messageSize: 65536,
          messages: 3,
          reuseBuffers: true,
          chunkSize: 16384,
          engine,
        }),
        ctx,
      );
      const cpu = 600 + 150 + 800;
      const engineNs = (65536 / 4096) * 400; // 64 KiB at 4 KiB per 400 ns
      assert.equal(end, 50_000 + 3 * (cpu + engineNs));
      // 4 chunks of 16 KiB read and written per message, reads first.
      assert.equal(ctx.ops.length, 3 * 8);
      assert.deepEqual(
        ctx.ops.slice(0, 8).map((o) => [o.write, o.size]),
        [
          [false, 16384],
          [false, 16384],
          [true, 16384],
          [false, 16384],
          [true, 16384],
          [false, 16384],
          [true, 16384],
          [true, 16384],
        ],
      );
    },
  );

  await t.step(
    "accelerator engine: DMA hides under processing but for the first read and the last write",
    () => {
      const engine = {
        firstMessageNs: 0,
        submitNs: 600,
        doorbellNs: 150,
        completionNs: 800,
        enginePer4kNs: 400,
      };
      // 0.01 ns per byte: a 16 KiB chunk moves in 163.84 ns, processes in
      // 1600 ns, so the link (reads and writes together) keeps up.
      const ctx = new FakeContext(1 << 30, 0.01);
      const end = run(
        new AcceleratorWorkload({
          messageSize: 65536,
          messages: 1,
          reuseBuffers: true,
          chunkSize: 16384,
          engine,
        }),
        ctx,
      );
      const chunkDma = 16384 * 0.01;
      assert.ok(
        Math.abs(end - (600 + 150 + chunkDma + 4 * 1600 + chunkDma + 800)) <
          1e-6,
        `${end}`,
      );
    },
  );

  await t.step(
    "accelerator engine: a slow input stalls the pipeline (DMA-bound)",
    () => {
      // 1 ns per byte: a chunk's read (16.4 us) outlasts its processing.
      const ctx = new FakeContext(1 << 30, 1);
      const end = run(
        new AcceleratorWorkload({
          messageSize: 65536,
          messages: 1,
          reuseBuffers: true,
          chunkSize: 16384,
          engine: {
            firstMessageNs: 0,
            submitNs: 0,
            doorbellNs: 0,
            completionNs: 0,
            enginePer4kNs: 400,
          },
        }),
        ctx,
      );
      // The shared link carries 4 reads and 4 writes back to back.
      assert.ok(end >= 8 * 16384, `${end}`);
    },
  );

  await t.step(
    "accelerator without reuse maps, unmaps and frees fresh buffers per message",
    () => {
      const ctx = new FakeContext();
      run(
        new AcceleratorWorkload({
          messageSize: 8192,
          messages: 4,
          reuseBuffers: false,
        }),
        ctx,
      );
      assert.equal(ctx.maps.length, 8);
      assert.equal(ctx.unmaps.length, 8);
      assert.equal(
        new Set(ctx.ops.map((o) => o.iova)).size,
        8,
        "every buffer is new",
      );
      assert.equal(ctx.alloc.inUse, 0);
    },
  );

  await t.step(
    "random stays inside the working set, aligned, with the write fraction",
    () => {
      for (const distribution of ["uniform", "zipf"] as const) {
        const ctx = new FakeContext();
        run(
          new RandomWorkload({
            workingSet: 1 << 26,
            accesses: 4000,
            accessSize: 4096,
            distribution,
            writeFraction: 0.25,
            queueDepth: 8,
            zipfExponent: 1,
          }),
          ctx,
        );
        const base = ctx.maps[0]![0];
        assert.equal(ctx.ops.length, 4000);
        for (const o of ctx.ops) {
          assert.ok(o.iova >= base && o.iova + o.size <= base + (1 << 26));
          assert.equal((o.iova - base) % 4096, 0);
        }
        const writes = ctx.ops.filter((o) => o.write).length / 4000;
        assert.ok(Math.abs(writes - 0.25) < 0.04, `write fraction ${writes}`);
        const distinct = new Set(ctx.ops.map((o) => o.iova)).size;
        if (distribution === "uniform") {
          assert.ok(distinct > 3300, `uniform distinct ${distinct}`);
        } else {assert.ok(
            distinct < 2500,
            `zipf should repeat hot slots, distinct ${distinct}`,
          );}
      }
    },
  );

  await t.step(
    "nic-rx drops packets when the FIFO overflows behind a slow DMA",
    () => {
      // 10 Gbps wire, a device 4x slower than the wire: the FIFO fills up.
      const slow = new FakeContext(1 << 30, 3.2);
      run(
        new NicRxWorkload({
          ringEntries: 64,
          bufferSize: 2048,
          packets: 2000,
          rateBytesPerSec: 1.25e9,
          fifoBytes: 65536,
        }),
        slow,
      );
      const dropped = slow.counters.get("droppedPackets") ?? 0;
      assert.ok(dropped > 1000, `dropped ${dropped}`);
      assert.equal(slow.ops.length + dropped, 2000);
      // A fast device keeps up: nothing dropped, the ring is reused.
      const fast = new FakeContext(1 << 30, 0.1);
      run(
        new NicRxWorkload({
          ringEntries: 64,
          bufferSize: 2048,
          packets: 2000,
          rateBytesPerSec: 1.25e9,
          fifoBytes: 65536,
        }),
        fast,
      );
      assert.equal(fast.counters.get("droppedPackets") ?? 0, 0);
      assert.equal(new Set(fast.ops.map((o) => o.iova)).size, 64);
    },
  );

  await t.step(
    "storage with fresh buffers never reuses a page; without, it does",
    () => {
      const fresh = new FakeContext();
      run(
        new StorageWorkload({
          blockSize: 131072,
          totalBytes: 4 << 20,
          freshBuffers: true,
          queueDepth: 4,
        }),
        fresh,
      );
      assert.equal(fresh.ops.length, 32);
      assert.equal(new Set(fresh.ops.map((o) => o.iova)).size, 32);
      assert.equal(fresh.unmaps.length, 32);
      const reused = new FakeContext();
      run(
        new StorageWorkload({
          blockSize: 131072,
          totalBytes: 4 << 20,
          freshBuffers: false,
          queueDepth: 4,
        }),
        reused,
      );
      assert.equal(new Set(reused.ops.map((o) => o.iova)).size, 4);
    },
  );

  await t.step("trace replays rows at their times, in order per stream", () => {
    const ctx = new FakeContext(1 << 30, 0);
    run(
      new TraceWorkload([
        { timeNs: 100, stream: 0, write: true, iova: 0x200000, size: 4096 },
        { timeNs: 50, stream: 1, write: false, iova: 0x300000, size: 4096 },
        { timeNs: 300, stream: 0, write: false, iova: 0x201000, size: 8192 },
      ]),
      ctx,
    );
    assert.deepEqual(ctx.ops.map((o) => [o.at, o.stream, o.size]), [
      [50, 1, 4096],
      [100, 0, 4096],
      [300, 0, 8192],
    ]);
  });

  await t.step("trace beyond guest RAM is EINVAL", () => {
    const ctx = new FakeContext(1 << 24);
    assert.throws(
      () =>
        new TraceWorkload([{
          timeNs: 0,
          stream: 0,
          write: true,
          iova: 1 << 24,
          size: 4096,
        }]).start(ctx, () => {}),
      { code: "EINVAL" },
    );
  });
});

Deno.test("ZipfSampler", async (t) => {
  await t.step("rank frequencies follow 1/k", () => {
    const z = new ZipfSampler(1000, 1);
    const rng = new Rng(5);
    const counts = new Array(1000).fill(0);
    for (let i = 0; i < 200_000; i++) counts[z.sample(rng)]++;
    const h = counts.reduce((s, _c, k) => s + 1 / (k + 1), 0);
    for (const k of [0, 1, 9]) {
      const expected = 200_000 / (k + 1) / h;
      assert.ok(
        Math.abs(counts[k] - expected) / expected < 0.05,
        `rank ${k}: ${counts[k]} vs ${expected}`,
      );
    }
  });
  await t.step("huge n costs nothing and stays in range", () => {
    const z = new ZipfSampler(2 ** 40, 0.9);
    const rng = new Rng(1);
    for (let i = 0; i < 1000; i++) {
      const k = z.sample(rng);
      assert.ok(k >= 0 && k < 2 ** 40);
    }
  });
  await t.step("bad parameters are EINVAL", () => {
    assert.throws(() => new ZipfSampler(0), { code: "EINVAL" });
    assert.throws(() => new ZipfSampler(10, 0), { code: "EINVAL" });
  });
});

Deno.test("GuestRamAllocator", async (t) => {
  await t.step(
    "fresh allocation walks RAM, then reuses freed ranges; exhaustion is ENOMEM",
    () => {
      const a = new GuestRamAllocator(1 << 22, { reserved: 1 << 20 });
      const x = a.allocFresh(4096);
      a.free(x, 4096);
      const y = a.allocFresh(4096);
      assert.notEqual(x, y);
      assert.equal(a.alloc(4096), x);
      assert.throws(() => a.alloc(1 << 22), { code: "ENOMEM" });
      assert.throws(() => a.free(0, 4096), { code: "EINVAL" });
    },
  );
});
