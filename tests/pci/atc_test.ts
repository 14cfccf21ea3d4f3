import assert from "node:assert/strict";
import { Atc, type AtcHit } from "../../lib/pci/mod.ts";

Deno.test("lookupInto fills the caller's scratch record on a hit and leaves it on a miss", () => {
  const atc = new Atc();
  atc.insert(-1, 0x5000, 0x1000, 0x9000_0000, 1);
  atc.insert(7, 0x5000, 0x1000, 0xa000_0000, 3);
  const hit: AtcHit = { prot: -1 };
  assert.equal(atc.lookupInto(-1, 0x5008, hit), 0x9000_0008);
  assert.equal(hit.prot, 1);
  assert.equal(atc.lookupInto(7, 0x5008, hit), 0xa000_0008);
  assert.equal(hit.prot, 3);
  assert.equal(atc.lookupInto(3, 0x5008, hit), -1);
  assert.equal(hit.prot, 3, "a miss leaves the record unchanged");
  assert.equal(atc.lastProt, 0, "lookupInto does not touch lastProt");
  assert.equal(atc.lookup(-1, 0x5000), 0x9000_0000);
  assert.equal(atc.lastProt, 1);
});
