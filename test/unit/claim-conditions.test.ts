import { describe, expect, it } from "vitest";
import { claimValue, matchesPattern, MAX_CLAIM_VALUE_LENGTH, patternProblem, policyMatches } from "../../src/domain/credentials/claim-conditions.ts";
import { parseAllowedIssuers } from "../../src/env.ts";

/**
 * The trust policies' claim rule (src/domain/credentials/claim-conditions.ts, docs/federation.md):
 * exact values, `*` within one `:` segment, `**` across segments, string or array claims.
 */

/** Claims shaped exactly like a GitHub Actions ID token's (docs.github.com, "About security hardening with OpenID Connect"). */
const github = {
  iss: "https://token.actions.githubusercontent.com",
  aud: "https://keyward.example.com",
  sub: "repo:acme/deploy-bot:environment:prod",
  repository: "acme/deploy-bot",
  repository_owner: "acme",
  repository_owner_id: "1234",
  ref: "refs/heads/main",
  ref_type: "branch",
  environment: "prod",
  job_workflow_ref: "acme/deploy-bot/.github/workflows/deploy.yml@refs/heads/main",
  actor: "octocat",
  run_id: "9876543210",
  event_name: "push",
};

/** A Kubernetes projected service-account token's claims. */
const kubernetes = {
  iss: "https://oidc.cluster.example.com",
  sub: "system:serviceaccount:payments:deployer",
  aud: ["https://keyward.example.com"],
  "kubernetes.io": { namespace: "payments", serviceaccount: { name: "deployer", uid: "5c1f" }, pod: { name: "deployer-7d9f", uid: "aa01" } },
};

describe("matchesPattern: exact values", () => {
  it("a pattern without * is compared exactly, case and all", () => {
    expect(matchesPattern("refs/heads/main", "refs/heads/main")).toBe(true);
    expect(matchesPattern("refs/heads/main", "refs/heads/Main")).toBe(false);
    expect(matchesPattern("refs/heads/main", "refs/heads/main2")).toBe(false);
    expect(matchesPattern("refs/heads/main", "xrefs/heads/main")).toBe(false);
  });

  it("? [ ] . + ( ) and backslashes are literal", () => {
    expect(matchesPattern("a?c", "abc")).toBe(false);
    expect(matchesPattern("a?c", "a?c")).toBe(true);
    expect(matchesPattern("[ab]", "a")).toBe(false);
    expect(matchesPattern("a.c*", "abcd")).toBe(false);
    expect(matchesPattern("a.c*", "a.cd")).toBe(true);
    expect(matchesPattern("(x)+\\*", "(x)+\\y")).toBe(true);
    expect(matchesPattern("(x)+\\*", "(x)(x)+\\y")).toBe(false);
  });
});

