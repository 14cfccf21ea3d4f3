import assert from "node:assert/strict";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuFault,
  type IommuFaultSink,
  newIotlbGather,
} from "../../lib/iommu/types.ts";
import {
  ArmSmmuV3Driver,
  type ArmSmmuV3DriverOptions,
  C_BAD_STE,
  CMD_ATC_INV,
  CMD_CFGI_STE,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_SYNC,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_VA,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  type Command,
  PRG_RESP_FAILURE,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  PRI_RESP_FAILURE,
  PRI_RESP_INVALID,
  PRI_RESP_SUCCESS,
  type PriEntry,
  RESUME_ABORT,
  RESUME_RETRY,
  type Smmu,
  type SmmuEndpoint,
  type SmmuOptions,
  type TxnResult,
} from "../../lib/smmu/mod.ts";
import { drainEvents, type Rig, rig, translateNow } from "./_helpers.ts";

const RW = 3;

class FakeSink implements IommuFaultSink {
  faults: { dev: IommuDevice; fault: IommuFault }[] = [];
  discards = 0;
  onFault: ((dev: IommuDevice, fault: IommuFault) => void) | undefined;
  reportDeviceFault(dev: IommuDevice, fault: IommuFault): void {
    this.faults.push({ dev, fault });
    this.onFault?.(dev, fault);
  }
  iopfQueueDiscardPartial(): void {
    this.discards++;
  }
}

class FakeEndpoint implements SmmuEndpoint {
  responses: [number, number, number][] = [];
  invalidations: [number, number, number][] = [];
  constructor(private readonly r: Rig) {}
  prgResponse(ssid: number, idx: number, code: number): void {
    this.responses.push([ssid, idx, code]);
  }
  atcInvalidate(
    ssid: number,
    addr: number,
    log2: number,
    done: () => void,
  ): void {
    this.invalidations.push([ssid, addr, log2]);
    this.r.sim.after(2000, done);
  }
  atcInvalidateBlocking(ssid: number, addr: number, log2: number): number {
    this.invalidations.push([ssid, addr, log2]);
    return 2000;
  }
}

function spySubmit(smmu: Smmu): Command[][] {
  const log: Command[][] = [];
  const orig = smmu.submit.bind(smmu);
  smmu.submit = (cmds, done) => {
    log.push([...cmds]);
    orig(cmds, done);
  };
  return log;
}

function setup(
  smmuOptions: Partial<Omit<SmmuOptions, "costs" | "memory">> = {},
  drvOptions: Partial<ArmSmmuV3DriverOptions> = {},
) {
  const r = rig(smmuOptions);
  const sink = new FakeSink();
  const drv = new ArmSmmuV3Driver(r.sim, r.smmu, {
    costs: r.costs,
    memory: r.memory,
    sink,
    ...drvOptions,
  });
  const log = spySubmit(r.smmu);
  return { ...r, r, sink, drv, log };
}

const zip: IommuDevice = {
  name: "zip0",
  sid: 4,
  ats: false,
  pri: false,
  stall: true,
};
const nic: IommuDevice = {
  name: "0000:01:00.0",
  sid: 0x100,
  ats: true,
  pri: true,
  stall: false,
};

function attach(
  s: ReturnType<typeof setup>,
  dev: IommuDevice,
  dom: Parameters<ArmSmmuV3Driver["attachDev"]>[1],
) {
  let done = false;
  s.drv.attachDev(dev, dom, () => (done = true));
  s.sim.run();
  assert.ok(done);
}

