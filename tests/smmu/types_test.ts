import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CLASS_TT,
  CMD_ATC_INV,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_SYNC,
  CMD_TLBI_NH_VA,
  type Command,
  decodeCommand,
  decodeEvent,
  decodePriEntry,
  encodeCommand,
  encodeEvent,
  encodePriEntry,
  type EventRecord,
  F_TRANSLATION,
  isStopMarker,
  isTranslationFault,
  type PriEntry,
  RESUME_RETRY,
} from "../../lib/smmu/mod.ts";

const u16 = fc.nat(0xffff);
const u20 = fc.nat(0xfffff);
const u32 = fc.tuple(u16, u16).map(([a, b]) => a * 65536 + b);
/** Any address below 2^52. */
const addr = fc.tuple(u20, u32).map(([hi, lo]) => hi * 2 ** 32 + lo);
/** A 4 KiB aligned address below 2^52. */
const page = addr.map((a) => a - (a % 4096));

const eventArb: fc.Arbitrary<EventRecord> = fc.record({
  ID: fc.nat(0xff),
  SSV: fc.boolean(),
  SubstreamID: u20,
  StreamID: u32,
  STAG: u16,
  Stall: fc.boolean(),
  PnU: fc.boolean(),
  InD: fc.boolean(),
  RnW: fc.boolean(),
  S2: fc.boolean(),
  CLASS: fc.constantFrom(0 as const, 1 as const, 2 as const),
  InputAddr: addr,
  IPA: page,
});

const priArb: fc.Arbitrary<PriEntry> = fc.record({
  StreamID: u32,
  SubstreamID: u20,
  SSV: fc.boolean(),
  PRIV: fc.boolean(),
  EXEC: fc.boolean(),
  READ: fc.boolean(),
  WRITE: fc.boolean(),
  LAST: fc.boolean(),
  PRGIndex: fc.nat(0x1ff),
  Address: page,
});

const range = {
  Address: page,
  NUM: fc.nat(31),
  SCALE: fc.nat(31),
  TG: fc.nat(3),
  TTL: fc.nat(3),
  Leaf: fc.boolean(),
};

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    opcode: fc.constant(0x01 as const),
    SID: u32,
    SSID: u20,
    SSV: fc.boolean(),
  }),
  fc.record({
    opcode: fc.constant(0x03 as const),
    SID: u32,
    Leaf: fc.boolean(),
  }),
  fc.record({
    opcode: fc.constant(0x04 as const),
    SID: u32,
    Range: fc.nat(31),
  }),
  fc.record({
    opcode: fc.constant(0x05 as const),
    SID: u32,
    SSID: u20,
    Leaf: fc.boolean(),
  }),
  fc.record({ opcode: fc.constant(0x06 as const), SID: u32 }),
  fc.record({ opcode: fc.constant(0x10 as const), VMID: u16 }),
  fc.record({ opcode: fc.constant(0x11 as const), VMID: u16, ASID: u16 }),
  fc.record({
    opcode: fc.constant(0x12 as const),
    VMID: u16,
    ASID: u16,
    ...range,
  }),
  fc.record({ opcode: fc.constant(0x13 as const), VMID: u16, ...range }),
  fc.record({ opcode: fc.constant(0x20 as const) }),
  fc.record({ opcode: fc.constant(0x28 as const), VMID: u16 }),
  fc.record({ opcode: fc.constant(0x2a as const), VMID: u16, ...range }),
  fc.record({ opcode: fc.constant(0x30 as const) }),
  fc.record({
    opcode: fc.constant(0x40 as const),
    SID: u32,
    SSID: u20,
    SSV: fc.boolean(),
    G: fc.boolean(),
    Address: page,
    Size: fc.nat(63),
  }),
  fc.record({
    opcode: fc.constant(0x41 as const),
    SID: u32,
    SSID: u20,
    SSV: fc.boolean(),
    GRPID: fc.nat(0x1ff),
    Resp: fc.nat(3),
  }),
  fc.record({
    opcode: fc.constant(0x44 as const),
    SID: u32,
    STAG: u16,
    Resp: fc.nat(3),
  }),
  fc.record({ opcode: fc.constant(0x45 as const), SID: u32 }),
  fc.record({ opcode: fc.constant(0x46 as const), CS: fc.nat(3) }),
);

Deno.test("event records round-trip through their 32-byte layout", () => {
  fc.assert(fc.property(eventArb, (e) => {
    const words = new Uint32Array(8 + 3);
    encodeEvent(e, words, 3);
    assert.deepEqual(decodeEvent(words, 3), { ...e });
  }));
});

