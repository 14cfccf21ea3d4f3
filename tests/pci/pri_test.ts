import assert from "node:assert/strict";
import {
  PRI_CTRL_ENABLE,
  PRI_CTRL_RESET,
  PRI_STATUS_PASID_REQUIRED,
  PRI_STATUS_RF,
  PRI_STATUS_STOPPED,
  PRI_STATUS_UPRGI,
  PriCapability,
} from "../../lib/pci/mod.ts";

Deno.test("PRI allocation is min(capacity, wanted) and settable only while disabled and stopped", () => {
  const pri = new PriCapability({ capacity: 8 });
  assert.equal(pri.status, PRI_STATUS_STOPPED | PRI_STATUS_PASID_REQUIRED);
  assert.equal(pri.setAllocation(100), 8);
  assert.equal(pri.setAllocation(3), 3);
  pri.writeControl(PRI_CTRL_ENABLE);
  assert.equal(pri.control, PRI_CTRL_ENABLE);
  assert.throws(() => pri.setAllocation(2), /EBUSY/);
  pri.outstanding = 1;
  pri.writeControl(0); // disabled, but a request is still outstanding
  assert.equal(pri.status & PRI_STATUS_STOPPED, 0);
  assert.throws(() => pri.setAllocation(2), /EBUSY/);
  pri.outstanding = 0;
  assert.equal(pri.status & PRI_STATUS_STOPPED, PRI_STATUS_STOPPED);
  assert.equal(pri.setAllocation(2), 2);
  assert.throws(() => pri.setAllocation(-1), /EINVAL/);
});

Deno.test("Response Failure and Unexpected PRG Index are write-1-to-clear; RF stops page requests", () => {
  const pri = new PriCapability({ capacity: 4, pasidRequired: false });
  pri.setAllocation(4);
  pri.writeControl(PRI_CTRL_ENABLE);
  assert.ok(pri.canIssue);
  pri.markResponseFailure();
  pri.markUnexpectedIndex();
  assert.equal(pri.status, PRI_STATUS_RF | PRI_STATUS_UPRGI);
  assert.ok(!pri.canIssue);
  pri.writeStatus(PRI_STATUS_UPRGI);
  assert.equal(pri.status, PRI_STATUS_RF);
  pri.writeStatus(PRI_STATUS_RF);
  assert.ok(pri.canIssue);
});

Deno.test("Reset with Enable clear drops the outstanding requests", () => {
  const pri = new PriCapability();
  let resets = 0;
  pri.onReset = () => resets++;
  pri.setAllocation(16);
  pri.writeControl(PRI_CTRL_ENABLE);
  pri.outstanding = 5;
  pri.writeControl(PRI_CTRL_ENABLE | PRI_CTRL_RESET); // ignored while enabled
  assert.equal(resets, 0);
  pri.writeControl(PRI_CTRL_RESET);
  assert.equal(resets, 1);
  assert.equal(pri.outstanding, 0);
  assert.ok(pri.stopped);
  assert.ok(!pri.canIssue);
});
