/**
 * Golden-file comparison of SVG figures: ids and Plot's class names are
 * normalised and numbers rounded before comparing with
 * tests/plot/__snapshots__/<name>.svg.golden (an extension deno fmt leaves
 * alone). Run with UPDATE_GOLDEN=1 to rewrite the files after an intended
 * change (and review the diff).
 *
 * @module
 */
import assert from "node:assert/strict";

const DIR = new URL("./__snapshots__/", import.meta.url);

/** The SVG with volatile parts normalised, one tag per line. */
export function normaliseSvg(svg: string): string {
  return svg
    .replace(/plot-[0-9a-f]{6}/g, "plot-X")
    .replace(/(plot-clip|plot-legend-ramp)-[0-9]+/g, "$1-N")
    .replace(
      /-?[0-9]+\.[0-9]+(e[-+]?[0-9]+)?/g,
      (m) => String(Number(Number(m).toFixed(2))),
    )
    .replaceAll("><", ">\n<");
}

/** Compares `svg` with the golden file `name`.svg.golden (writing it when missing or asked to). */
export function assertGolden(name: string, svg: string): void {
  const file = new URL(`${name}.svg.golden`, DIR);
  const actual = normaliseSvg(svg) + "\n";
  let expected: string | undefined;
  try {
    expected = Deno.readTextFileSync(file);
  } catch {
    expected = undefined;
  }
  if (expected === undefined || Deno.env.get("UPDATE_GOLDEN") === "1") {
    Deno.mkdirSync(DIR, { recursive: true });
    Deno.writeTextFileSync(file, actual);
    return;
  }
  assert.equal(
    actual,
    expected,
    `${name}.svg.golden differs from the golden file (UPDATE_GOLDEN=1 to accept)`,
  );
}

/** Asserts that `svg` is well-formed XML with a single <svg> root in the SVG namespace. */
export function assertWellFormedSvg(svg: string): void {
  assert.ok(svg.startsWith("<svg "), svg.slice(0, 40));
  assert.ok(svg.endsWith("</svg>"));
  assert.match(
    svg.slice(0, svg.indexOf(">")),
    /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
  );
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  let roots = 0;
  while (i < svg.length) {
    const lt = svg.indexOf("<", i);
    const text = svg.slice(i, lt < 0 ? svg.length : lt);
    assert.ok(
      !/&(?!(amp|lt|gt|quot|#[0-9]+);)/.test(text),
      `bad entity in ${text}`,
    );
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    assert.ok(m, `malformed tag at ${lt}: ${svg.slice(lt, lt + 60)}`);
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
    i = tag.lastIndex;
  }
  assert.deepEqual(stack, []);
  assert.equal(roots, 1);
}

/** Width and height of a PNG from its IHDR chunk, after checking the signature. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
  ]);
  assert.equal(new TextDecoder().decode(png.subarray(12, 16)), "IHDR");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what resvg writes) and
 * counts the pixels that are not near white: the ink on a white background.
 */
export async function inkPixels(png: Uint8Array): Promise<number> {
  const { width, height } = pngSize(png);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const colorType = png[25];
  assert.equal(png[24], 8, "bit depth 8");
  assert.ok(colorType === 2 || colorType === 6, `color type ${colorType}`);
  const channels = colorType === 6 ? 4 : 3;
  const idat: Uint8Array[] = [];
  for (let off = 8; off < png.length;) {
    const len = view.getUint32(off);
    const type = new TextDecoder().decode(png.subarray(off + 4, off + 8));
    if (type === "IDAT") idat.push(png.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const stream = new Blob(idat as BlobPart[]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const stride = width * channels;
  assert.equal(raw.length, height * (stride + 1));
  const prev = new Uint8Array(stride);
  const cur = new Uint8Array(stride);
  let ink = 0;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? cur[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      const x = line[i]!;
      let v: number;
      if (filter === 0) v = x;
      else if (filter === 1) v = x + a;
      else if (filter === 2) v = x + b;
      else if (filter === 3) v = x + ((a + b) >> 1);
      else {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      cur[i] = v & 0xff;
    }
    for (let i = 0; i < stride; i += channels) {
      if (cur[i]! < 200 || cur[i + 1]! < 200 || cur[i + 2]! < 200) ink++;
    }
    prev.set(cur);
  }
  return ink;
}
