import assert from "node:assert/strict";
import { IommuCore } from "../../lib/iommu/core.ts";
import type { IopfGroup } from "../../lib/iommu/io_pgfault.ts";
import {
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L1,
  FAULT_REPORT_NESTED_L2,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
} from "../../lib/iommu/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { fakeDevice, FakeIommuDriver } from "./_fake_driver.ts";

function setup(faultWorkers = 1) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, { costs, driver, faultWorkers });
  driver.bind(core);
  const dev = fakeDevice("0000:01:00.0", 8, true);
  const domain = core.domainAllocPaging(2);
  core.attachDevice(domain, dev);
  return { sim, costs, driver, core, dev, domain };
}

Deno.test("iopf queue: groups", async (t) => {
  await t.step(
    "partial faults are parked until the LAST fault of their group (matched by grpid only)",
    () => {
      // drivers/iommu/io-pgfault.c, iopf_group_alloc() (v6.8+; iommu_queue_iopf()
      // since v5.13): "if (iopf->fault.prm.grpid == fault->prm.grpid)
      // list_move(...)": partials join a group by group id only, the PASID
      // is not compared, so the PASID-qualified partial joins group 5 too.
      const { sim, driver, core, dev } = setup();
      const groups: IopfGroup[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        groups.push(g);
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      }, FAULT_REPORT_FLAT);
      const a = driver.inject(dev, {
        addr: 0x1000,
        grpid: 5,
        last: false,
        source: "pri",
      });
      const other = driver.inject(dev, {
        addr: 0x9000,
        grpid: 6,
        last: false,
        source: "pri",
      });
      const b = driver.inject(dev, {
        addr: 0x2000,
        grpid: 5,
        last: false,
        source: "pri",
      });
      const pasid = driver.inject(dev, {
        addr: 0x3000,
        grpid: 5,
        last: false,
        pasid: 3,
      });
      sim.run();
      assert.equal(groups.length, 0);
      assert.equal(driver.responses.length, 0);
      assert.equal(core.iopf.partialFaults(dev).length, 4);
      const last = driver.inject(dev, {
        addr: 0x4000,
        grpid: 5,
        source: "pri",
      });
      sim.run();
      assert.equal(groups.length, 1);
      assert.deepEqual(groups[0]!.faults, [a, b, pasid, last]);
      assert.deepEqual(core.iopf.partialFaults(dev), [other]);
      assert.equal(driver.responses.length, 1);
      assert.equal(driver.responses[0]!.fault, last); // the response is for the LAST fault
      const s = core.iopf.stats();
      assert.equal(s.faults, 5);
      assert.equal(s.partials, 4);
      assert.equal(s.groups, 1);
      assert.equal(s.partialDiscards, 0);
      assert.equal(s.responses.success, 1);
    },
  );

  await t.step(
    "exactly one response per group: a second one is an error",
    () => {
      const { sim, driver, core, dev } = setup();
      let saved: IopfGroup | undefined;
      core.registerDeviceFaultHandler(dev, (g, done) => {
        saved = g;
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      }, FAULT_REPORT_FLAT);
      const f = driver.inject(dev, { addr: 0x1000 });
      sim.run();
      assert.ok(saved?.responded);
      assert.equal(saved.code, IOMMU_PAGE_RESP_SUCCESS);
      assert.throws(
        () => core.pageResponse(dev, saved!, IOMMU_PAGE_RESP_INVALID),
        (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
      );
      assert.equal(driver.responsesFor(f).length, 1);
      assert.equal(core.counters.get("iopf.responses.duplicate"), 1);
    },
  );

  await t.step("no handler: INVALID", () => {
    const { sim, driver, core, dev } = setup();
    const f = driver.inject(dev, { addr: 0x1000 });
    sim.run();
    assert.deepEqual(driver.responsesFor(f).map((r) => r.code), [
      IOMMU_PAGE_RESP_INVALID,
    ]);
    assert.equal(core.iopf.stats().noHandler, 1);
  });

  await t.step(
    "a device without a domain gets INVALID even with a handler",
    () => {
      const { sim, driver, core } = setup();
      const lone = fakeDevice("lone", 99);
      core.registerDeviceFaultHandler(lone, () => {
        throw new Error("must not run");
      }, FAULT_REPORT_FLAT);
      const f = driver.inject(lone, { addr: 0 });
      sim.run();
      assert.deepEqual(driver.responsesFor(f).map((r) => r.code), [
        IOMMU_PAGE_RESP_INVALID,
      ]);
    },
  );

  await t.step(
    "a handler throwing IopfLabError gets INVALID and frees its worker",
    () => {
      const { sim, driver, core, dev } = setup();
      core.registerDeviceFaultHandler(dev, () => {
        throw new IopfLabError("ENOMEM", "Cannot pin: out of memory");
      }, FAULT_REPORT_FLAT);
      const f1 = driver.inject(dev, { addr: 0 });
      const f2 = driver.inject(dev, { addr: 0x1000 });
      sim.run();
      assert.equal(driver.responsesFor(f1)[0]?.code, IOMMU_PAGE_RESP_INVALID);
      assert.equal(driver.responsesFor(f2)[0]?.code, IOMMU_PAGE_RESP_INVALID);
      assert.equal(core.iopf.workers.busy, 0);
    },
  );

  await t.step("faults never complete on a timeout", () => {
    const { sim, driver, core, dev } = setup();
    core.registerDeviceFaultHandler(
      dev,
      (_g, done) => done(),
      FAULT_REPORT_FLAT,
    ); // never responds
    driver.inject(dev, { addr: 0 });
    driver.inject(dev, { addr: 0x1000, last: false });
    sim.run({ until: 3600e9 });
    assert.equal(driver.responses.length, 0);
    assert.equal(core.iopf.stats().pendingGroups, 1);
    assert.equal(core.iopf.partialFaults(dev).length, 1);
  });
});

