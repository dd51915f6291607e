import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utf8ByteString } from "../../src/lib/text.ts";

const utf8 = new TextEncoder();

describe("utf8ByteString", () => {
  it("is one char per UTF-8 byte; ASCII comes back as it is", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        const bytes = utf8ByteString(text);
        expect(Uint8Array.from(bytes, (c) => c.charCodeAt(0))).toEqual(utf8.encode(text));
      }),
    );
    const ascii = "sat_abc.DEF-_~";
    expect(utf8ByteString(ascii)).toBe(ascii);
  });
});