Deno.test("attach installs the STE (and CD) with CFGI + SYNC; detach restores abort", async (t) => {
  await t.step("stage 2", () => {
    const s = setup();
    const dom = s.drv.domainAllocPaging(2);
    attach(s, zip, dom);
    const ste = s.smmu.ste(zip.sid);
    assert.ok(ste && ste.Config === 6);
    assert.equal(ste.S2VMID, dom.vmid);
    assert.equal(ste.S2TTB, dom.pgtable!.root);
    assert.equal(ste.S2S, false, "no stall before IOPF is enabled");
    const cmds = s.log.at(-1)!;
    assert.deepEqual(cmds.map((c) => c.opcode), [CMD_CFGI_STE, CMD_SYNC]);
    let detached = false;
    s.drv.detachDev(zip, () => (detached = true));
    s.sim.run();
    assert.ok(detached && s.smmu.ste(zip.sid)?.Config === 0);
  });
  await t.step("stage 1: a CD with the ASID and TTB0", () => {
    const s = setup();
    const dom = s.drv.domainAllocPaging(1);
    attach(s, zip, dom);
    const ste = s.smmu.ste(zip.sid);
    assert.ok(ste && ste.Config === 5);
    const cd = s.smmu.cd(ste.S1ContextPtr, 0);
    assert.ok(
      cd && cd.V && cd.ASID === dom.asid && cd.TTB0 === dom.pgtable!.root,
    );
    dom.pgtable!.map(0x1000, 0x5000, 0x1000, RW);
    assert.equal(
      translateNow(s.r, { sid: zip.sid, iova: 0x1000, write: true })?.ok,
      true,
    );
  });
  await t.step("an ATS device also gets its ATC flushed", () => {
    const s = setup();
    const ep = new FakeEndpoint(s.r);
    s.smmu.attachEndpoint(nic.sid, ep);
    attach(s, nic, s.drv.domainAllocPaging(2));
    assert.equal(s.smmu.ste(nic.sid)?.EATS, 1);
    assert.deepEqual(ep.invalidations, [[-1, 0, 52]]);
  });
});

Deno.test("enableIopf sets STE.S2S for a stall device, and needs a way to recover", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  attach(s, zip, dom);
  s.drv.enableIopf(zip);
  s.sim.run();
  const on = s.smmu.ste(zip.sid);
  assert.ok(on?.Config === 6 && on.S2S);
  s.drv.disableIopf(zip);
  s.sim.run();
  const off = s.smmu.ste(zip.sid);
  assert.ok(off?.Config === 6 && !off.S2S);
  assert.throws(
    () =>
      s.drv.enableIopf({
        name: "x",
        sid: 9,
        ats: false,
        pri: false,
        stall: false,
      }),
    /ENODEV/,
  );
  const u = setup({ stallModel: "unsupported" });
  assert.throws(() => u.drv.enableIopf(zip), /ENODEV/);
});

Deno.test("iotlbSync issues TLBI + SYNC for the gathered range, and the stale entry is gone after", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  attach(s, zip, dom);
  const ns = s.drv.map(dom, 0x10_0000, 0x8000_0000, 0x2000, RW);
  assert.ok(ns > 0);
  assert.equal(
    translateNow(s.r, { sid: zip.sid, iova: 0x10_1000, write: false })?.ok,
    true,
  );
  const g = newIotlbGather();
  const { bytes } = s.drv.unmap(dom, 0x10_0000, 0x2000, g);
  assert.equal(bytes, 0x2000);
  assert.ok(
    g.start === 0x10_0000 && g.end === 0x10_2000 && g.pgsize === 0x1000,
  );
  assert.equal(
    translateNow(s.r, { sid: zip.sid, iova: 0x10_1000, write: false })?.ok,
    true,
    "stale until synced",
  );
  let synced = false;
  s.drv.iotlbSync(dom, g, () => (synced = true));
  s.sim.run();
  assert.ok(synced);
  assert.equal(g.end, 0, "the gather is reset");
  const cmds = s.log.at(-1)!;
  assert.deepEqual(cmds, [
    {
      opcode: CMD_TLBI_S2_IPA,
      VMID: dom.vmid,
      Address: 0x10_0000,
      TG: 1,
      NUM: 0,
      SCALE: 1,
      Leaf: true,
    },
    { opcode: CMD_SYNC },
  ]);
  const after = translateNow(s.r, {
    sid: zip.sid,
    iova: 0x10_1000,
    write: false,
  });
  assert.equal(after?.ok, false);
});

