import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/context.ts";
import { assertNotBlocked, countFailure, resetBlocks } from "../../src/domain/rate-limit.ts";
import { ApiError } from "../../src/errors.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { expectOAuthError, postForm, type Res } from "./oauth-helpers.ts";
import { freshOrg, issueOk, viewerAccount } from "./token-helpers.ts";

/**
 * Brute-force protection: failed authentications are counted per IP (AUTH_FAILURES_IP, 100 per
 * 60 s in wrangler.toml) and per client id (AUTH_FAILURES_CLIENT, 20 per 60 s); over its limit a
 * key gets 429 with Retry-After, before its credentials are even looked at. Successes are never
 * counted.
 *
 * The bindings count in fixed 60 s windows, so "the (limit+1)th failure is refused" can straddle
 * a window edge; within 2 x limit + 1 attempts a refusal is certain, and never before limit + 1.
 */
const IP_LIMIT = 100;
const CLIENT_LIMIT = 20;
const BLOCK_SECONDS = 60; // RATE_LIMIT_BLOCK_SECONDS

let root: { id: string; token: string };
let setup: { org: { id: string }; adminToken: string; sa: { id: string }; secret: string; other: { id: string }; otherSecret: string };

beforeAll(async () => {
  root = await platformRoot();
  const o = await freshOrg(root.token);
  const sa = await viewerAccount(o.adminToken, o.org.id);
  const other = await viewerAccount(o.adminToken, o.org.id);
  setup = { ...o, sa, secret: (await issueOk(o.adminToken, o.org.id, sa.id)).token, other, otherSecret: (await issueOk(o.adminToken, o.org.id, other.id)).token };
});

beforeEach(() => resetBlocks());

/** A fresh documentation-range IPv6 address per use, so tests never share a counter. */
const freshIp = () => `2001:db8::${crypto.randomUUID().slice(0, 4)}:${crypto.randomUUID().slice(0, 4)}`;

const wrongToken = "sat_" + "A".repeat(38);

/** Sends failing requests until the first 429 (never before `limit` normal failures) and returns it. */
async function failUntilLimited(limit: number, send: () => Promise<Res>, normal: number): Promise<{ limited: Res }> {
  for (let i = 0; i <= 2 * limit; i++) {
    const res = await send();
    if (res.status === 429) {
      expect(i, "refused before the limit").toBeGreaterThanOrEqual(limit);
      return { limited: res };
    }
    expect(res.status, res.text).toBe(normal);
  }
  throw new Error(`no 429 within ${2 * limit + 1} failed attempts`);
}

function expectRetryAfter(res: Res) {
  const seconds = Number(res.headers.get("retry-after"));
  expect(seconds, res.text).toBeGreaterThan(0);
  expect(seconds).toBeLessThanOrEqual(BLOCK_SECONDS);
}

describe("bearer authentication", () => {
  it("failures from one IP are limited: 429 rate_limited with Retry-After, then even a valid token from that IP", async () => {
    const ip = freshIp();
    const { limited } = await failUntilLimited(IP_LIMIT, () => call("GET", "/api/v1/orgs", { token: wrongToken, headers: { "cf-connecting-ip": ip } }), 401);
        expect(limited.headers.get("content-type")).toBe("application/problem+json");
    expect(limited.json.code).toBe("rate_limited");
    expect(limited.json.status).toBe(429);
    expectRetryAfter(limited);
    const valid = await call("GET", `/api/v1/orgs/${setup.org.id}/service-accounts/${setup.sa.id}`, { token: setup.secret, headers: { "cf-connecting-ip": ip } });
    expect(valid.status, "a blocked IP is refused before its credential is checked").toBe(429);
    const elsewhere = await call("GET", `/api/v1/orgs/${setup.org.id}/service-accounts/${setup.sa.id}`, { token: setup.secret, headers: { "cf-connecting-ip": freshIp() } });
    expectStatus(elsewhere, 200);
  });

  it("successes are never counted: 3 x the limit of valid requests from one IP all pass", async () => {
    const ip = freshIp();
    for (let i = 0; i < 3 * IP_LIMIT; i++) {
      const res = await call("GET", `/api/v1/orgs/${setup.org.id}/service-accounts/${setup.sa.id}`, { token: setup.secret, headers: { "cf-connecting-ip": ip } });
      expectStatus(res, 200);
    }
  });
});

