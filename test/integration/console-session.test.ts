import { env } from "cloudflare:workers";
import * as jose from "jose";
import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot } from "../helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, sessionCookieOf } from "./console-helpers.ts";
import { auditRows, expectUnauthenticated } from "./registry-helpers.ts";
import { viewerAccount } from "./token-helpers.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { liveAccountRecord } from "../../src/domain/credentials/record-cache.ts";
import { mintJwt } from "../../src/domain/signing/jwt.ts";

const ISSUER = "http://localhost:8787";
const jwtOf = (cookie: string) => cookie.slice("kw_session=".length);

describe("console sign-in", () => {
  it("signs in with an access token: a session cookie that is HttpOnly, SameSite=Strict, Path=/console, Secure off localhost", async () => {
    const root = await platformRoot();
    const res = await consolePost("/console/login", null, { token: root.token });
    expectRedirect(res, "/console");
    const set = res.headers.getSetCookie().find((c) => c.startsWith("kw_session="))!;
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
    expect(set).toMatch(/Path=\/console/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/Max-Age=(\d+)/);
    expect(Number(/Max-Age=(\d+)/.exec(set)![1])).toBeLessThanOrEqual(3600);
    // The cookie is a session JWT, never the credential.
    const cookie = sessionCookieOf(res)!;
    expect(cookie).not.toContain(root.token);
    const claims = jose.decodeJwt(jwtOf(cookie));
    expect(claims.aud).toBe(`${ISSUER}/console`);
    expect(claims.sub).toBe(root.id);
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(3600);
    const home = expectPage(await consoleGet("/console", cookie));
    expect(home).toContain("Organizations");
  });

  it("the cookie is not Secure on localhost", async () => {
    const root = await platformRoot();
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch(
      new Request("http://localhost/console/login", {
        method: "POST",
        body: new URLSearchParams({ token: root.token }),
        headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://localhost" },
        redirect: "manual",
      }),
    );
    expect(res.status).toBe(303);
    const set = res.headers.getSetCookie().find((c) => c.startsWith("kw_session="))!;
    expect(set).not.toMatch(/Secure/);
  });

  it("audits console.session.opened", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const jti = jose.decodeJwt(jwtOf(cookie)).jti!;
    const rows = await auditRows(jti);
    expect(rows.map((r: { action: string }) => r.action)).toContain("console.session.opened");
  });

  it("a bad token re-renders the form with 401 and an inline error; no cookie", async () => {
    const res = await consolePost("/console/login", null, { token: "sat_notARealToken000000000000000000" });
    const html = expectPage(res, 401);
    expect(html).toContain("invalid, expired or revoked");
    expect(html).toContain('aria-invalid="true"');
    expect(sessionCookieOf(res)).toBeNull();
    expect(html).not.toContain("sat_notARealToken");
  });

  it("an empty token is refused the same way", async () => {
    const res = await consolePost("/console/login", null, { token: "" });
    expectPage(res, 401);
    expect(sessionCookieOf(res)).toBeNull();
  });

  it("signs in with an API JWT too; the session keeps the JWT's org limit", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const ex = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: adminToken } });
    expectStatus(ex, 200);
    const jwt = ex.json.access_token ?? ex.json.jwt ?? ex.json.token;
    expect(typeof jwt).toBe("string");
    const cookie = await consoleLogin(jwt);
    const claims = jose.decodeJwt(jwtOf(cookie)) as { org_id?: string; source_jtis?: string[] };
    expect(claims.org_id).toBe(org.id);
    expect(claims.source_jtis?.length).toBe(1);
    expectPage(await consoleGet(`/console/orgs/${org.slug}`, cookie));
  });

  it("failures are rate limited (429 page with Retry-After), a valid credential still passes", async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    let last;
    for (let i = 0; i < 130; i++) {
      last = await consolePost("/console/login", null, { token: `sat_wrong${i}` }, { "cf-connecting-ip": ip });
      if (last.status === 429) break;
    }
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(last!.text).toContain("try again in");
    const root = await platformRoot();
    await consoleLogin(root.token, { "cf-connecting-ip": ip });
  });
});

