/**
 * JSON text parsing with error positions: `JSON.parse` does not always say
 * where the text is wrong, so on failure a small scanner finds the first bad
 * character and reports its line and column.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The deepest nesting of arrays and objects a scenario file may have. */
export const MAX_JSON_DEPTH = 64;

/**
 * Where `text` first opens an array or object deeper than `max` levels
 * (outside strings), or -1: a linear scan without recursion, so no input
 * can overflow the call stack before the real parse.
 */
function tooDeep(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/**
 * Parses JSON text; on a syntax error throws EINVAL with
 * `<file>:<line>:<column>: invalid JSON: <reason>`; nesting deeper than
 * {@linkcode MAX_JSON_DEPTH} is refused the same way before parsing.
 */
export function parseJsonText(text: string, file: string): JsonValue {
  const deep = tooDeep(text, MAX_JSON_DEPTH);
  if (deep >= 0) {
    const { line, column } = lineColumn(text, deep);
    const where = `${file}:${line}:${column}`;
    throw new IopfLabError(
      "EINVAL",
      `${where}: JSON nested deeper than ${MAX_JSON_DEPTH} levels (a scenario needs a handful)`,
      where,
    );
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    const found = findJsonError(text) ??
      { pos: text.length, reason: (e as Error).message };
    const { line, column } = lineColumn(text, found.pos);
    const where = `${file}:${line}:${column}`;
    throw new IopfLabError(
      "EINVAL",
      `${where}: invalid JSON: ${found.reason}`,
      where,
    );
  }
}

/** 1-based line and column of a character offset. */
export function lineColumn(
  text: string,
  pos: number,
): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: pos - lineStart + 1 };
}

interface JsonError {
  pos: number;
  reason: string;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Scans `text` as JSON; returns the first error or undefined if it is valid. */
function findJsonError(text: string): JsonError | undefined {
  let i = 0;
  const fail = (reason: string): never => {
    throw { pos: i, reason } satisfies JsonError;
  };
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const expectLiteral = (word: string): void => {
    if (!text.startsWith(word, i)) fail(`unexpected character ${show(i)}`);
    i += word.length;
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined) fail("unterminated string");
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (
          e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))
        ) i += 6;
        else fail("bad escape sequence in a string");
        continue;
      }
      if (c!.charCodeAt(0) < 0x20) {
        fail("control character (such as a line break) inside a string");
      }
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === undefined) fail("unexpected end of the file");
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    if (c === "t") return expectLiteral("true");
    if (c === "f") return expectLiteral("false");
    if (c === "n") return expectLiteral("null");
    if (c === "-" || (c! >= "0" && c! <= "9")) {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(text)) fail("bad number");
      i = NUMBER.lastIndex;
      return;
    }
    fail(`unexpected character ${show(i)}`);
  };
  const object = (): void => {
    i++;
    ws();
    if (text[i] === "}") {
      i++;
      return;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') {
        fail(
          text[i] === "}"
            ? "trailing comma before '}'"
            : "expected a property name in double quotes",
        );
      }
      string();
      ws();
      if (text[i] !== ":") fail("expected ':' after the property name");
      i++;
      value();
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return;
      }
      fail("expected ',' or '}' after a property value");
    }
  };
  const array = (): void => {
    i++;
    ws();
    if (text[i] === "]") {
      i++;
      return;
    }
    for (;;) {
      ws();
      if (text[i] === "]") fail("trailing comma before ']'");
      value();
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return;
      }
      fail("expected ',' or ']' after an array element");
    }
  };
  const show = (at: number): string =>
    at >= text.length ? "end of file" : JSON.stringify(text[at]);
  try {
    value();
    ws();
    if (i < text.length) fail("unexpected text after the JSON value");
    return undefined;
  } catch (e) {
    if (typeof e === "object" && e !== null && "reason" in e) {
      return e as JsonError;
    }
    throw e;
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8 `bytes` of a scenario file: invalid bytes are refused
 * (EINVAL naming `where` and the byte offset) rather than silently
 * replaced, and a leading byte order mark is dropped (editors on some
 * systems write one). Trace files are decoded the same way by their reader.
 */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new IopfLabError(
      "EINVAL",
      `${where}: not UTF-8 text (invalid byte at offset ${
        firstInvalidUtf8(bytes)
      })`,
      where,
    );
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Offset of the first byte of `b` that is not valid UTF-8 (its length if none). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80
      ? 0
      : c >= 0xc2 && c < 0xe0
      ? 1
      : c >= 0xe0 && c < 0xf0
      ? 2
      : c >= 0xf0 && c < 0xf5
      ? 3
      : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
    }
    try {
      UTF8.decode(b.subarray(i, i + n + 1));
    } catch {
      return i; // overlong or surrogate
    }
    i += n + 1;
  }
  return b.length;
}