describe("matchesPattern: * stays within a ':' segment", () => {
  it("repo:acme/*:environment:prod matches one repository of acme", () => {
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme/deploy-bot:environment:prod")).toBe(true);
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme/:environment:prod")).toBe(true);
  });

  it("repo:acme/*:environment:prod does NOT match repo:acme/x:y:environment:prod", () => {
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme/x:y:environment:prod")).toBe(false);
  });

  it("** crosses ':'", () => {
    expect(matchesPattern("repo:acme/**:environment:prod", "repo:acme/x:y:environment:prod")).toBe(true);
    expect(matchesPattern("repo:acme/**", "repo:acme/x:ref:refs/heads/main")).toBe(true);
    expect(matchesPattern("**:environment:prod", "repo:a/b:environment:prod")).toBe(true);
  });

  it("* does not reach into another owner, or past the end", () => {
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme-evil/x:environment:prod")).toBe(false);
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme/x:environment:prod2")).toBe(false);
    expect(matchesPattern("repo:acme/*:environment:prod", "repo:acme/x:environment:prod:extra")).toBe(false);
    expect(matchesPattern("repo:acme/*", "repo:acme/x:environment:prod")).toBe(false);
  });

  it("several stars, at the ends and in the middle", () => {
    expect(matchesPattern("*/deploy-*", "acme/deploy-bot")).toBe(true);
    expect(matchesPattern("*/deploy-*", "acme/build-bot")).toBe(false);
    expect(matchesPattern("a*b*c", "aXbYc")).toBe(true);
    expect(matchesPattern("a*b*c", "abc")).toBe(true);
    expect(matchesPattern("a*b*c", "acb")).toBe(false);
    expect(matchesPattern("a*:**", "ab:c:d")).toBe(true);
    expect(matchesPattern("a*:**", "a:b")).toBe(true);
    expect(matchesPattern("a**b", "a:::b")).toBe(true);
    expect(matchesPattern("a*b", "a:b")).toBe(false);
  });

  it("stays linear on a pattern that would backtrack (many stars, a long value)", () => {
    const pattern = `${"a*".repeat(100)}b`;
    const value = "a".repeat(MAX_CLAIM_VALUE_LENGTH);
    const started = Date.now();
    expect(matchesPattern(pattern, value)).toBe(false);
    expect(matchesPattern(pattern, `${value.slice(1)}b`)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("a value over the length bound matches nothing, not even **-ish patterns", () => {
    expect(matchesPattern("x**", `x${"y".repeat(MAX_CLAIM_VALUE_LENGTH)}`)).toBe(false);
  });
});

describe("patternProblem: what a policy may not hold", () => {
  it("refuses empty, too long, *** and star-only patterns; takes the rest", () => {
    expect(patternProblem("")).toMatch(/empty/);
    expect(patternProblem("x".repeat(257))).toMatch(/256/);
    expect(patternProblem("x".repeat(256))).toBeNull();
    expect(patternProblem("a***b")).toMatch(/Three/);
    expect(patternProblem("*")).toMatch(/every value/);
    expect(patternProblem("**")).toMatch(/every value/);
    expect(patternProblem("repo:acme/*:environment:prod")).toBeNull();
    expect(patternProblem("repo:acme/**")).toBeNull();
  });

  it("an unusable pattern matches nothing", () => {
    expect(matchesPattern("*", "anything")).toBe(false);
    expect(matchesPattern("a***", "abc")).toBe(false);
    expect(matchesPattern("", "")).toBe(false);
  });
});

describe("claimValue: top-level and nested claims", () => {
  it("reads a top-level claim, and a dotted path into kubernetes.io", () => {
    expect(claimValue(github, "environment")).toBe("prod");
    expect(claimValue(kubernetes, "kubernetes.io.namespace")).toBe("payments");
    expect(claimValue(kubernetes, "kubernetes.io.serviceaccount.name")).toBe("deployer");
    expect(claimValue(kubernetes, "kubernetes.io.missing")).toBeUndefined();
    expect(claimValue(kubernetes, "kubernetes")).toBeUndefined();
  });

  it("never reads inherited properties", () => {
    expect(claimValue({}, "constructor")).toBeUndefined();
    expect(claimValue({ a: {} }, "a.toString")).toBeUndefined();
    expect(claimValue({}, "__proto__")).toBeUndefined();
  });
});

describe("policyMatches", () => {
  it("GitHub Actions: subject exact, and glob conditions on other claims", () => {
    expect(policyMatches({ subject: "repo:acme/deploy-bot:environment:prod", claims: {} }, github)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { sub: "repo:acme/*:environment:prod", ref: "refs/heads/main" } }, github)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { job_workflow_ref: "acme/deploy-bot/.github/workflows/*@refs/heads/main" } }, github)).toEqual({ ok: true });
  });

  it("subject is exact: a glob in subject is a literal", () => {
    const result = policyMatches({ subject: "repo:acme/*:environment:prod", claims: {} }, github);
    expect(result.ok).toBe(false);
    expect(result).toEqual({ ok: false, reason: "sub does not equal the policy's subject" });
  });

  it("every condition must hold; the reason names the failing claim, never its value", () => {
    const result = policyMatches({ subject: "repo:acme/deploy-bot:environment:prod", claims: { ref: "refs/heads/main", environment: "staging" } }, github);
    expect(result).toEqual({ ok: false, reason: "claim environment does not match" });
    expect(JSON.stringify(result)).not.toContain("prod");
  });

  it("a missing claim fails", () => {
    expect(policyMatches({ subject: null, claims: { workflow: "deploy" } }, github)).toEqual({ ok: false, reason: "claim workflow is missing" });
    expect(policyMatches({ subject: "x", claims: {} }, { iss: "i" })).toEqual({ ok: false, reason: "sub does not equal the policy's subject" });
  });

  it("array claims: any string element may match", () => {
    const claims = { sub: "s", groups: ["dev", "ops:prod"], mixed: [1, { a: "ops" }, "ops"] };
    expect(policyMatches({ subject: null, claims: { groups: "ops:*" } }, claims)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { groups: "admin" } }, claims).ok).toBe(false);
    expect(policyMatches({ subject: null, claims: { mixed: "ops" } }, claims)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { groups: "dev" } }, { groups: [] }).ok).toBe(false);
  });

  it("numbers, booleans, objects and null never match (no coercion)", () => {
    const claims = { n: 12, b: true, o: { x: "1" }, z: null };
    expect(policyMatches({ subject: null, claims: { n: "12" } }, claims).ok).toBe(false);
    expect(policyMatches({ subject: null, claims: { b: "true" } }, claims).ok).toBe(false);
    expect(policyMatches({ subject: null, claims: { o: "[object Object]" } }, claims).ok).toBe(false);
    expect(policyMatches({ subject: null, claims: { z: "null" } }, claims).ok).toBe(false);
  });

  it("Kubernetes: the service account by sub, the namespace by the nested claim", () => {
    expect(policyMatches({ subject: "system:serviceaccount:payments:deployer", claims: { "kubernetes.io.namespace": "payments" } }, kubernetes)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { sub: "system:serviceaccount:payments:*" } }, kubernetes)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { sub: "system:serviceaccount:*" } }, kubernetes).ok).toBe(false);
    expect(policyMatches({ subject: null, claims: { "kubernetes.io.namespace": "pay*" } }, kubernetes)).toEqual({ ok: true });
    expect(policyMatches({ subject: null, claims: { "kubernetes.io.namespace": "billing" } }, kubernetes).ok).toBe(false);
  });

  it("a policy with no condition matches nothing", () => {
    expect(policyMatches({ subject: null, claims: {} }, github)).toEqual({ ok: false, reason: "the policy has no condition" });
  });
});