describe("console sessions", () => {
  it("no cookie: every page redirects to sign in", async () => {
    expectRedirect(await consoleGet("/console"), "/console/login");
    expectRedirect(await consoleGet("/console/orgs/anything"), "/console/login");
  });

  it("an invalid or tampered session redirects to /console/login?expired=1, which says so", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const tampered = cookie.slice(0, -4) + (cookie.endsWith("AAAA") ? "BBBB" : "AAAA");
    const res = await consoleGet("/console", tampered);
    expectRedirect(res, "/console/login?expired=1");
    const login = expectPage(await consoleGet(res.location!));
    expect(login).toContain("Your session expired, sign in again");
  });

  it("an expired session (a console JWT past its exp) redirects to /console/login?expired=1", async () => {
    const root = await platformRoot();
    const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
    const record = await liveAccountRecord(env, root.id, Date.now());
    const { jws } = await mintJwt(ctx, { account: record!.account, scope: [], audience: `${ISSUER}/console`, ttlSeconds: 3, source: { tokenId: null, jtis: [], statusIdx: null }, orgId: null });
    expectPage(await consoleGet("/console", `kw_session=${jws}`));
    // Until just past its exp (a few seconds, so that a loaded machine still makes the first request in time).
    const { exp } = jose.decodeJwt(jws);
    await new Promise((r) => setTimeout(r, Math.max(0, exp! * 1000 + 100 - Date.now())));
    expectRedirect(await consoleGet("/console", `kw_session=${jws}`), "/console/login?expired=1");
  });

  it("a session never outlives the credential signed in with", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const policy = await call("PATCH", `/api/v1/orgs/${org.id}`, { token: root.token, body: { policy: { maxActiveTokensPerAccount: 2 } } });
    expectStatus(policy, 200);
    const viewer = await viewerAccount(adminToken, org.id);
    const issued = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${viewer.id}/tokens`, { token: adminToken, body: { expiresInSeconds: 60 } });
    expectStatus(issued, 201);
    const cookie = await consoleLogin(issued.json.token);
    const exp = jose.decodeJwt(jwtOf(cookie)).exp!;
    expect(exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(61);
  });

  it("sign out revokes the session (the old cookie no longer works) and clears the cookie", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    expectPage(await consoleGet("/console", cookie));
    const out = await consolePost("/console/logout", cookie);
    expectRedirect(out, "/console/login");
    expect(out.headers.getSetCookie().some((c) => /^kw_session=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
    expectRedirect(await consoleGet("/console", cookie), "/console/login?expired=1");
    const jti = jose.decodeJwt(jwtOf(cookie)).jti!;
    expect(await env.TOKENS.get(`jti:${jti}`)).not.toBeNull();
    expect((await auditRows(jti)).map((r: { action: string }) => r.action)).toContain("console.session.closed");
  });

  it("revoking the access token signed in with ends the session", async () => {
    const root = await platformRoot();
    const { org, admin, adminToken } = await orgWithAdmin(root.token);
    const cookie = await consoleLogin(adminToken);
    expectPage(await consoleGet(`/console/orgs/${org.slug}`, cookie));
    const revoked = await call("DELETE", `/api/v1/orgs/${org.id}/service-accounts/${admin.id}/tokens/${admin.token.id}`, { token: root.token });
    expectStatus(revoked, 204);
    expectRedirect(await consoleGet(`/console/orgs/${org.slug}`, cookie), "/console/login?expired=1");
  });

  it("the session JWT is refused by the API (its audience is the console's)", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    expectUnauthenticated(await call("GET", "/api/v1/orgs", { token: jwtOf(cookie) }));
  });

  it("an API JWT is refused as a console session", async () => {
    const root = await platformRoot();
    const ex = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: root.token } });
    expectStatus(ex, 200);
    const jwt = ex.json.access_token ?? ex.json.jwt ?? ex.json.token;
    expectRedirect(await consoleGet("/console", `kw_session=${jwt}`), "/console/login?expired=1");
    // Nor is an access token put where the session belongs.
    expectRedirect(await consoleGet("/console", `kw_session=${root.token}`), "/console/login?expired=1");
  });
});

describe("console security", () => {
  it("pages carry the CSP, frame-ancestors 'none', no-store and nosniff", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    for (const res of [await consoleGet("/console", cookie), await consoleGet("/console/login")]) {
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).toContain("base-uri 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("referrer-policy")).toBe("same-origin");
      expect(res.text).not.toMatch(/<script>(?!<\/script>)|<style>| style="| on[a-z]+="/);
    }
  });

  it("assets are served with a hashed name and a long cache", async () => {
    const login = (await consoleGet("/console/login")).text;
    const css = /href="(\/console\/assets\/console\.[0-9a-f]{12}\.css)"/.exec(login)![1]!;
    const js = /src="(\/console\/assets\/console\.[0-9a-f]{12}\.js)"/.exec(login)![1]!;
    for (const [path, type] of [[css, "text/css"], [js, "text/javascript"]] as const) {
      const res = await consoleGet(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain(type);
      expect(res.headers.get("cache-control")).toContain("immutable");
    }
    expect((await consoleGet("/console/assets/console.000000000000.css")).status).toBe(404);
  });

  it("a cross-site form post is refused (Origin of another site): 403, nothing changed", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const slug = `csrf-${Date.now().toString(36)}`;
    const cases: Record<string, string>[] = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      { origin: "https://evil.example" },
      { "sec-fetch-site": "cross-site" },
      { origin: "null" },
    ];
    for (const headers of cases) {
      const res = await consolePost("/console/orgs", cookie, { slug, name: "Evil" }, headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    // Without Origin or Sec-Fetch-Site at all.
    const { exports } = await import("cloudflare:workers");
    const bare = await exports.default.fetch(
      new Request("http://keyward.test/console/orgs", { method: "POST", body: new URLSearchParams({ slug, name: "x" }), headers: { cookie, "content-type": "application/x-www-form-urlencoded" }, redirect: "manual" }),
    );
    expect(bare.status).toBe(403);
    const org = await call("GET", `/api/v1/orgs/${slug}`, { token: root.token });
    expect(org.status).toBe(404);
  });

  it("a same-site but not same-origin post is refused even with the right Origin", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const res = await consolePost("/console/logout", cookie, {}, { "sec-fetch-site": "same-site" });
    expectPage(res, 403);
    expectPage(await consoleGet("/console", cookie));
  });

  it("a cross-site sign-in post is refused too (login CSRF)", async () => {
    const root = await platformRoot();
    const res = await consolePost("/console/login", null, { token: root.token }, { origin: "https://evil.example", "sec-fetch-site": "cross-site" });
    expect(res.status).toBe(403);
    expect(sessionCookieOf(res)).toBeNull();
  });

  it("an unknown console path is a 404 page", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    expectPage(await consoleGet("/console/nope/nothing", cookie), 404);
  });
});