Deno.test("iopf queue: workqueue", async (t) => {
  await t.step("with N workers groups complete out of order", () => {
    const durations = [30_000, 10_000, 20_000];
    const order = (workers: number) => {
      const { sim, driver, core, dev } = setup(workers);
      const seen: number[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        const i = g.last.addr / 0x1000;
        sim.after(durations[i]!, () => {
          seen.push(i);
          core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
          done();
        });
      }, FAULT_REPORT_FLAT);
      for (let i = 0; i < 3; i++) driver.inject(dev, { addr: i * 0x1000 });
      sim.run();
      assert.equal(driver.responses.length, 3);
      return { seen, waits: core.iopf.stats().workqueueWaits };
    };
    const one = order(1);
    assert.deepEqual(one.seen, [0, 1, 2]);
    assert.equal(one.waits, 2);
    const three = order(3);
    assert.deepEqual(three.seen, [1, 2, 0]);
    assert.equal(three.waits, 0);
  });

  await t.step(
    "the handler starts after report, wakeup and group costs",
    () => {
      const { sim, driver, core, dev, costs } = setup();
      let startedAt = -1;
      core.registerDeviceFaultHandler(dev, (g, done) => {
        startedAt = sim.now;
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      }, FAULT_REPORT_FLAT);
      driver.inject(dev, { addr: 0 });
      sim.run();
      assert.equal(
        startedAt,
        costs["iopf.reportFault"] + costs["iopf.workqueueWakeup"] +
          costs["iopf.groupOverhead"],
      );
    },
  );

  await t.step(
    "a handler may respond after returning (the worker is free meanwhile)",
    () => {
      const { sim, driver, core, dev } = setup(1);
      const started: number[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        started.push(sim.now);
        done();
        sim.after(
          1e6,
          () => core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS),
        );
      }, FAULT_REPORT_FLAT);
      driver.inject(dev, { addr: 0 });
      driver.inject(dev, { addr: 0x1000 });
      sim.run();
      assert.equal(started.length, 2);
      assert.ok(started[1]! - started[0]! < 1e6);
      assert.equal(driver.responses.length, 2);
    },
  );
});

