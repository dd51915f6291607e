import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { exchangeBody, plainExchangeBody } from "../../src/routes/exchange.ts";

/** Values around every bound of the schema, and of every JSON type. */
const edgyString = fc.oneof(fc.string({ maxLength: 3 }), fc.string({ minLength: 95, maxLength: 105 }), fc.string({ minLength: 250, maxLength: 260 }), fc.string({ minLength: 2040, maxLength: 2056 }));
const edgyNumber = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double(), fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 1.5, -0, 1e300));
const anyValue = fc.oneof(edgyString, edgyNumber, fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
const key = fc.constantFrom("access_token", "duration_seconds", "scope", "org", "__proto__", "admin", "0", "constructor");
const validBodies = fc.record(
  {
    access_token: fc.string({ minLength: 1, maxLength: 256 }),
    duration_seconds: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    scope: fc.string({ maxLength: 2048 }),
    org: fc.string({ minLength: 1, maxLength: 100 }),
  },
  { requiredKeys: ["access_token"] },
);

/** Bodies as JSON.parse makes them (so `__proto__` is an own key, as in a request): any, and valid ones with one field changed. */
const asParsed = (o: unknown) => JSON.parse(JSON.stringify(o)) as unknown;
const bodies = fc.oneof(
  fc.dictionary(key, anyValue, { maxKeys: 5 }).map(asParsed),
  anyValue,
  fc.tuple(validBodies, key, anyValue).map(([body, k, v]) => asParsed({ ...body, [k]: v })),
);

describe("plainExchangeBody (the exchange's body checked without zod)", () => {
  it("accepts only what the schema accepts, as the schema returns it", () => {
    fc.assert(
      fc.property(bodies, (raw) => {
        const plain = plainExchangeBody(raw);
        if (plain === undefined) return;
        const parsed = exchangeBody.safeParse(raw);
        expect(parsed.success, JSON.stringify(raw)).toBe(true);
        expect(plain).toEqual(parsed.data);
      }),
      { numRuns: 5000 },
    );
  });

  it("takes every body the schema accepts (so zod runs only for the ones it refuses)", () => {
    fc.assert(
      fc.property(validBodies, (raw) => {
        expect(exchangeBody.safeParse(raw).success).toBe(true);
        expect(plainExchangeBody(raw)).toEqual(raw);
      }),
      { numRuns: 1000 },
    );
  });
});
