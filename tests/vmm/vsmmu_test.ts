import assert from "node:assert/strict";
import { VSmmu, type VSmmuEvent } from "../../lib/vmm/vsmmu.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";

const event = (token: number): VSmmuEvent => ({
  token,
  devId: 1,
  kind: "stall",
  addr: 0x1000 * token,
  perm: 2,
  pasid: 0,
  pasidValid: false,
  grpid: token,
  last: true,
});

Deno.test("the vSMMU's event queue overflows when the guest does not drain it", () => {
  const sim = new Simulator();
  const vsmmu = new VSmmu(sim, { costs: loadCostProfile(), evtqLog2: 1 });
  let irqs = 0;
  vsmmu.onIrq(() => irqs++);
  assert.ok(vsmmu.injectEvent(event(1)));
  assert.ok(vsmmu.injectEvent(event(2)));
  assert.equal(vsmmu.injectEvent(event(3)), false, "2 entries");
  assert.equal(irqs, 2);
  assert.equal(vsmmu.counters.get("vsmmu.evtqOverflows"), 1);
  assert.deepEqual(vsmmu.readEvents().map((e) => e.token), [1, 2]);
  assert.equal(vsmmu.pendingEvents, 0);
  assert.ok(vsmmu.injectEvent(event(4)), "room again");
});

Deno.test("a guest command traps to the VMM after vmm.trap; without a handler it just completes", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const vsmmu = new VSmmu(sim, { costs });
  let at = -1;
  vsmmu.submitCommand(
    { op: "tlbi", asid: 1, iova: 0, size: 4096 },
    () => (at = sim.now),
  );
  sim.run();
  assert.equal(at, costs["vmm.trap"]);
  assert.equal(vsmmu.counters.get("vsmmu.commands.tlbi"), 1);
  assert.throws(() => new VSmmu(sim, { costs, evtqLog2: 0 }), /EINVAL/);
});