Deno.test("event record fields sit at their architected bits", () => {
  const w = new Uint32Array(8);
  encodeEvent({
    ID: F_TRANSLATION,
    SSV: true,
    SubstreamID: 5,
    StreamID: 0x1234,
    STAG: 0xbeef,
    Stall: true,
    PnU: false,
    InD: false,
    RnW: true,
    S2: true,
    CLASS: CLASS_TT,
    InputAddr: 0x12_3456_7890,
    IPA: 0xab_cdef_f000,
  }, w);
  assert.equal(w[0]! & 0xff, 0x10); // ID [7:0]
  assert.equal((w[0]! >>> 11) & 1, 1); // SSV bit 11
  assert.equal(w[0]! >>> 12, 5); // SubstreamID [31:12]
  assert.equal(w[1], 0x1234); // StreamID [63:32]
  assert.equal(w[2]! & 0xffff, 0xbeef); // STAG
  assert.equal(w[2]! >>> 31, 1); // Stall: bit 31 of dword 1
  assert.equal((w[3]! >>> 3) & 1, 1); // RnW bit 35
  assert.equal((w[3]! >>> 7) & 1, 1); // S2 bit 39
  assert.equal((w[3]! >>> 8) & 3, CLASS_TT); // CLASS [41:40]
  assert.equal(w[5]! * 2 ** 32 + w[4]!, 0x12_3456_7890); // InputAddr
  assert.equal(w[7]! * 2 ** 32 + w[6]!, 0xab_cdef_f000); // IPA [51:12]
});

Deno.test("commands round-trip through their 16-byte layout", () => {
  fc.assert(fc.property(commandArb, (c) => {
    const words = new Uint32Array(4);
    encodeCommand(c, words);
    assert.deepEqual(decodeCommand(words), { ...c });
  }));
});

Deno.test("command fields sit at their architected bits", async (t) => {
  const w = new Uint32Array(4);
  await t.step("opcode in bits [7:0]", () => {
    encodeCommand({ opcode: CMD_SYNC }, w);
    assert.equal(w[0], 0x46);
  });
  await t.step("CMD_RESUME: Resp [13:12], SID [63:32], STAG in dword 1", () => {
    encodeCommand({
      opcode: CMD_RESUME,
      SID: 7,
      STAG: 0x55,
      Resp: RESUME_RETRY,
    }, w);
    assert.deepEqual([...w], [0x44 | (1 << 12), 7, 0x55, 0]);
  });
  await t.step(
    "CMD_PRI_RESP: SSV bit 11, SSID [31:12]; GRPID [8:0], Resp [13:12] of dword 1",
    () => {
      encodeCommand({
        opcode: CMD_PRI_RESP,
        SID: 3,
        SSID: 9,
        SSV: true,
        GRPID: 0x1ff,
        Resp: 2,
      }, w);
      assert.deepEqual([...w], [
        0x41 | (1 << 11) | (9 << 12),
        3,
        0x1ff | (2 << 12),
        0,
      ]);
    },
  );
  await t.step(
    "CMD_TLBI_NH_VA: VMID [47:32], ASID [63:48], NUM/SCALE, TG, address",
    () => {
      encodeCommand({
        opcode: CMD_TLBI_NH_VA,
        VMID: 2,
        ASID: 3,
        Address: 0x1_0000_2000,
        NUM: 4,
        SCALE: 5,
        TG: 1,
        Leaf: true,
      }, w);
      assert.equal(w[0], 0x12 | (4 << 12) | (5 << 20));
      assert.equal(w[1], 2 | (3 << 16));
      assert.equal(w[2], 0x2000 | (1 << 10) | 1);
      assert.equal(w[3], 1);
    },
  );
  await t.step("CMD_ATC_INV: Global bit 9, Size [5:0] of dword 1", () => {
    encodeCommand({
      opcode: CMD_ATC_INV,
      SID: 1,
      G: true,
      Address: 0x4000,
      Size: 52,
    }, w);
    assert.equal(w[0], 0x40 | (1 << 9));
    assert.equal(w[2], 0x4000 | 52);
  });
  await t.step("unknown opcodes do not decode", () => {
    assert.throws(
      () => decodeCommand(new Uint32Array([0x99, 0, 0, 0])),
      RangeError,
    );
  });
});

Deno.test("PRI queue entries round-trip through their 16-byte layout", () => {
  fc.assert(fc.property(priArb, (e) => {
    const words = new Uint32Array(4);
    encodePriEntry(e, words);
    assert.deepEqual(decodePriEntry(words), { ...e });
  }));
});

Deno.test("PRI entry flags sit at bits 58-63 and the PRG index in [72:64]", () => {
  const w = new Uint32Array(4);
  encodePriEntry({
    StreamID: 1,
    SubstreamID: 2,
    SSV: true,
    PRIV: false,
    EXEC: false,
    READ: false,
    WRITE: true,
    LAST: true,
    PRGIndex: 0x101,
    Address: 0x7000,
  }, w);
  assert.equal(w[1], (2 | (1 << 29) | (1 << 30) | 0x80000000) >>> 0);
  assert.equal(w[2], 0x7000 | 0x101);
});

Deno.test("stop markers and translation faults are recognised", () => {
  const base: PriEntry = {
    StreamID: 1,
    SubstreamID: 4,
    SSV: true,
    PRIV: false,
    EXEC: false,
    READ: false,
    WRITE: false,
    LAST: true,
    PRGIndex: 0,
    Address: 0,
  };
  assert.ok(isStopMarker(base));
  assert.ok(!isStopMarker({ ...base, SSV: false })); // no PASID: a page request
  assert.ok(!isStopMarker({ ...base, READ: true }));
  assert.ok(isTranslationFault(0x10) && isTranslationFault(0x13));
  assert.ok(!isTranslationFault(0x04) && !isTranslationFault(0x20));
});