Deno.test("range invalidation splits page counts into NUM x 2^SCALE chunks", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(1);
  attach(s, zip, dom);
  s.drv.map(dom, 0, 0x100_0000, 0x64000, RW); // 100 pages = 25 x 2^2
  const g = newIotlbGather();
  s.drv.unmap(dom, 0, 0x64000, g);
  s.drv.iotlbSync(dom, g, () => {});
  s.sim.run();
  const cmds = s.log.at(-1)!;
  assert.deepEqual(cmds[0], {
    opcode: CMD_TLBI_NH_VA,
    VMID: 0,
    ASID: dom.asid,
    Address: 0,
    TG: 1,
    NUM: 24,
    SCALE: 2,
    Leaf: true,
  });
  assert.equal(cmds.length, 2);
});

Deno.test("without range invalidation: one TLBI per page, or one for the whole VMID past tlbiMaxOps", () => {
  const s = setup({ rangeInvalidation: false }, { tlbiMaxOps: 4 });
  const dom = s.drv.domainAllocPaging(2);
  attach(s, zip, dom);
  s.drv.map(dom, 0, 0x100_0000, 0x10000, RW);
  let g = newIotlbGather();
  s.drv.unmap(dom, 0, 0x3000, g);
  s.drv.iotlbSync(dom, g, () => {});
  s.sim.run();
  assert.deepEqual(s.log.at(-1)!.map((c) => c.opcode), [
    CMD_TLBI_S2_IPA,
    CMD_TLBI_S2_IPA,
    CMD_TLBI_S2_IPA,
    CMD_SYNC,
  ]);
  g = newIotlbGather();
  s.drv.unmap(dom, 0x3000, 0x8000, g);
  s.drv.iotlbSync(dom, g, () => {});
  s.sim.run();
  assert.deepEqual(s.log.at(-1)!, [{
    opcode: CMD_TLBI_S12_VMALL,
    VMID: dom.vmid,
  }, { opcode: CMD_SYNC }]);
});

Deno.test("iotlbSync on an ATS device's domain: TLBI, SYNC, then ATC_INV covering the range, SYNC", () => {
  const s = setup();
  const ep = new FakeEndpoint(s.r);
  s.smmu.attachEndpoint(nic.sid, ep);
  const dom = s.drv.domainAllocPaging(2);
  attach(s, nic, dom);
  s.drv.map(dom, 0x3000, 0x9000, 0x2000, RW);
  const g = newIotlbGather();
  s.drv.unmap(dom, 0x3000, 0x2000, g); // pages 3 and 4: span 2^3 pages from 0
  let doneAt = -1;
  const t0 = s.sim.now;
  s.drv.iotlbSync(dom, g, () => (doneAt = s.sim.now));
  s.sim.run();
  assert.deepEqual(s.log.at(-1)!.map((c) => c.opcode), [
    CMD_TLBI_S2_IPA,
    CMD_SYNC,
    CMD_ATC_INV,
    CMD_SYNC,
  ]);
  assert.deepEqual(ep.invalidations.at(-1), [-1, 0, 3]);
  assert.ok(doneAt - t0 >= 2000 + 2 * s.costs["smmu.cmdSync"]);
});

