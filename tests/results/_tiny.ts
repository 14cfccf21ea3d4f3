/** Tiny scenarios the results tests run in milliseconds. */
import {
  expandSweep,
  parseScenario,
  type Scenario,
} from "../../lib/experiment/mod.ts";

/** A 64 MiB VM that boots, with a two-by-two sweep (four points). */
export const TINY_SWEEP = {
  name: "tiny-sweep",
  seed: 3,
  vm: { memory: "64MiB" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
  sweep: {
    "dma.mode": ["static-pin", "iopf"],
    "vm.memory": ["32MiB", "64MiB"],
  },
};

/** The scenario file {@linkcode TINY_SWEEP} as loaded. */
export function tinySweep(): Scenario {
  return parseScenario(TINY_SWEEP);
}

/** The points of {@linkcode TINY_SWEEP}. */
export function tinyPoints(): Scenario[] {
  return expandSweep(tinySweep());
}