describe("parseAllowedIssuers (FEDERATION_ALLOWED_ISSUERS)", () => {
  const publicIssuer = "https://keyward.example.com";
  const loopbackIssuer = "http://localhost:8787";

  it("takes https issuers exactly as written, deduplicated; empty means federation off", () => {
    expect(parseAllowedIssuers([], publicIssuer)).toEqual([]);
    expect(parseAllowedIssuers(["https://token.actions.githubusercontent.com", "https://gitlab.com", "https://gitlab.com"], publicIssuer)).toEqual([
      "https://token.actions.githubusercontent.com",
      "https://gitlab.com",
    ]);
    expect(parseAllowedIssuers(["https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"], publicIssuer)).toEqual(["https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"]);
  });

  it("refuses http, other schemes, queries, fragments, credentials and garbage", () => {
    for (const bad of ["http://gitlab.com", "ftp://x.example", "https://x.example/?a=1", "https://x.example/#f", "https://u:p@x.example", "gitlab.com", "https://x.example?"]) {
      expect(() => parseAllowedIssuers([bad], publicIssuer), bad).toThrow(/FEDERATION_ALLOWED_ISSUERS/);
    }
  });

  it("loopback http only when ISSUER itself is loopback", () => {
    expect(parseAllowedIssuers(["http://127.0.0.1:9999", "http://localhost:1234"], loopbackIssuer)).toEqual(["http://127.0.0.1:9999", "http://localhost:1234"]);
    expect(() => parseAllowedIssuers(["http://127.0.0.1:9999"], publicIssuer)).toThrow(/loopback/);
    expect(() => parseAllowedIssuers(["http://10.0.0.1:9999"], loopbackIssuer)).toThrow();
    expect(() => parseAllowedIssuers(["http://localhost.evil.example"], loopbackIssuer)).toThrow();
  });
});