Deno.test("iotlbSyncBlocking: the same commands as iotlbSync, complete on return, costing what the async sync takes", async (t) => {
  for (const dev of [zip, nic]) {
    await t.step(dev.ats ? "ATS device" : "platform device", () => {
      /** Maps 2 pages, caches one in the IOTLB (and ATC), unmaps both. */
      const prepare = () => {
        const s = setup();
        const ep = new FakeEndpoint(s.r);
        if (dev.ats) s.smmu.attachEndpoint(dev.sid, ep);
        const dom = s.drv.domainAllocPaging(2);
        attach(s, dev, dom);
        s.drv.map(dom, 0x3000, 0x9000, 0x2000, RW);
        const r = translateNow(s.r, {
          sid: dev.sid,
          iova: 0x3000,
          write: true,
        });
        assert.equal(r?.ok, true);
        const g = newIotlbGather();
        s.drv.unmap(dom, 0x3000, 0x2000, g);
        return { s, ep, dom, g };
      };
      const a = prepare();
      let doneAt = -1;
      const t0 = a.s.sim.now;
      a.s.drv.iotlbSync(a.dom, a.g, () => (doneAt = a.s.sim.now));
      a.s.sim.run();
      const asyncCmds = a.s.log.at(-1)!;

      const b = prepare();
      const waited: Command[][] = [];
      const orig = b.s.smmu.submitBlocking.bind(b.s.smmu);
      b.s.smmu.submitBlocking = (cmds) => {
        waited.push([...cmds]);
        return orig(cmds);
      };
      const invBefore = b.ep.invalidations.length;
      const ns = b.s.drv.iotlbSyncBlocking(b.dom, b.g);
      assert.equal(b.g.end, 0, "the gather is reset");
      assert.deepEqual(waited, [asyncCmds]);
      assert.equal(b.s.smmu.stats.tlbEntriesInvalidated, 1);
      assert.equal(
        b.s.smmu.translateCached({ sid: dev.sid, iova: 0x3000, write: true }),
        -1,
      );
      assert.equal(
        b.ep.invalidations.length - invBefore,
        dev.ats ? 1 : 0,
        "the ATC invalidation was delivered before returning",
      );
      assert.equal(ns, doneAt - t0);
      assert.equal(b.s.sim.pending, 0, "nothing left on the simulator");
      assert.equal(b.s.drv.iotlbSyncBlocking(b.dom, newIotlbGather()), 0);
    });
  }
});

Deno.test("a stall event becomes a one-fault group (grpid = STAG, LAST); pageResponse SUCCESS sends RESUME Retry", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  s.drv.enableIopf(zip);
  attach(s, zip, dom);
  s.sink.onFault = (dev, f) => {
    s.drv.map(dom, f.addr - (f.addr % 4096), 0x7000_0000, 4096, RW);
    s.drv.pageResponse(dev, f, IOMMU_PAGE_RESP_SUCCESS);
  };
  let res: TxnResult | undefined;
  const t0 = s.sim.now;
  s.smmu.translate(
    { sid: zip.sid, iova: 0x55_5123, write: true },
    (x) => (res = { ...x }),
  );
  s.sim.run();
  assert.equal(s.sink.faults.length, 1);
  const { dev, fault } = s.sink.faults[0]!;
  assert.equal(dev, zip);
  const stag = s.log.find((b) => b[0]?.opcode === CMD_RESUME)![0]!;
  assert.deepEqual(stag, {
    opcode: CMD_RESUME,
    SID: zip.sid,
    STAG: fault.grpid,
    Resp: RESUME_RETRY,
  });
  assert.equal(
    fault.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  );
  assert.equal(fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, 0);
  assert.equal(fault.perm, IOMMU_FAULT_PERM_WRITE);
  assert.equal(fault.addr, 0x55_5123);
  assert.equal(fault.stage, 2);
  assert.equal(fault.ipa, -1, "not nested");
  assert.equal(fault.source, "stall");
  assert.ok(fault.detectedAt > t0);
  assert.ok(res?.ok && res.pa === 0x7000_0123);
  assert.equal(s.drv.stats.stallFaults, 1);
  assert.ok(
    s.sim.now - t0 >=
      s.costs["smmu.irqLatency"] + s.costs["smmu.evtqHandlerPerRecord"],
  );
});

Deno.test("pageResponse INVALID/FAILURE on a stall sends RESUME Abort", () => {
  for (
    const code of [IOMMU_PAGE_RESP_INVALID, IOMMU_PAGE_RESP_FAILURE] as const
  ) {
    const s = setup();
    const dom = s.drv.domainAllocPaging(2);
    s.drv.enableIopf(zip);
    attach(s, zip, dom);
    s.sink.onFault = (dev, f) => s.drv.pageResponse(dev, f, code);
    const res = translateNow(s.r, { sid: zip.sid, iova: 0x1000, write: false });
    assert.equal(res?.ok, false);
    const resume = s.log.find((b) => b[0]?.opcode === CMD_RESUME)![0]!;
    assert.ok(resume.opcode === CMD_RESUME && resume.Resp === RESUME_ABORT);
  }
});

