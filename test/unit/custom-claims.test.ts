import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accessTokenPayload, KEYWARD_JWT_CLAIM_NAMES, type AccessTokenClaims } from "../../src/domain/signing/jwt.ts";
import { checkClaimMapping, customClaimsOf, customClaimsOfJwt, RESERVED_CLAIM_NAMES } from "../../src/domain/signing/custom-claims.ts";
import { DomainError } from "../../src/domain/shared/errors.ts";

/** Custom claims in the JWT payload writer, and the mapping's evaluation. */

const base: AccessTokenClaims = {
  iss: "https://keyward.example",
  sub: "sa_1",
  aud: ["https://keyward.example", "https://api.example"],
  iat: 1_700_000_000,
  exp: 1_700_000_300,
  jti: "j1",
  client_id: "sa_1",
  scope: ["a.read"],
  org_id: "org_1",
  groups: ["g"],
  roles: ["viewer"],
  source_token_id: "tok_1",
  source_jtis: ["j0"],
  federated: { iss: "https://issuer.example", sub: "repo:acme/web", policy_id: "fed_1" },
  status: { idx: 7, uri: "https://keyward.example/statuslists/0" },
  act_token_ids: ["tok_2"],
  act_jtis: ["j2"],
  act: { sub: "sa_2", act: { sub: "sa_3" } },
  jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
};
const decode = (c: AccessTokenClaims) => new TextDecoder().decode(accessTokenPayload(c));

describe("KEYWARD_JWT_CLAIM_NAMES", () => {
  it("names exactly the claims accessTokenPayload writes when every claim is present", () => {
    expect(Object.keys(JSON.parse(decode(base))).sort()).toEqual([...KEYWARD_JWT_CLAIM_NAMES].sort());
  });

  it("are all reserved for custom claims", () => {
    for (const name of KEYWARD_JWT_CLAIM_NAMES) expect(RESERVED_CLAIM_NAMES.has(name), name).toBe(true);
  });
});

describe("accessTokenPayload with custom claims", () => {
  it("writes them after Keyward's own, JSON-escaped, skipping every name Keyward writes (no duplicate to override ours)", () => {
    const names = fc.oneof(fc.string(), fc.constantFrom(...KEYWARD_JWT_CLAIM_NAMES));
    fc.assert(
      fc.property(fc.dictionary(names, fc.string({ unit: "binary" })), (custom) => {
        const text = decode({ ...base, custom });
        const kept = Object.entries(custom).filter(([k]) => !(KEYWARD_JWT_CLAIM_NAMES as readonly string[]).includes(k));
        const expected = decode(base).slice(0, -1) + kept.map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join("") + "}";
        expect(() => JSON.parse(text)).not.toThrow();
        expect(text).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it("cannot override sub or scope", () => {
    const parsed = JSON.parse(decode({ ...base, custom: { sub: "sa_evil", scope: "platform.root", team: 'x","sub":"sa_evil' } }));
    expect(parsed.sub).toBe("sa_1");
    expect(parsed.scope).toBe("a.read");
    expect(parsed.team).toBe('x","sub":"sa_evil');
  });
});

describe("customClaimsOf", () => {
  const values = { externalId: "ext", metadata: { team: "payments" }, projectId: "prj_1", environmentId: null };

  it("maps each source, leaves out a claim whose source has no value, and skips reserved names in a stored mapping", () => {
    const claims = customClaimsOf(
      [
        { claim: "team", from: "metadata.team" },
        { claim: "ext", from: "externalId" },
        { claim: "project", from: "projectId" },
        { claim: "environment", from: "environmentId" },
        { claim: "missing", from: "metadata.none" },
        { claim: "proto", from: "metadata.toString" },
        { claim: "sub", from: "metadata.team" },
        { claim: "Upper", from: "metadata.team" },
      ],
      values,
    );
    expect(claims).toEqual({ team: "payments", ext: "ext", project: "prj_1" });
  });

  it("is undefined without a mapping or without any value", () => {
    expect(customClaimsOf(undefined, values)).toBeUndefined();
    expect(customClaimsOf([], values)).toBeUndefined();
    expect(customClaimsOf([{ claim: "environment", from: "environmentId" }], values)).toBeUndefined();
  });
});

describe("checkClaimMapping", () => {
  const codeOf = (mapping: { claim: string; from: string }[]) => {
    try {
      checkClaimMapping(mapping);
      return null;
    } catch (err) {
      return (err as DomainError).code;
    }
  };

  it("refuses every reserved name in any casing, and accepts names beside them", () => {
    for (const name of RESERVED_CLAIM_NAMES) {
      expect(codeOf([{ claim: name, from: "externalId" }]), name).toBe("claim_name_reserved");
      expect(codeOf([{ claim: name.toUpperCase(), from: "externalId" }]), name).toBe("claim_name_reserved");
    }
    expect(codeOf([{ claim: "sub_team", from: "externalId" }, { claim: "x_scope", from: "metadata.scope" }])).toBeNull();
  });
});

describe("customClaimsOfJwt", () => {
  it("returns the string claims that are not reserved", () => {
    expect(customClaimsOfJwt({ ...JSON.parse(decode(base)), team: "payments", n: 1, Odd: "x", active: "false" })).toEqual({ team: "payments" });
  });
});
