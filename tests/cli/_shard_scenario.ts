/** A tiny sweep (six points, well under a second each) for the shard tests. */
export const SHARD_SWEEP = {
  name: "tiny-shards",
  seed: 5,
  vm: { memory: "32MiB" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
  sweep: {
    "dma.mode": ["static-pin", "iopf"],
    "vm.memory": ["32MiB", "48MiB", "64MiB"],
  },
};

/** Writes {@linkcode SHARD_SWEEP} (or `json`) to `dir`/s.json and returns the path. */
export function writeScenario(
  dir: string,
  json: unknown = SHARD_SWEEP,
): string {
  const path = `${dir}/s.json`;
  Deno.writeTextFileSync(path, JSON.stringify(json, null, 2));
  return path;
}