Deno.test("iopf queue: discard and removal", async (t) => {
  await t.step(
    "iopfQueueDiscardPartial drops parked partials without any response",
    () => {
      const { sim, driver, core, dev } = setup();
      const sizes: number[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        sizes.push(g.faults.length);
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      }, FAULT_REPORT_FLAT);
      driver.inject(dev, {
        addr: 0x1000,
        grpid: 1,
        last: false,
        source: "pri",
      });
      driver.inject(dev, {
        addr: 0x2000,
        grpid: 2,
        last: false,
        source: "pri",
      });
      assert.equal(core.iopfQueueDiscardPartial(dev), 2);
      sim.run();
      assert.equal(driver.responses.length, 0);
      assert.equal(core.iopf.stats().partialDiscards, 2);
      // The partials are gone: a second discard finds none, and a later
      // LAST of group 1 forms a group of one fault.
      assert.equal(core.iopfQueueDiscardPartial(dev), 0);
      driver.inject(dev, { addr: 0x3000, grpid: 1, source: "pri" });
      sim.run();
      assert.equal(driver.responses.length, 1);
      assert.deepEqual(sizes, [1]);
    },
  );

  await t.step(
    "removeDevice answers INVALID to every pending group; late responses drop",
    () => {
      const { sim, driver, core, dev } = setup(2);
      const groups: IopfGroup[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        groups.push(g);
        sim.after(50_000, () => {
          core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
          done();
        });
      }, FAULT_REPORT_FLAT);
      const faults = [0, 1, 2].map((i) =>
        driver.inject(dev, { addr: i * 0x1000 })
      );
      driver.inject(dev, { addr: 0x9000, last: false });
      sim.run({ until: 10_000 }); // two handlers running, one queued
      assert.equal(groups.length, 2);
      assert.equal(core.iopfQueueRemoveDevice(dev), 3);
      for (const f of faults) {
        assert.deepEqual(driver.responsesFor(f).map((r) => r.code), [
          IOMMU_PAGE_RESP_INVALID,
        ]);
      }
      sim.run();
      assert.equal(groups.length, 2); // the queued group's handler never ran
      assert.equal(driver.responses.length, 3);
      assert.equal(core.iopf.stats().lateResponses, 2);
      assert.equal(core.iopf.partialFaults(dev).length, 0);
    },
  );

  await t.step("detach answers INVALID to pending groups", () => {
    const { sim, driver, core, dev, domain } = setup();
    core.registerDeviceFaultHandler(
      dev,
      (_g, done) => done(),
      FAULT_REPORT_FLAT,
    );
    const f = driver.inject(dev, { addr: 0 });
    sim.run();
    assert.equal(driver.responses.length, 0);
    core.detachDevice(domain, dev);
    assert.deepEqual(driver.responsesFor(f).map((r) => r.code), [
      IOMMU_PAGE_RESP_INVALID,
    ]);
    core.unregisterDeviceFaultHandler(dev);
  });

  await t.step("unregister is EBUSY while a group is pending", () => {
    const { sim, driver, core, dev } = setup();
    core.registerDeviceFaultHandler(
      dev,
      (_g, done) => done(),
      FAULT_REPORT_FLAT,
    );
    driver.inject(dev, { addr: 0 });
    sim.run();
    assert.throws(() => core.unregisterDeviceFaultHandler(dev), {
      code: "EBUSY",
    });
  });
});

