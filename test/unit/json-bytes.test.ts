import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accessTokenPayload, type AccessTokenClaims, type ActClaim } from "../../src/domain/signing/jwt.ts";
import { JsonBytes } from "../../src/lib/json-bytes.ts";

const utf8 = new TextEncoder();
/** Strings of every kind: ASCII with quotes, backslashes and control chars, non-ASCII, lone surrogates. */
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: fc.constantFrom("a", '"', "\\", "\n", "\u007f", "\u0000", "é", "\ud800", " ") }));
const number = fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constantFrom(0, -0, 9_007_199_254_740_991, 9_007_199_254_740_992, 1e21, Number.NaN, Infinity));

describe("JsonBytes", () => {
  it("writes the UTF-8 of JSON.stringify for strings, joined strings, string arrays and numbers", () => {
    const json = new JsonBytes();
    fc.assert(
      fc.property(text, fc.array(text), number, (s, list, n) => {
        const written = json.begin().raw("[").string(s).raw(",").joined(list, " ").raw(",").strings(list).raw(",").number(n).raw("]").bytes();
        expect(written).toEqual(utf8.encode(JSON.stringify([s, list.join(" "), list, n])));
      }),
      { numRuns: 2000 },
    );
  });

  it("grows past its first buffer, and starts over at begin()", () => {
    const json = new JsonBytes();
    const long = "x".repeat(5000);
    expect(json.begin().string(long).bytes()).toEqual(utf8.encode(JSON.stringify(long)));
    expect(json.begin().string("é".repeat(3000)).bytes()).toEqual(utf8.encode(JSON.stringify("é".repeat(3000))));
    expect(json.begin().number(42).bytes()).toEqual(utf8.encode("42"));
  });
});

describe("accessTokenPayload", () => {
  const claims = fc.record({
    iss: text,
    sub: text,
    aud: fc.oneof(text, fc.array(text)),
    iat: fc.nat(),
    exp: fc.nat(),
    jti: text,
    client_id: text,
    scope: fc.array(text),
    org_id: fc.option(text),
    groups: fc.array(text),
    roles: fc.array(text),
    source_token_id: fc.option(text),
    source_jtis: fc.array(text, { maxLength: 4 }),
  });

  it("is the UTF-8 of JSON.stringify of the claims (the scope joined, org_id and the source claims left out when empty)", () => {
    fc.assert(
      fc.property(claims, (c: AccessTokenClaims) => {
        const expected = JSON.stringify({
          ...c,
          scope: c.scope.join(" "),
          org_id: c.org_id || undefined,
          source_token_id: c.source_token_id || undefined,
          source_jtis: c.source_jtis?.length ? c.source_jtis : undefined,
        });
        expect(new TextDecoder().decode(accessTokenPayload(c))).toBe(new TextDecoder().decode(utf8.encode(expected)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("accessTokenPayload: DPoP and delegation claims", () => {
  const act: fc.Arbitrary<ActClaim> = fc.letrec<{ act: ActClaim }>((tie) => ({
    act: fc.record({ sub: text, act: fc.option(tie("act"), { nil: undefined, depthSize: "small", maxDepth: 4 }) }, { requiredKeys: ["sub"] }) as fc.Arbitrary<ActClaim>,
  })).act;
  const claims = fc.record({
    iss: text,
    sub: text,
    aud: text,
    iat: fc.nat(),
    exp: fc.nat(),
    jti: text,
    client_id: text,
    scope: fc.array(text),
    org_id: fc.constant(null),
    groups: fc.array(text),
    roles: fc.array(text),
    act_token_ids: fc.array(text, { maxLength: 4 }),
    act_jtis: fc.array(text, { maxLength: 8 }),
    act: fc.option(act, { nil: undefined }),
    jkt: fc.option(text, { nil: undefined }),
  });

  it("writes act_token_ids, act_jtis, the nested act and cnf: {jkt} as JSON.stringify would", () => {
    fc.assert(
      fc.property(claims, (c: AccessTokenClaims) => {
        const strip = (a: ActClaim | undefined): ActClaim | undefined => (a ? { sub: a.sub, ...(a.act ? { act: strip(a.act) } : {}) } : undefined);
        const { jkt, ...rest } = c;
        const expected = JSON.stringify({
          ...rest,
          scope: c.scope.join(" "),
          org_id: undefined,
          act_token_ids: c.act_token_ids?.length ? c.act_token_ids : undefined,
          act_jtis: c.act_jtis?.length ? c.act_jtis : undefined,
          act: strip(c.act),
          cnf: jkt ? { jkt } : undefined,
        });
        expect(JSON.parse(new TextDecoder().decode(accessTokenPayload(c)))).toEqual(JSON.parse(expected));
        expect(new TextDecoder().decode(accessTokenPayload(c))).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});
