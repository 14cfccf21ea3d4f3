/**
 * The VM-start machines the pin benches and bench/memory.ts share.
 *
 * @module
 */
import {
  buildMachine,
  type Machine,
  parseScenario,
  startVms,
} from "../lib/experiment/mod.ts";

/** Guest RAM backing of a start case. */
export type StartBacking = "4k" | "hugetlb-2m" | "hugetlb-1g";

/** Guest RAM of a start case, and the host memory it runs on. */
const HOST_MEMORY = {
  "16GiB": "20GiB",
  "64GiB": "80GiB",
  "1TiB": "1280GiB",
  "4TiB": "5TiB",
  "16TiB": "16TiB",
} as const;

/** Guest RAM size of a start case. */
export type StartRam = keyof typeof HOST_MEMORY;

/** The machine of one VM start with `ram` of guest RAM (built, not started). */
export function startMachine(
  ram: StartRam,
  backing: StartBacking,
  mode: "static-pin" | "iopf",
): Machine {
  return buildMachine(parseScenario({
    name: `vm-start-${ram}-${backing}-${mode}`,
    host: { memory: HOST_MEMORY[ram], backing },
    vm: { memory: ram },
    // The start alone (VFIO_SET_IOMMU, attach, MAP_DMA), as the reference
    // was measured: no guest touching its RAM afterwards (its default, 50 %,
    // would populate half of an IOPF guest's RAM page by page).
    guest: { touchedMemory: "0%" },
    dma: { mode },
    workload: { kind: "boot" },
  }));
}

/** Starts the VM of `m` on the simulator; throws if it did not start. */
export function startVm(m: Machine): void {
  let started = false;
  startVms(m, () => started = true);
  m.sim.run();
  const vm = m.vms[0]!;
  if (!started || !vm.started) {
    throw new Error(`${m.scenario.name}: the VM did not start (${vm.error})`);
  }
}
