/**
 * Subprocess of stall_limit_test.ts: presents `count` transactions that
 * all stall at stage 2 (nothing mapped, STE.S2S = 1) to one SMMU, none
 * resumed, runs the simulator until idle and prints the SMMU's counters as
 * JSON. Run alone, it is a probe:
 * `deno run tests/smmu/_stall_flood.ts 70000 65535` (count, stallMax).
 */
import { hostTable, rig, steS2 } from "./_helpers.ts";

const count = Number(Deno.args[0] ?? "65537");
const stallMax = Deno.args[1] === undefined ? undefined : Number(Deno.args[1]);
const r = rig(stallMax === undefined ? {} : { stallMax });
r.smmu.writeSte(1, steS2(hostTable(r.memory), { S2S: true }));
let terminated = 0;
let aborted = 0;
for (let i = 0; i < count; i++) {
  r.smmu.translate({ sid: 1, iova: i * 0x1000, write: false }, (res) => {
    if (!res.ok) {
      terminated++;
      if (res.abort) aborted++;
    }
  });
}
r.sim.run();
console.log(JSON.stringify({
  stalledCount: r.smmu.stalledCount,
  terminated,
  aborted,
  stats: r.smmu.stats,
}));