Deno.test("stalls nobody can handle are aborted; non-recoverable events are counted and logged", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  attach(s, zip, dom); // IOPF not enabled, but stall forced below
  s.smmu.writeSte(zip.sid, {
    ...s.smmu.ste(zip.sid)!,
    Config: 6,
    S2VMID: dom.vmid,
    S2TTB: dom.pgtable!.root,
    S2S: true,
    S2R: true,
  });
  s.smmu.submit([{ opcode: CMD_CFGI_STE, SID: zip.sid }, { opcode: CMD_SYNC }]);
  const res = translateNow(s.r, { sid: zip.sid, iova: 0x1000, write: false });
  assert.equal(res?.ok, false);
  assert.equal(s.drv.stats.unhandledStalls, 1);
  assert.equal(s.sink.faults.length, 0);
  s.smmu.writeSte(9, { V: false, Config: 0 });
  translateNow(s.r, { sid: 9, iova: 0, write: false });
  assert.equal(s.drv.stats.nonRecoverable, 1);
  assert.equal(s.drv.stats.eventsById[C_BAD_STE], 1);
  assert.equal(s.drv.eventLog.at(-1)?.name, "C_BAD_STE");
});

function pri(over: Partial<PriEntry>): PriEntry {
  return {
    StreamID: nic.sid,
    SubstreamID: 0,
    SSV: false,
    PRIV: false,
    EXEC: false,
    READ: true,
    WRITE: false,
    LAST: false,
    PRGIndex: 0,
    Address: 0,
    ...over,
  };
}

Deno.test("PRI entries become faults with grpid = PRG index and LAST per entry; responses map to CMD_PRI_RESP", () => {
  const s = setup();
  const ep = new FakeEndpoint(s.r);
  s.smmu.attachEndpoint(nic.sid, ep);
  const dom = s.drv.domainAllocPaging(2);
  attach(s, nic, dom);
  s.drv.enableIopf(nic);
  s.smmu.pageRequest(
    pri({ PRGIndex: 7, Address: 0x1000, SSV: true, SubstreamID: 3 }),
  );
  s.smmu.pageRequest(
    pri({
      PRGIndex: 7,
      Address: 0x2000,
      SSV: true,
      SubstreamID: 3,
      LAST: true,
      WRITE: true,
    }),
  );
  s.sim.run();
  const faults = s.sink.faults.map((x) => x.fault);
  assert.equal(faults.length, 2);
  assert.deepEqual(
    faults.map((
      f,
    ) => [
      f.grpid,
      f.addr,
      (f.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE) !== 0,
    ]),
    [
      [7, 0x1000, false],
      [7, 0x2000, true],
    ],
  );
  assert.equal(faults[1]!.perm, IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE);
  assert.equal(faults[1]!.pasid, 3);
  assert.equal(faults[1]!.source, "pri");
  assert.equal(faults[1]!.stage, 2);
  const cases = [
    [IOMMU_PAGE_RESP_SUCCESS, PRI_RESP_SUCCESS, PRG_RESP_SUCCESS],
    [IOMMU_PAGE_RESP_INVALID, PRI_RESP_INVALID, PRG_RESP_INVALID],
    [IOMMU_PAGE_RESP_FAILURE, PRI_RESP_FAILURE, PRG_RESP_FAILURE],
  ] as const;
  for (const [code, resp, pcie] of cases) {
    s.drv.pageResponse(nic, faults[1]!, code);
    s.sim.run();
    assert.deepEqual(s.log.at(-1), [{
      opcode: CMD_PRI_RESP,
      SID: nic.sid,
      SSID: 3,
      SSV: true,
      GRPID: 7,
      Resp: resp,
    }]);
    assert.deepEqual(ep.responses.at(-1), [3, 7, pcie]);
  }
  assert.deepEqual(s.drv.stats.priResponses, {
    success: 1,
    invalid: 1,
    failure: 1,
  });
});

