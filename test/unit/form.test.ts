import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { eachFormPair } from "../../src/lib/form.ts";

const pairsOf = (text: string) => {
  const pairs: [string, string][] = [];
  eachFormPair(text, (name, value) => pairs.push([name, value]));
  return pairs;
};

/** Texts made of the characters that matter to the parser, and any others. */
const formText = fc.oneof(
  fc.string({ unit: fc.constantFrom("a", "b", "=", "&", "?", "%", "+", "2", "0", "é", "😀", " ") }),
  fc.string({ unit: "grapheme" }),
);

describe("eachFormPair", () => {
  it("gives the pairs URLSearchParams gives, in order, for any text", () => {
    fc.assert(
      fc.property(formText, (text) => {
        expect(pairsOf(text)).toEqual([...new URLSearchParams(text)]);
      }),
      { numRuns: 2000 },
    );
  });

  it("splits the usual bodies in place", () => {
    expect(pairsOf("grant_type=client_credentials&scope=a")).toEqual([["grant_type", "client_credentials"], ["scope", "a"]]);
    expect(pairsOf("?a=1&&b&=c&d==e&")).toEqual([["a", "1"], ["b", ""], ["", "c"], ["d", "=e"]]);
    expect(pairsOf("")).toEqual([]);
  });
});