describe("token exchange", () => {
  it("guessing access tokens from one IP ends in 429 with Retry-After", async () => {
    const ip = freshIp();
    const { limited } = await failUntilLimited(
      IP_LIMIT,
      () => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: wrongToken }, headers: { "cf-connecting-ip": ip } }),
      401,
    );
        expect(limited.json.code).toBe("rate_limited");
    expectRetryAfter(limited);
    const valid = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: setup.secret }, headers: { "cf-connecting-ip": ip } });
    expect(valid.status).toBe(429);
    expectStatus(await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: setup.secret }, headers: { "cf-connecting-ip": freshIp() } }), 200);
  });
});

describe("/oauth/token", () => {
  it("wrong secrets for one client from many IPs: the client is limited (slow_down, Retry-After); other clients are not", async () => {
    const { limited } = await failUntilLimited(
      CLIENT_LIMIT,
      () => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.sa.id, wrongToken], headers: { "cf-connecting-ip": freshIp() } }),
      401,
    );
        expectOAuthError(limited, 429, "slow_down");
    expectRetryAfter(limited);
    // The right secret is refused too while the client is blocked (its credential is not checked).
    const right = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.sa.id, setup.secret] });
    expectOAuthError(right, 429, "slow_down");
    const other = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.other.id, setup.otherSecret] });
    expectStatus(other, 200);
  });

  it("client_secret_post and introspection count under the client id in the form", async () => {
    const clientId = `sa_${crypto.randomUUID().replaceAll("-", "")}`;
    await failUntilLimited(
      CLIENT_LIMIT,
      () => postForm("/oauth/introspect", { token: "x", client_id: clientId, client_secret: wrongToken }, { headers: { "cf-connecting-ip": freshIp() } }),
      401,
    );
        const tokenEndpoint = await postForm("/oauth/token", { grant_type: "client_credentials", client_id: clientId, client_secret: wrongToken });
    expectOAuthError(tokenEndpoint, 429, "slow_down");
  });

  it("invalid subject tokens of RFC 8693 exchanges are counted per IP", async () => {
    const ip = freshIp();
    const { limited } = await failUntilLimited(
      IP_LIMIT,
      () =>
        postForm(
          "/oauth/token",
          { grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: wrongToken, subject_token_type: "urn:ietf:params:oauth:token-type:access_token" },
          { headers: { "cf-connecting-ip": ip } },
        ),
      400,
    );
        expectOAuthError(limited, 429, "slow_down");
  });
});

describe("the block itself", () => {
  const ctxAt = (now: number, bindings = env) => ({ ...createCtx(bindings, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => now });

  it("lasts RATE_LIMIT_BLOCK_SECONDS, with Retry-After counting down, then lifts", async () => {
    const key = `client:block-${crypto.randomUUID()}`;
    const t0 = Date.now();
    let thrown: unknown;
    for (let i = 0; i <= 2 * CLIENT_LIMIT && !thrown; i++) await countFailure(ctxAt(t0), [key]).catch((err) => (thrown = err));
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).extra.headers?.["retry-after"]).toBe(String(BLOCK_SECONDS));
    const at = (ms: number) => {
      try {
        assertNotBlocked(ctxAt(t0 + ms), () => [key]);
        return null;
      } catch (err) {
        return (err as ApiError).extra.headers?.["retry-after"];
      }
    };
    expect(at(1_000)).toBe("59");
    expect(at(59_500)).toBe("1");
    expect(at(60_001)).toBeNull();
  });

  it("without the AUTH_FAILURES_* bindings nothing is counted or blocked", async () => {
    const { AUTH_FAILURES_IP: _ip, AUTH_FAILURES_CLIENT: _client, ...withoutLimiter } = env;
    const ctx = ctxAt(Date.now(), withoutLimiter as typeof env);
    for (let i = 0; i < 3 * IP_LIMIT; i++) await countFailure(ctx, ["client:unlimited", "ip:192.0.2.1"]);
    expect(() => assertNotBlocked(ctx, () => ["client:unlimited", "ip:192.0.2.1"])).not.toThrow();
  });
});