Deno.test("iopf queue: nested routing with FAULT_REPORT flags", async (t) => {
  const nestedSetup = () => {
    const s = setup();
    const { core, dev, domain } = s;
    const nested = core.domainAllocNested(domain, {
      s1Ttb: 0x8000_0000,
      asid: 3,
      stall: true,
    });
    core.replaceDevice(nested, dev);
    return s;
  };

  await t.step(
    "stage-1 faults go to NESTED_L1, stage-2 faults to NESTED_L2",
    () => {
      const { sim, driver, core, dev } = nestedSetup();
      const l1: IopfGroup[] = [], l2: IopfGroup[] = [];
      const mk = (into: IopfGroup[]) => (g: IopfGroup, done: () => void) => {
        into.push(g);
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      };
      core.registerDeviceFaultHandler(dev, mk(l1), FAULT_REPORT_NESTED_L1);
      core.registerDeviceFaultHandler(dev, mk(l2), FAULT_REPORT_NESTED_L2);
      assert.throws(
        () =>
          core.registerDeviceFaultHandler(dev, mk(l1), FAULT_REPORT_NESTED_L1),
        { code: "EBUSY" },
      );
      driver.inject(dev, { addr: 0x1000, stage: 1 });
      driver.inject(dev, { addr: 0x2000, stage: 2, ipa: 0x4000_0000 });
      sim.run();
      assert.equal(l1.length, 1);
      assert.equal(l1[0]!.route, FAULT_REPORT_NESTED_L1);
      assert.equal(l2.length, 1);
      assert.equal(l2[0]!.route, FAULT_REPORT_NESTED_L2);
    },
  );

  await t.step(
    "one handler may take both flags; a FLAT-only handler gets nothing",
    () => {
      const { sim, driver, core, dev } = nestedSetup();
      const both: IopfGroup[] = [];
      core.registerDeviceFaultHandler(dev, (g, done) => {
        both.push(g);
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      }, FAULT_REPORT_NESTED_L1 | FAULT_REPORT_NESTED_L2);
      driver.inject(dev, { addr: 0x1000, stage: 1 });
      driver.inject(dev, { addr: 0x2000, stage: 2 });
      sim.run();
      assert.equal(both.length, 2);
      core.unregisterDeviceFaultHandler(dev);
      core.registerDeviceFaultHandler(dev, () => {
        throw new Error("must not run");
      }, FAULT_REPORT_FLAT);
      const f = driver.inject(dev, { addr: 0x3000, stage: 1 });
      sim.run();
      assert.equal(driver.responsesFor(f)[0]?.code, IOMMU_PAGE_RESP_INVALID);
    },
  );

  await t.step(
    "FLAT together with NESTED_* in one registration is EINVAL, nothing registered",
    () => {
      // RFC v3 1/8 "iommu: Evolve the device fault reporting framework"
      // (<20210409034420.1799-2-lushenming@huawei.com>),
      // iommu_register_device_fault_handler(): "/* Only under one
      // configuration. */ if (flags & FAULT_REPORT_FLAT && flags &
      // (FAULT_REPORT_NESTED_L1 | FAULT_REPORT_NESTED_L2)) return -EINVAL;"
      const { sim, driver, core, dev } = setup();
      for (
        const flags of [
          FAULT_REPORT_FLAT | FAULT_REPORT_NESTED_L2,
          FAULT_REPORT_FLAT | FAULT_REPORT_NESTED_L1,
          FAULT_REPORT_FLAT | FAULT_REPORT_NESTED_L1 | FAULT_REPORT_NESTED_L2,
        ]
      ) {
        assert.throws(
          () => core.registerDeviceFaultHandler(dev, (_g, d) => d(), flags),
          { code: "EINVAL", message: /one configuration/ },
        );
      }
      const f = driver.inject(dev, { addr: 0x1000 });
      sim.run();
      // Nothing was registered: the flat fault finds no handler.
      assert.equal(driver.responsesFor(f)[0]?.code, IOMMU_PAGE_RESP_INVALID);
    },
  );

  await t.step(
    "iommu_update_device_fault_handler moves a registration from FLAT to NESTED_L2",
    () => {
      // RFC v3 1/8: iommu_update_device_fault_handler(dev, mask, set) sets
      // flags = (flags & mask) | set; VFIO uses it when nesting is set up.
      const { sim, driver, core, dev } = nestedSetup();
      const got: IopfGroup[] = [];
      const h = (g: IopfGroup, done: () => void) => {
        got.push(g);
        core.pageResponse(dev, g, IOMMU_PAGE_RESP_SUCCESS);
        done();
      };
      core.registerDeviceFaultHandler(dev, h, FAULT_REPORT_FLAT);
      assert.throws(
        () => core.updateDeviceFaultHandler(dev, h, ~0, FAULT_REPORT_NESTED_L2),
        { code: "EINVAL" }, // FLAT | NESTED_L2 again
      );
      core.updateDeviceFaultHandler(
        dev,
        h,
        ~FAULT_REPORT_FLAT,
        FAULT_REPORT_NESTED_L2,
      );
      driver.inject(dev, { addr: 0x2000, stage: 2, ipa: 0x4000_0000 });
      sim.run();
      assert.equal(got.length, 1);
      assert.equal(got[0]!.route, FAULT_REPORT_NESTED_L2);
      assert.throws(
        () => core.updateDeviceFaultHandler(dev, () => {}, ~0, 0),
        { code: "EINVAL", message: /no such handler/ },
      );
    },
  );
});
