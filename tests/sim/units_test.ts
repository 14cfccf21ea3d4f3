import assert from "node:assert/strict";
import { parseBandwidth, parseSize, parseTime } from "../../lib/sim/units.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { costRange, loadCostProfile } from "../../lib/sim/costs.ts";
import { hex, IopfLabError } from "../../lib/sim/errors.ts";

const einval = (fn: () => unknown, text: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert(e instanceof IopfLabError);
    assert.equal(e.code, "EINVAL");
    assert.match(e.message, text);
    return true;
  });

Deno.test("units: bandwidths read bits and bytes as users write them", () => {
  // bits: lowercase b, "bit"
  for (const v of ["10Gb/s", "10Gbps", "10Gbit/s", "10gbps", "10 Gbit/s"]) {
    assert.equal(parseBandwidth(v), 1.25e9, v);
  }
  // bytes: uppercase B
  for (const v of ["10GB/s", "10GBps", "10 GB/s"]) {
    assert.equal(parseBandwidth(v), 10e9, v);
  }
  assert.equal(parseBandwidth("1GiB/s"), 2 ** 30);
  assert.equal(parseBandwidth("8Gibit/s"), 2 ** 30);
  assert.equal(parseBandwidth("100Mbps"), 12.5e6);
  assert.equal(parseBandwidth(5e9), 5e9); // a number is bytes per second
  einval(() => parseBandwidth("100", "r"), /r: expected a bandwidth/);
  einval(() => parseBandwidth("10G/s", "r"), /bits: "Gb\/s"/);
  einval(() => parseBandwidth("1e400GB/s", "r"), /not a finite number/);
});

Deno.test("units: times and sizes must be finite and within 2^53", () => {
  einval(() => parseTime("1e400", "t"), /t: .*not a finite number/);
  einval(() => parseTime("1e17s", "t"), /at most 2\^53 ns/);
  assert.equal(parseTime("1.5ms"), 1.5e6);
  einval(() => parseSize("1e400", "s"), /s: .*not a finite number/);
  einval(() => parseSize("8PiB", "s"), /expected a size/);
  // Size prefixes: "8GB" is 10^9 bytes, "8G" and "8GiB" are 2^30.
  assert.equal(parseSize("8GB"), 8e9);
  assert.equal(parseSize("8G"), 8 * 2 ** 30);
  assert.equal(parseSize("8GiB"), 8 * 2 ** 30);
});

Deno.test("Simulator.at and Simulator.after refuse non-finite and negative times", () => {
  const sim = new Simulator();
  let ran = 0;
  sim.after(10, () => ran++);
  einval(() => sim.at(Infinity, () => ran++), /must be finite/);
  einval(() => sim.at(NaN, () => ran++), /Cannot schedule/);
  einval(() => sim.after(Infinity, () => ran++), /finite and not negative/);
  einval(() => sim.after(-1, () => ran++), /finite and not negative/);
  einval(() => sim.after(NaN, () => ran++), /finite and not negative/);
  sim.run();
  assert.equal(ran, 1); // the refused events were never scheduled
  assert.equal(sim.now, 10);
  einval(() => sim.at(5, () => ran++), /the clock is at 10 ns/);
});

Deno.test("hex shows an address in hex and anything else as it is (never 0xNaN)", () => {
  assert.equal(hex(0x1000), "0x1000");
  assert.equal(hex(NaN), "NaN");
  assert.equal(hex(Infinity), "Infinity");
  assert.equal(hex(-4096), "-4096");
  assert.equal(hex(1.5), "1.5");
});

Deno.test("cost overrides must be finite and within their unit's range", () => {
  assert.equal(
    loadCostProfile({ "vfio.faultLookup": 1e9 })["vfio.faultLookup"],
    1e9,
  );
  einval(
    () => loadCostProfile({ "vfio.faultLookup": 1e308 }),
    /^costs\.vfio\.faultLookup: expected a number in \[0, 1000000000\] \(ns per fault\), got 1e\+308/,
  );
  einval(() => loadCostProfile({ "vfio.faultLookup": Infinity }), /got null/);
  einval(
    () => loadCostProfile({ "iommu.flushQueueBatch": 2.5 }),
    /a whole number in \[1, 1000000\]/,
  );
  einval(
    () => loadCostProfile({ "iommu.flushQueueBatch": 0 }),
    /a whole number/,
  );
  einval(
    () => loadCostProfile({ "nic.rxFifoBytes": 2 ** 41 }),
    /\[0, 1099511627776\]/,
  );
  assert.deepEqual(costRange("nic.rxFifoBytes"), {
    min: 0,
    max: 2 ** 40,
    integer: true,
  });
});
