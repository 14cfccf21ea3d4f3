/**
 * The `nic-rx` workload on a DMA engine that overlaps per-packet work with
 * transfers (issue 13, item 8).
 */
import assert from "node:assert/strict";
import { parseScenario, runScenario } from "../../lib/experiment/mod.ts";

/** A 25 Gbps NIC, 2 KiB buffers, a 4096-entry ring, static pinning. */
function nic25(dmaBandwidth: string, dmaSlots?: number) {
  return runScenario(parseScenario({
    vm: { memory: "1GiB" },
    host: { memory: "4GiB" },
    device: { dmaBandwidth, ...(dmaSlots ? { dmaSlots } : {}) },
    dma: { mode: "static-pin" },
    workload: {
      kind: "nic-rx",
      ringEntries: 4096,
      bufferSize: "2KiB",
      packets: 20000,
      rate: "25Gbps",
    },
  }));
}

Deno.test("a 25 Gbps NIC with 20 % DMA headroom receives at line rate with no drops", () => {
  const m = nic25("30Gbps");
  assert.equal(m.droppedPackets, 0);
  assert.equal(m.extra?.packetsReceived, 20000);
  // Line rate: the last packet arrives after 19999 gaps of 2048 B at 25 Gbps.
  const lineNs = (19999 * 2048 * 8) / 25;
  assert.ok(m.runNs < lineNs * 1.01, `${m.runNs} ns`);
});

Deno.test("one engine slot serialises setup, translation and data: the NIC drops", () => {
  // What the engine did before it had slots: per packet pci.dmaSetup +
  // translation + 546 ns of data > the 655 ns between packets.
  const m = nic25("30Gbps", 1);
  assert.ok((m.droppedPackets ?? 0) > 1000, `${m.droppedPackets}`);
});
