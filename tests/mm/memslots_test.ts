import assert from "node:assert/strict";
import { Memslots } from "../../lib/mm/memslots.ts";
import { GiB, MiB, throwsCode } from "./_helpers.ts";

Deno.test("Memslots", async (t) => {
  await t.step("maps GPAs to HVAs; -1 outside every slot", () => {
    const s = new Memslots();
    const low = s.add({ gpa: 0, size: 2 * GiB, hva: 0x7f00_0000_0000 });
    const high = s.add({ gpa: 4 * GiB, size: GiB, hva: 0x7f10_0000_0000 });
    assert.equal(s.gpaToHva(0x1234), 0x7f00_0000_1234);
    assert.equal(s.gpaToHva(4 * GiB + 5), 0x7f10_0000_0005);
    assert.equal(s.gpaToHva(2 * GiB), -1);
    assert.equal(s.gpaToHva(5 * GiB), -1);
    assert.equal(s.find(4 * GiB)?.id, high.id);
    assert.equal(s.hvaToGpa(0x7f10_0000_0010), 4 * GiB + 16);
    assert.equal(s.hvaToGpa(1), -1);
    assert.deepEqual([...s].map((x) => x.id), [low.id, high.id]);
    assert.equal(s.count, 2);
  });

  await t.step(
    "overlap is EEXIST, bad ranges EINVAL, unknown id ENOENT",
    () => {
      const s = new Memslots();
      const a = s.add({ gpa: 2 * GiB, size: GiB, hva: 0 });
      throwsCode(
        () => s.add({ gpa: 3 * GiB - 4096, size: 8192, hva: 0 }),
        "EEXIST",
      );
      throwsCode(() => s.add({ gpa: GiB, size: GiB + 4096, hva: 0 }), "EEXIST");
      throwsCode(() => s.add({ gpa: GiB, size: 4 * GiB, hva: 0 }), "EEXIST");
      throwsCode(() => s.add({ gpa: 1, size: MiB, hva: 0 }), "EINVAL");
      throwsCode(() => s.add({ gpa: 0, size: 0, hva: 0 }), "EINVAL");
      s.add({ gpa: GiB, size: GiB, hva: 0 }); // adjacent is fine
      assert.equal(s.remove(a.id).gpa, 2 * GiB);
      throwsCode(() => s.remove(a.id), "ENOENT");
      assert.equal(s.gpaToHva(2 * GiB), -1);
      s.add({ gpa: 2 * GiB, size: GiB, hva: 0 });
      assert.equal(s.count, 2);
    },
  );
});