Deno.test("stop markers are dropped; a page request nobody handles gets mainline's PRI_RESP_DENY, Resp 0b00 = ResponseFailure (IHI0070 4.5.2)", () => {
  const s = setup();
  const ep = new FakeEndpoint(s.r);
  s.smmu.attachEndpoint(nic.sid, ep);
  attach(s, nic, s.drv.domainAllocPaging(2));
  s.smmu.pageRequest(
    pri({ SSV: true, SubstreamID: 2, LAST: true, READ: false }),
  );
  s.smmu.pageRequest(pri({ PRGIndex: 5, LAST: true })); // IOPF not enabled
  s.sim.run();
  assert.equal(s.drv.stats.stopMarkers, 1);
  assert.equal(s.sink.faults.length, 0);
  assert.deepEqual(ep.responses, [[-1, 5, PRG_RESP_FAILURE]]);
  assert.equal(s.drv.stats.priResponses.failure, 1);
});

Deno.test("a PRI queue overflow makes the core discard partial groups, then is acknowledged", () => {
  const s = setup({ priqLog2: 1 });
  const ep = new FakeEndpoint(s.r);
  s.smmu.attachEndpoint(nic.sid, ep);
  attach(s, nic, s.drv.domainAllocPaging(2));
  s.drv.enableIopf(nic);
  for (let i = 0; i < 4; i++) {
    s.smmu.pageRequest(pri({ PRGIndex: i, Address: i * 4096 }));
  }
  s.sim.run();
  assert.equal(s.sink.faults.length, 2);
  assert.equal(s.sink.discards, 1);
  assert.equal(s.drv.stats.priqOverflows, 1);
  assert.ok(!s.smmu.priqOverflowPending);
});

Deno.test("nested: stage-1 faults report stage 1; stage-2 faults report stage 2 with the IPA", () => {
  const s = setup();
  const parent = s.drv.domainAllocPaging(2);
  s.drv.map(parent, 0, 0x1_0000_0000, 0x100_0000, RW); // guest RAM: 16 MiB
  let next = 0x80_0000;
  const guest = new IoPgtable({
    stage: 1,
    allocTable: () => {
      const a = next;
      next += 4096;
      return a;
    },
  });
  s.memory.register(parent.vmid, guest);
  const nested = s.drv.domainAllocNested(parent, {
    s1Ttb: guest.root,
    asid: 12,
    stall: true,
  });
  s.drv.enableIopf(zip);
  attach(s, zip, nested);
  const ste = s.smmu.ste(zip.sid);
  assert.ok(ste && ste.Config === 7 && ste.S2VMID === parent.vmid && ste.S2S);
  assert.equal(s.smmu.cd(ste.S1ContextPtr, 0, parent.vmid)?.ASID, 12);
  guest.map(0x4000_0000, 0x2_0000_0000, 0x1000, RW); // IPA outside guest RAM
  const faults: IommuFault[] = [];
  s.sink.onFault = (dev, f) => {
    faults.push(f);
    s.drv.pageResponse(dev, f, IOMMU_PAGE_RESP_INVALID);
  };
  translateNow(s.r, { sid: zip.sid, iova: 0x1234_5000, write: false }); // stage 1
  translateNow(s.r, { sid: zip.sid, iova: 0x4000_0000, write: false }); // stage 2
  assert.deepEqual(faults.map((f) => [f.stage, f.ipa]), [[1, -1], [
    2,
    0x2_0000_0000,
  ]]);
  assert.equal(
    drainEvents(s.smmu).length,
    0,
    "the driver consumed the records",
  );
  assert.throws(() => s.drv.domainFree(parent), /EBUSY/);
});

