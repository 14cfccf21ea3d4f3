import assert from "node:assert/strict";
import {
  decodeUtf8,
  MAX_JSON_DEPTH,
  parseJsonText,
} from "../../lib/sim/json.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

const einval = (fn: () => unknown, text: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert(e instanceof IopfLabError, String(e));
    assert.equal(e.code, "EINVAL");
    assert.match(e.message, text);
    return true;
  });

Deno.test("JSON: nesting is bounded before parsing, so 200,000 levels cannot overflow the stack", () => {
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  einval(
    () => parseJsonText(deep, "s.json"),
    /^s\.json:1:65: JSON nested deeper than 64 levels/,
  );
  const obj = '{"a":'.repeat(200_000) + "1" + "}".repeat(200_000);
  einval(() => parseJsonText(obj, "s.json"), /nested deeper than 64/);
  // Brackets inside strings do not count; the limit itself is allowed.
  const ok = "[".repeat(MAX_JSON_DEPTH) + '"[[[[{{{{\\""' +
    "]".repeat(MAX_JSON_DEPTH);
  assert(Array.isArray(parseJsonText(ok, "s.json")));
  einval(
    () =>
      parseJsonText(
        "[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1),
        "s",
      ),
    /deeper/,
  );
});

Deno.test("UTF-8: invalid bytes are refused with their offset; a byte order mark is dropped", () => {
  const enc = new TextEncoder();
  assert.equal(
    decodeUtf8(enc.encode('{"name":"µs"}'), "s.json"),
    '{"name":"µs"}',
  );
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode("{}")]);
  assert.equal(decodeUtf8(bom, "s.json"), "{}");
  const bad = new Uint8Array([
    ...enc.encode('{"a":"'),
    0xff,
    ...enc.encode('"}'),
  ]);
  einval(
    () => decodeUtf8(bad, "s.json"),
    /^s\.json: not UTF-8 text \(invalid byte at offset 6\)/,
  );
  const overlong = new Uint8Array([0x41, 0xc0, 0xaf]);
  einval(() => decodeUtf8(overlong, "t.csv"), /offset 1\)/);
  const truncated = new Uint8Array([0x41, 0x42, 0xe2, 0x82]);
  einval(() => decodeUtf8(truncated, "t.csv"), /offset 2\)/);
});
