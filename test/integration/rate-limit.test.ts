import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { assertNotBlocked, countFailure } from "../../src/domain/credentials/failure-limits.ts";
import { DomainError } from "../../src/domain/shared/errors.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { expectOAuthError, postForm, type Res } from "./oauth-helpers.ts";
import { freshOrg, issueOk, viewerAccount } from "./token-helpers.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

/**
 * Limits on failed authentications (src/domain/rate-limit.ts). The credential is checked first: a
 * valid one is always served, whatever others failed; a failing attempt is counted under one key
 * of the client id it claimed and its IP together (AUTH_FAILURES_CLIENT, 20 per 60 s in
 * wrangler.toml), or of its IP alone when it names no client (AUTH_FAILURES_IP, 100 per 60 s), and
 * once its key is over the limit it is refused with 429 and Retry-After. The management API and
 * the token endpoints count under separate keys.
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

beforeEach(() => resetIsolateState("failure-blocks"));

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
  it("failures from one IP are limited: 429 rate_limited with Retry-After for the failing requests; a valid token from that IP is served", async () => {
    const ip = freshIp();
    const { limited } = await failUntilLimited(IP_LIMIT, () => call("GET", "/api/v1/orgs", { token: wrongToken, headers: { "cf-connecting-ip": ip } }), 401);
    expect(limited.headers.get("content-type")).toBe("application/problem+json");
    expect(limited.json.code).toBe("rate_limited");
    expect(limited.json.status).toBe(429);
    expectRetryAfter(limited);
    const valid = await call("GET", `/api/v1/orgs/${setup.org.id}/service-accounts/${setup.sa.id}`, { token: setup.secret, headers: { "cf-connecting-ip": ip } });
    expect(valid.status, `a valid credential is never refused because others failed: ${valid.text}`).toBe(200);
    const stillFailing = await call("GET", "/api/v1/orgs", { token: wrongToken, headers: { "cf-connecting-ip": ip } });
    expect(stillFailing.status, stillFailing.text).toBe(429);
  });

  it("attack: a client retrying a revoked token from root's address does not lock root out of the management API", async () => {
    const ip = freshIp();
    const revoked = await viewerAccount(setup.adminToken, setup.org.id);
    const issued = await issueOk(setup.adminToken, setup.org.id, revoked.id);
    expectStatus(await call("DELETE", `/api/v1/orgs/${setup.org.id}/service-accounts/${revoked.id}/tokens/${issued.id}`, { token: setup.adminToken }), 204);
    await failUntilLimited(IP_LIMIT, () => call("GET", "/api/v1/orgs", { token: issued.token, headers: { "cf-connecting-ip": ip } }), 401);
    for (let i = 0; i < 3; i++) expectStatus(await call("GET", "/api/v1/orgs", { token: root.token, headers: { "cf-connecting-ip": ip } }), 200);
  });

  it("successes are never counted: 3 x the limit of valid requests from one IP all pass", async () => {
    const ip = freshIp();
    for (let i = 0; i < 3 * IP_LIMIT; i++) {
      const res = await call("GET", `/api/v1/orgs/${setup.org.id}/service-accounts/${setup.sa.id}`, { token: setup.secret, headers: { "cf-connecting-ip": ip } });
      expectStatus(res, 200);
    }
  });

  it("the management API's limits are its own: an address over the token endpoints' limit still gets plain 401s here, and the other way round", async () => {
    const ip = freshIp();
    await failUntilLimited(IP_LIMIT, () => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: wrongToken }, headers: { "cf-connecting-ip": ip } }), 401);
    expectStatus(await call("GET", "/api/v1/orgs", { token: wrongToken, headers: { "cf-connecting-ip": ip } }), 401);
    const other = freshIp();
    await failUntilLimited(IP_LIMIT, () => call("GET", "/api/v1/orgs", { token: wrongToken, headers: { "cf-connecting-ip": other } }), 401);
    expectStatus(await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: wrongToken }, headers: { "cf-connecting-ip": other } }), 401);
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
    // The valid token from the same address is served: only failing attempts are refused.
    expectStatus(await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: setup.secret }, headers: { "cf-connecting-ip": ip } }), 200);
  });
});

describe("/oauth/token", () => {
  it("wrong secrets for one client from one IP: those requests are limited (slow_down, Retry-After); the right secret and other clients are not", async () => {
    const ip = freshIp();
    const { limited } = await failUntilLimited(
      CLIENT_LIMIT,
      () => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.sa.id, wrongToken], headers: { "cf-connecting-ip": ip } }),
      401,
    );
    expectOAuthError(limited, 429, "slow_down");
    expectRetryAfter(limited);
    const right = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.sa.id, setup.secret], headers: { "cf-connecting-ip": ip } });
    expectStatus(right, 200);
    const other = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.other.id, setup.otherSecret], headers: { "cf-connecting-ip": ip } });
    expectStatus(other, 200);
    // The same wrong secret from another address counts under its own key: a plain 401.
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [setup.sa.id, wrongToken], headers: { "cf-connecting-ip": freshIp() } }), 401, "invalid_client");
  });

  it("attack: 22 wrong secrets for a victim's (public) client id, from strangers' addresses or the victim's own, never refuse the victim's correct secret", async () => {
    const victim = await viewerAccount(setup.adminToken, setup.org.id);
    const secret = (await issueOk(setup.adminToken, setup.org.id, victim.id)).token;
    const victimIp = freshIp();
    const strangerIp = freshIp();
    for (const ip of [strangerIp, victimIp]) {
      for (let i = 0; i < CLIENT_LIMIT + 2; i++) {
        const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [victim.id, wrongToken], headers: { "cf-connecting-ip": ip } });
        expect([401, 429], res.text).toContain(res.status);
      }
    }
    for (const ip of [victimIp, strangerIp, freshIp()]) {
      expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [victim.id, secret], headers: { "cf-connecting-ip": ip } }), 200);
      expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials", client_id: victim.id, client_secret: secret }, { headers: { "cf-connecting-ip": ip } }), 200);
    }
  });

  it("client_secret_post and introspection count under the client id in the form and the IP, across the token endpoints", async () => {
    const clientId = `sa_${crypto.randomUUID().replaceAll("-", "")}`;
    const ip = freshIp();
    await failUntilLimited(
      CLIENT_LIMIT,
      () => postForm("/oauth/introspect", { token: "x", client_id: clientId, client_secret: wrongToken }, { headers: { "cf-connecting-ip": ip } }),
      401,
    );
    const tokenEndpoint = await postForm("/oauth/token", { grant_type: "client_credentials", client_id: clientId, client_secret: wrongToken }, { headers: { "cf-connecting-ip": ip } });
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
    expect(thrown).toBeInstanceOf(DomainError);
    expect((thrown as DomainError).data.retryAfterSeconds).toBe(BLOCK_SECONDS);
    const at = (ms: number) => {
      try {
        assertNotBlocked(ctxAt(t0 + ms), () => [key]);
        return null;
      } catch (err) {
        return String((err as DomainError).data.retryAfterSeconds);
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