Deno.test("nested page requests: the stage comes from an ATOS translation (IHI0070 9.1.4, SMMU_GATOS_PAR.REASON / FADDR), never from the driver walking guest memory", async (t) => {
  for (const atos of [true, false]) {
    await t.step(atos ? "with SMMU_IDR0.ATOS" : "without ATOS", () => {
      const s = setup({ atos });
      const parent = s.drv.domainAllocPaging(2);
      s.drv.map(parent, 0, 0x1_0000_0000, 0x100_0000, RW); // guest RAM
      let next = 0x80_0000;
      const guest = new IoPgtable({
        stage: 1,
        allocTable: () => {
          const a = next;
          next += 4096;
          return a;
        },
      });
      s.memory.register(parent.vmid, guest);
      const nested = s.drv.domainAllocNested(parent, {
        s1Ttb: guest.root,
        asid: 12,
        stall: false,
      });
      s.drv.enableIopf(nic);
      attach(s, nic, nested);
      guest.map(0x4000_0000, 0x2_0000_0000, 0x1000, RW); // IPA outside RAM
      s.smmu.pageRequest(
        pri({ PRGIndex: 1, Address: 0x1234_5000, LAST: true }),
      );
      s.smmu.pageRequest(
        pri({ PRGIndex: 2, Address: 0x4000_0000, LAST: true }),
      );
      s.sim.run();
      const got = s.sink.faults.map((x) => [x.fault.stage, x.fault.ipa]);
      if (atos) {
        // PAR.REASON 0b00 (stage 1) and 0b11 (stage 2 of the output, FADDR).
        assert.deepEqual(got, [[1, -1], [2, 0x2_0000_0000]]);
        assert.equal(s.smmu.stats.atosRequests, 2);
        assert.equal(s.drv.stats.atosLookups, 2);
      } else {
        // Nothing tells the host which stage lacks the page: the request
        // goes to the guest (stage 1), as iommufd delivers nested faults.
        assert.deepEqual(got, [[1, -1], [1, -1]]);
        assert.equal(s.smmu.stats.atosRequests, 0);
      }
      const r = s.smmu.features.atos
        ? s.smmu.atos({ sid: nic.sid, iova: 0x4000_0000 })
        : undefined;
      if (r) assert.ok(r.fault && r.reason === 3 && r.ns > 0);
    });
  }
});

Deno.test("nested parent: unmapping stage 2 also flushes combined entries (TLBI_NH_ALL)", () => {
  const s = setup();
  const parent = s.drv.domainAllocPaging(2);
  const guest = new IoPgtable({ stage: 1 });
  s.memory.register(parent.vmid, guest);
  s.drv.domainAllocNested(parent, { s1Ttb: guest.root, asid: 1, stall: false });
  s.drv.map(parent, 0, 0x1000_0000, 0x1000, RW);
  const g = newIotlbGather();
  s.drv.unmap(parent, 0, 0x1000, g);
  s.drv.iotlbSync(parent, g, () => {});
  s.sim.run();
  assert.deepEqual(s.log.at(-1)!.map((c) => c.opcode), [
    CMD_TLBI_S2_IPA,
    CMD_TLBI_NH_ALL,
    CMD_SYNC,
  ]);
});

Deno.test("map and unmap return their cost from the profile; domains free only when unused", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  const c = s.costs;
  const ns = s.drv.map(dom, 0x20_0000, 0x4000_0000, 0x20_0000, RW); // one 2 MiB block
  assert.equal(ns, c["iommu.mapPerPte"] + 2 * c["iommu.tableAlloc"]);
  assert.equal(s.drv.iovaToPhys(dom, 0x20_0123), 0x4000_0123);
  const g = newIotlbGather();
  const u = s.drv.unmap(dom, 0x20_0000, 0x20_0000, g);
  assert.deepEqual(u, { bytes: 0x20_0000, ns: c["iommu.unmapPerPte"] });
  assert.equal(g.pgsize, 0x20_0000);
  attach(s, zip, dom);
  assert.throws(() => s.drv.domainFree(dom), /EBUSY/);
  s.drv.detachDev(zip, () => {});
  s.sim.run();
  s.drv.domainFree(dom);
  assert.equal(s.memory.resolve(0, dom.pgtable!.root), undefined);
});

Deno.test("flushIotlbAll invalidates the whole VMID and syncs", () => {
  const s = setup();
  const dom = s.drv.domainAllocPaging(2);
  let done = false;
  s.drv.flushIotlbAll(dom, () => (done = true));
  s.sim.run();
  assert.ok(done);
  assert.deepEqual(s.log.at(-1), [{
    opcode: CMD_TLBI_S12_VMALL,
    VMID: dom.vmid,
  }, { opcode: CMD_SYNC }]);
});
