/**
 * Wall time of warm DMA page accesses through the assembled stack, with and
 * without the DMA isolation sanitizer that every scenario run installs
 * (lib/experiment's `IsolationSanitizer`). One VM of 4 GiB, statically
 * pinned on 4 KiB pages; each iteration is one device write of
 * {@linkcode ACCESS_BATCH} pages (1 MiB) to the same buffer, whose
 * translations are warm in the IOTLB, run to completion. The time per
 * operation is per page access.
 *
 * - `warm page access, no sanitizer` (baseline): the engine's hot path.
 * - `warm page access, sanitizer on`: the same with every access checked
 *   against the domain's and the mm's truth (target: <= 1.5x).
 *
 *     deno bench --allow-read bench/access_bench.ts
 *
 * @module
 */
import {
  buildMachine,
  GUEST_RAM_BASE,
  IsolationSanitizer,
  parseScenario,
  startVms,
} from "../lib/experiment/mod.ts";
import { ACCESS_BATCH, ACCESS_NAME_OFF, ACCESS_NAME_ON } from "./_ops.ts";

const GROUP = "access";
const SIZE = ACCESS_BATCH * 4096;

for (const sanitize of [false, true]) {
  const name = sanitize ? ACCESS_NAME_ON : ACCESS_NAME_OFF;
  const m = buildMachine(parseScenario({
    name: `access-bench-${sanitize ? "on" : "off"}`,
    host: { memory: "8GiB", backing: "4k" },
    vm: { memory: "4GiB" },
    dma: { mode: "static-pin" },
    workload: { kind: "boot" },
  }));
  let started = false;
  startVms(m, () => started = true);
  m.sim.run();
  const vm = m.vms[0]!;
  if (!started || !vm.started) {
    throw new Error(`${name}: the VM did not start (${vm.error})`);
  }
  const sanitizer = sanitize ? new IsolationSanitizer(m) : undefined;
  let ok = 0, runs = 0;
  const done = (r: { ok: boolean }) => {
    if (r.ok) ok++;
  };
  const req = { iova: GUEST_RAM_BASE, size: SIZE, write: true };
  // Warm the translations.
  vm.device.dma(req, done);
  m.sim.run();
  const checkedBefore = sanitizer?.checked ?? 0;
  Deno.bench({
    name,
    group: GROUP,
    baseline: !sanitize,
    n: 2000,
    warmup: 100,
    fn(b) {
      b.start();
      vm.device.dma(req, done);
      m.sim.run();
      b.end();
      runs++;
    },
  });
  globalThis.addEventListener("unload", () => {
    if (ok !== runs + 1) {
      throw new Error(`${name}: ${ok} of ${runs + 1} transfers succeeded`);
    }
    if (sanitizer) {
      const checked = sanitizer.checked - checkedBefore;
      if (checked < runs * ACCESS_BATCH || sanitizer.violations !== 0) {
        throw new Error(
          `${name}: the sanitizer checked ${checked} accesses of ${
            runs * ACCESS_BATCH
          } with ${sanitizer.violations} violations`,
        );
      }
    }
  });
}
